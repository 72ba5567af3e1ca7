package flows_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ch     vigil.Channel
		in     string
		value  string
		masked string
		err    string
	}{
		{"email lower-cased", vigil.ChannelEmail, " Alice@Example.COM ", "alice@example.com", "a***@example.com", ""},
		{"email with name refused", vigil.ChannelEmail, "Alice <alice@example.com>", "", "", vigil.EADDRESS},
		{"email without domain dot", vigil.ChannelEmail, "alice@localhost", "", "", vigil.EADDRESS},
		{"email empty", vigil.ChannelEmail, "", "", "", vigil.EADDRESS},
		{"german mobile", vigil.ChannelSMS, "+49 151 23456789", "+4915123456789", "+49 151 ****789", ""},
		{"us number (fixed or mobile)", vigil.ChannelSMS, "+1 201-555-0123", "+12015550123", "+1 201 ****123", ""},
		{"no country code", vigil.ChannelSMS, "015123456789", "", "", vigil.EADDRESS},
		{"invalid number", vigil.ChannelSMS, "+49 1", "", "", vigil.EADDRESS},
		{"german fixed line normalizes (the SMS protection refuses it)", vigil.ChannelSMS, "+49 30 12345678", "+493012345678", "+49 301 ****678", ""},
		{"unknown channel", vigil.Channel("fax"), "+4915123456789", "", "", vigil.EINVALID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, m, err := flows.Normalize(tc.ch, tc.in)
			if tc.err != "" {
				require.Equal(t, tc.err, vigil.ErrorCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.value, v)
			require.Equal(t, tc.masked, m)
		})
	}
}

func TestRequireSatisfied(t *testing.T) {
	t.Parallel()
	now := vigil.SystemClock{}.Now()
	email := &vigil.Address{Channel: vigil.ChannelEmail}
	emailOK := &vigil.Address{Channel: vigil.ChannelEmail, VerifiedAt: &now}
	phone := &vigil.Address{Channel: vigil.ChannelSMS}
	phoneOK := &vigil.Address{Channel: vigil.ChannelSMS, VerifiedAt: &now}
	cases := []struct {
		require flows.Require
		addrs   []*vigil.Address
		want    bool
	}{
		{flows.RequireAny, nil, false},
		{flows.RequireAny, []*vigil.Address{email, phoneOK}, true},
		{flows.RequireEmail, []*vigil.Address{email, phoneOK}, false},
		{flows.RequireEmail, []*vigil.Address{emailOK, phone}, true},
		{flows.RequirePhone, []*vigil.Address{emailOK, phone}, false},
		{flows.RequirePhone, []*vigil.Address{phoneOK}, true},
		{flows.RequireAll, []*vigil.Address{emailOK, phone}, false},
		{flows.RequireAll, []*vigil.Address{emailOK, phoneOK}, true},
		{flows.RequireAll, nil, false},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, tc.require.Satisfied(tc.addrs), "%s %v", tc.require, tc.addrs)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := flows.Defaults()
	c.CodeLength = 12
	c.MaxAttempts = 0
	c.Require = "some"
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"code_length", "max_verification_retries", "require"} {
		require.Contains(t, err.Error(), want)
	}
	require.NoError(t, flows.Defaults().Validate())
}
