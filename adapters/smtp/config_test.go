package smtp

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		want    endpoint
		wantErr string
	}{
		{url: "smtp://mail.example.com", want: endpoint{host: "mail.example.com", port: "587", mode: TLSStartTLS}},
		{url: "smtp://mail.example.com:2525/", want: endpoint{host: "mail.example.com", port: "2525", mode: TLSStartTLS}},
		{url: "smtp://mail.example.com/?tls=starttls", want: endpoint{host: "mail.example.com", port: "587", mode: TLSStartTLS}},
		{url: "smtp://mail.example.com/?tls=implicit", want: endpoint{host: "mail.example.com", port: "465", mode: TLSImplicit}},
		{url: "smtp://mail.example.com/?tls=none", want: endpoint{host: "mail.example.com", port: "25", mode: TLSNone}},
		{url: "smtp://mail.example.com/?tls=NONE", want: endpoint{host: "mail.example.com", port: "25", mode: TLSNone}},
		{url: "smtp://localhost:1025/?disable_starttls=true", want: endpoint{host: "localhost", port: "1025", mode: TLSNone}},
		{url: "smtp://mail.example.com/?disable_starttls=false", want: endpoint{host: "mail.example.com", port: "587", mode: TLSStartTLS}},
		{url: "smtps://mail.example.com", want: endpoint{host: "mail.example.com", port: "465", mode: TLSImplicit}},
		{url: "smtps://mail.example.com?tls=implicit", want: endpoint{host: "mail.example.com", port: "465", mode: TLSImplicit}},
		{url: "smtp://[::1]:25/?tls=none", want: endpoint{host: "::1", port: "25", mode: TLSNone}},
		{
			url:  "smtp://apikey:p%40ss%3Aw%2Frd@smtp.example.com:587",
			want: endpoint{host: "smtp.example.com", port: "587", mode: TLSStartTLS, user: "apikey", password: "p@ss:w/rd", auth: true},
		},
		{
			url:  "smtp://u:p@127.0.0.1:1025/?tls=none",
			want: endpoint{host: "127.0.0.1", port: "1025", mode: TLSNone, user: "u", password: "p", auth: true},
		},
		{url: "", wantErr: "empty"},
		{url: "http://mail.example.com", wantErr: "scheme"},
		{url: "mail.example.com:25", wantErr: "scheme"},
		{url: "smtp://", wantErr: "no host"},
		{url: "smtp://mail.example.com/path", wantErr: "no path"},
		{url: "smtp://mail.example.com/?tls=maybe", wantErr: "tls="},
		{url: "smtp://mail.example.com/?tls=none&tls=none", wantErr: "2 times"},
		{url: "smtp://mail.example.com/?skip_ssl_verify=true", wantErr: "not supported"},
		{url: "smtps://mail.example.com/?tls=starttls", wantErr: "smtps"},
		{url: "smtps://mail.example.com/?disable_starttls=true", wantErr: "contradicts"},
		{url: "smtp://mail.example.com/?tls=starttls&disable_starttls=true", wantErr: "contradicts"},
		{url: "smtp://mail.example.com/?disable_starttls=yes", wantErr: "disable_starttls"},
		{url: "smtp://u:p@mail.example.com/?tls=none", wantErr: "credentials without TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			got, err := parseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ä", 150)
	tests := []struct {
		name, text, rcpt, want string
	}{
		{"echoed address", "<alice@example.com>: Recipient address rejected", "alice@example.com", "<[recipient]>: Recipient address rejected"},
		{"other case, twice", "ALICE@example.COM unknown; alice@example.com", "alice@example.com", "[recipient] unknown; [recipient]"},
		{"no address", "5.1.1 User unknown", "alice@example.com", "5.1.1 User unknown"},
		{"control characters", "bad\r\nline\x00", "", "bad  line "},
		{"capped on a rune boundary", long, "", strings.Repeat("ä", 100) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := redact(tt.text, tt.rcpt); got != tt.want {
				t.Errorf("redact = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id, want string
	}{
		{"msg_01HZX3", "<msg_01HZX3@example.com>"},
		{"0191d7e2-8a4b-7c3e-9f00-1234567890ab", "<0191d7e2-8a4b-7c3e-9f00-1234567890ab@example.com>"},
		{"a b", "<" + "c8687a08aa5d6ed2044328fa6a697ab8" + "@example.com>"},
		{".dot", ""},
		{"a..b", ""},
		{strings.Repeat("x", 65), ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			got := messageID(tt.id, "example.com")
			if again := messageID(tt.id, "example.com"); got != again {
				t.Fatalf("not stable: %q then %q", got, again)
			}
			left := strings.TrimSuffix(strings.TrimPrefix(got, "<"), "@example.com>")
			if !isDotAtom(left) {
				t.Errorf("%q is not a valid Message-ID", got)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("messageID = %q, want %q", got, tt.want)
			}
		})
	}
	if a, b := messageID("", "example.com"), messageID("", "example.com"); a == b {
		t.Errorf("empty IDs both gave %s", a)
	}
}
