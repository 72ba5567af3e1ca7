package console

import (
	"testing"

	"github.com/vigil-auth/vigil"
)

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ch   vigil.Channel
		to   string
		want string
	}{
		{"email", vigil.ChannelEmail, "alice@example.com", "a***@example.com"},
		{"email, one letter", vigil.ChannelEmail, "a@example.com", "a***@example.com"},
		{"email, non-ASCII first letter", vigil.ChannelEmail, "élodie@exemple.fr", "é***@exemple.fr"},
		{"email, quoted local part with @", vigil.ChannelEmail, `"a@b"@example.com`, `"***@example.com`},
		{"email, empty local part", vigil.ChannelEmail, "@example.com", "***@example.com"},
		{"email, no @", vigil.ChannelEmail, "alice", "***"},
		{"phone, Germany", vigil.ChannelSMS, "+4915123456780", "+49 ****780"},
		{"phone, US", vigil.ChannelSMS, "+14155550123", "+1 ****123"},
		{"phone, Russia", vigil.ChannelSMS, "+79161234567", "+7 ****567"},
		{"phone, Ireland (3-digit code)", vigil.ChannelSMS, "+353851234567", "+353 ****567"},
		{"phone, UK with spaces", vigil.ChannelSMS, "+44 7700 900123", "+44 ****123"},
		{"phone, India", vigil.ChannelSMS, "+919876543210", "+91 ****210"},
		{"phone, no plus", vigil.ChannelSMS, "015123456780", "****"},
		{"phone, too short", vigil.ChannelSMS, "+49123", "****"},
		{"phone, empty", vigil.ChannelSMS, "", "****"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mask(tt.ch, tt.to); got != tt.want {
				t.Errorf("mask(%q) = %q, want %q", tt.to, got, tt.want)
			}
		})
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"Verify your email", "Verify your email"},
		{"Use code 606991 to verify your account", "Use code **** to verify your account"},
		{"Code 1234", "Code ****"},
		{"Only 123 digits", "Only 123 digits"},
		{"Go to https://example.com/v?t=abc now", "Go to [link] now"},
		{"Your 2024 code", "Your **** code"}, // a year goes too: better safe
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := scrub(tt.in); got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
