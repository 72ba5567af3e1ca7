package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func render(t *testing.T, p Page) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Render(&buf, p))
	return buf.String()
}

func TestRenderKinds(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	tests := []struct {
		name string
		page Page
		want []string
		not  []string
	}{
		{
			name: "confirm",
			page: Page{Kind: Confirm, Channel: "email", Destination: "a***@example.com", ExpiresAt: exp, Token: "tok_123"},
			want: []string{"Confirm your email address", "a***@example.com", `name="token" value="tok_123"`, `method="post" action="link"`, "2 January 2030, 03:04 UTC"},
		},
		{
			name: "confirm custom action",
			page: Page{Kind: Confirm, Channel: "sms", Token: "t", Action: "/prefix/link"},
			want: []string{"Confirm your phone number", `action="/prefix/link"`},
		},
		{name: "verified", page: Page{Kind: Verified, Channel: "sms", Destination: "+49 151 ****789"}, want: []string{"Phone number confirmed", "&#43;49 151 ****789"}, not: []string{"<form"}},
		{name: "expired", page: Page{Kind: Expired}, want: []string{"This link has expired"}, not: []string{"<form"}},
		{name: "used", page: Page{Kind: Used}, want: []string{"already used"}},
		{name: "locked with wait", page: Page{Kind: Locked, RetryAfter: 90 * time.Second}, want: []string{"Too many attempts", "2 minutes"}},
		{name: "locked without wait", page: Page{Kind: Locked}, want: []string{"Try again later"}},
		{name: "invalid", page: Page{Kind: Invalid}, want: []string{"not valid"}},
		{name: "failed with reference", page: Page{Kind: Failed, RequestID: "req-1"}, want: []string{"Something went wrong", "Reference: req-1"}},
		{name: "unknown kind renders failed", page: Page{Kind: "nope"}, want: []string{"Something went wrong"}},
		{name: "dev note", page: Page{Kind: Invalid, Dev: true}, want: []string{"Development mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := render(t, tt.page)
			require.True(t, strings.HasPrefix(out, "<!doctype html>"))
			for _, w := range tt.want {
				require.Contains(t, out, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, out, n)
			}
		})
	}
}

func TestRenderEscapes(t *testing.T) {
	t.Parallel()
	out := render(t, Page{Kind: Confirm, Destination: `<script>x</script>`, Token: `"><script>alert(1)</script>`})
	require.NotContains(t, out, "<script>")
	require.Contains(t, out, "&lt;script&gt;")
}

// The CSP names the style sheet by hash: the hash must be of exactly the
// bytes the page carries, or browsers drop the styles.
func TestCSPMatchesInlineStyle(t *testing.T) {
	t.Parallel()
	out := render(t, Page{Kind: Confirm, Token: "t"})
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(out)
	require.Len(t, m, 2)
	sum := sha256.Sum256([]byte(m[1]))
	require.Contains(t, ContentSecurityPolicy, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	require.Contains(t, ContentSecurityPolicy, "default-src 'none'")
	require.NotContains(t, ContentSecurityPolicy, "unsafe")
}

// Pages load nothing from anywhere: no scripts, no external style sheets,
// fonts or images.
func TestNoExternalAssets(t *testing.T) {
	t.Parallel()
	for _, k := range []Kind{Confirm, Verified, Expired, Used, Locked, Invalid, Failed} {
		out := render(t, Page{Kind: k, Token: "t"})
		for _, bad := range []string{"<script", "<link", "<img", "src=", "http://", "https://", "@import", "url("} {
			require.NotContains(t, out, bad, "kind %s", k)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	SetHeaders(h)
	require.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
	require.Equal(t, "no-store", h.Get("Cache-Control"))
	require.Equal(t, "DENY", h.Get("X-Frame-Options"))
	require.Equal(t, ContentSecurityPolicy, h.Get("Content-Security-Policy"))
	require.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
}

func TestWait(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                       "1 second",
		1500 * time.Millisecond: "2 seconds",
		time.Minute:             "1 minute",
		61 * time.Second:        "2 minutes",
		15 * time.Minute:        "15 minutes",
		2 * time.Hour:           "2 hours",
	} {
		require.Equal(t, want, wait(d), d.String())
	}
}
