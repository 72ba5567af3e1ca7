package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func renderEnroll(t *testing.T, p EnrollPage) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, RenderEnroll(&buf, p))
	return buf.String()
}

func renderProof(t *testing.T, p ProofPage) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, RenderDeviceProof(&buf, p))
	return buf.String()
}

var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

func TestRenderEnroll(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	tests := []struct {
		name   string
		page   EnrollPage
		want   []string
		not    []string
		script bool
	}{
		{
			name:   "enroll",
			page:   EnrollPage{Token: "tok_123", Name: "Front desk laptop", Product: "Acme", ExpiresAt: exp, RequestID: "req-1"},
			want:   []string{"Trust this device for Acme", "<strong>Front desk laptop</strong>", `data-flow="enroll"`, `data-token="tok_123"`, `id="start"`, `id="status"`, `data-state="idle"`, "2 January 2030, 03:04 UTC", "Reference: req-1"},
			script: true,
		},
		{
			name:   "defaults",
			page:   EnrollPage{Token: "t"},
			want:   []string{"Trust this device for your account", "<strong>this device</strong>"},
			not:    []string{"This link works once"},
			script: true,
		},
		{name: "expired", page: EnrollPage{Token: "t", Name: "n", Problem: Expired}, want: []string{"This link has expired", "new one"}},
		{name: "used", page: EnrollPage{Token: "t", Problem: Used}, want: []string{"This link was already used"}},
		{name: "invalid", page: EnrollPage{Problem: Invalid}, want: []string{"This link is not valid"}},
		{name: "failed", page: EnrollPage{Problem: Failed, RequestID: "req-2"}, want: []string{"Something went wrong", "Reference: req-2"}},
		{name: "other kinds fail", page: EnrollPage{Problem: Locked}, want: []string{"Something went wrong"}},
		{name: "dev", page: EnrollPage{Token: "t", Dev: true}, want: []string{"Development mode"}, script: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := renderEnroll(t, tt.page)
			require.True(t, strings.HasPrefix(out, "<!doctype html>"))
			for _, w := range tt.want {
				require.Contains(t, out, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, out, n)
			}
			if tt.script {
				require.Contains(t, out, "<script>")
				return
			}
			// An error page runs nothing and leaks no token or device
			// name.
			require.NotContains(t, out, "<script")
			require.NotContains(t, out, `id="start"`)
			require.NotContains(t, out, `data-token="`)
			require.NotContains(t, out, "<strong>")
			require.Contains(t, out, `class="bad"`)
		})
	}
}

func TestRenderDeviceProof(t *testing.T) {
	t.Parallel()
	out := renderProof(t, ProofPage{Product: "Acme", RequestID: "req-3"})
	for _, w := range []string{"Confirm this device for Acme", `data-flow="prove"`, `id="start"`, `id="status"`, "Reference: req-3", "<script>"} {
		require.Contains(t, out, w)
	}
	require.NotContains(t, out, `data-token="`)
	require.Contains(t, renderProof(t, ProofPage{}), "Confirm this device for your account")
}

func TestRenderDevicePagesEscape(t *testing.T) {
	t.Parallel()
	evil := `"><script>alert(1)</script>`
	pages := map[string]string{
		"enroll": renderEnroll(t, EnrollPage{Token: evil, Name: evil, Product: evil, RequestID: evil}),
		"proof":  renderProof(t, ProofPage{Product: evil, RequestID: evil}),
		"error":  renderEnroll(t, EnrollPage{Token: evil, Problem: Failed, RequestID: evil}),
	}
	for name, out := range pages {
		// The only script element is ours.
		require.LessOrEqual(t, strings.Count(out, "<script"), 1, name)
		require.NotContains(t, out, "<script>alert", name)
		require.Contains(t, out, "&lt;script&gt;", name)
	}
}

// The CSP names the inline script and style sheet by hash: each hash must
// be of exactly the bytes the page carries, or browsers refuse them.
func TestCSPMatchesDevicePages(t *testing.T) {
	t.Parallel()
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	for name, out := range map[string]string{
		"enroll": renderEnroll(t, EnrollPage{Token: "t", Name: "n"}),
		"proof":  renderProof(t, ProofPage{}),
	} {
		js := inlineScript.FindStringSubmatch(out)
		require.Len(t, js, 2, name)
		require.Contains(t, ContentSecurityPolicy, "script-src "+hash(js[1]), name)
		css := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(out)
		require.Len(t, css, 2, name)
		require.Contains(t, ContentSecurityPolicy, "style-src "+hash(css[1]), name)
	}
	require.Contains(t, ContentSecurityPolicy, "connect-src 'self'")
	require.Contains(t, ContentSecurityPolicy, "default-src 'none'")
	require.NotContains(t, ContentSecurityPolicy, "unsafe")
}

// The device pages load nothing from elsewhere either, and their script
// calls only paths relative to the page.
func TestDevicePagesNoExternalAssets(t *testing.T) {
	t.Parallel()
	for _, out := range []string{
		renderEnroll(t, EnrollPage{Token: "t"}),
		renderEnroll(t, EnrollPage{Problem: Expired}),
		renderProof(t, ProofPage{}),
	} {
		for _, bad := range []string{"<link", "<img", "src=", "http://", "https://", "@import", "url(", "eval(", "innerHTML"} {
			require.NotContains(t, out, bad)
		}
	}
	for _, path := range []string{`"enroll/options"`, `"enroll/finish"`, `"webauthn/options"`, `"webauthn/finish"`} {
		require.Contains(t, script, path)
	}
}
