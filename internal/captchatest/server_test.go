package captchatest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/captchatest"
)

type answer struct {
	Success    bool     `json:"success"`
	ErrorCodes []string `json:"error-codes"` //nolint:tagliatelle // the providers' field name
	Hostname   string   `json:"hostname"`
}

func post(t *testing.T, srv *captchatest.Server, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL(), strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var a answer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}

func form(fields ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(fields); i += 2 {
		v.Set(fields[i], fields[i+1])
	}
	return v.Encode()
}

const formType = "application/x-www-form-urlencoded"

func TestTurnstile(t *testing.T) {
	t.Parallel()
	srv := captchatest.Start(t)
	srv.AddToken("a", "b")
	s := captchatest.Secret

	tests := []struct {
		name      string
		ctype     string
		body      string
		wantOK    bool
		wantCodes []string
	}{
		{"no secret", formType, form("response", "a"), false, []string{"missing-input-secret"}},
		{"wrong secret", formType, form("secret", "x", "response", "a"), false, []string{"invalid-input-secret"}},
		{"no token", formType, form("secret", s), false, []string{"missing-input-response"}},
		{"unknown token", formType, form("secret", s, "response", "zzz"), false, []string{"invalid-input-response"}},
		{"good token", formType, form("secret", s, "response", "a", "remoteip", "203.0.113.7"), true, []string{}},
		{"spent token", formType, form("secret", s, "response", "a"), false, []string{"timeout-or-duplicate"}},
		{"JSON with idempotency key", "application/json", `{"secret":"` + s + `","response":"b","idempotency_key":"4e2d1c70-4a8e-4a57-9b3c-1f1d2f7a0c11"}`, true, []string{}},
		{"same key again", "application/json", `{"secret":"` + s + `","response":"b","idempotency_key":"4e2d1c70-4a8e-4a57-9b3c-1f1d2f7a0c11"}`, true, []string{}},
		{"other key", formType, form("secret", s, "response", "b", "idempotency_key", "other"), false, []string{"timeout-or-duplicate"}},
		{"not a form", "text/plain", "secret=" + s, false, []string{"bad-request"}},
	}
	for _, tt := range tests {
		a := post(t, srv, tt.ctype, tt.body)
		require.Equal(t, tt.wantOK, a.Success, tt.name)
		require.Equal(t, tt.wantCodes, a.ErrorCodes, tt.name)
		if tt.wantOK {
			require.Equal(t, captchatest.Hostname, a.Hostname, tt.name)
		}
	}
	calls := srv.Calls()
	require.Len(t, calls, len(tests))
	require.Equal(t, "203.0.113.7", calls[4].RemoteIP)
	require.Equal(t, "4e2d1c70-4a8e-4a57-9b3c-1f1d2f7a0c11", calls[6].IdempotencyKey)
}

func TestHCaptcha(t *testing.T) {
	t.Parallel()
	srv := captchatest.Start(t, captchatest.WithFlavor(captchatest.HCaptcha), captchatest.WithSiteKey("site-1"), captchatest.WithSecret("0xsecret"))
	srv.AddToken("a")
	tests := []struct {
		name      string
		ctype     string
		body      string
		wantOK    bool
		wantCodes []string
	}{
		{"JSON is refused", "application/json", `{"secret":"0xsecret","response":"a"}`, false, []string{"bad-request"}},
		{"other site", formType, form("secret", "0xsecret", "response", "a", "sitekey", "site-2"), false, []string{"sitekey-secret-mismatch"}},
		{"good", formType, form("secret", "0xsecret", "response", "a", "sitekey", "site-1"), true, []string{}},
		{"seen", formType, form("secret", "0xsecret", "response", "a"), false, []string{"invalid-or-already-seen-response"}},
	}
	for _, tt := range tests {
		a := post(t, srv, tt.ctype, tt.body)
		require.Equal(t, tt.wantOK, a.Success, tt.name)
		require.Equal(t, tt.wantCodes, a.ErrorCodes, tt.name)
	}
	require.Equal(t, "site-2", srv.Calls()[1].SiteKey)
}
