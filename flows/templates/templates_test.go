package templates_test

import (
	"html"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

var shipped = []string{"de", "en", "es", "fr"}

const link = "https://verify.example.com/self-service/verifications/link?token=q3T-8xZ_0aLm9Vb2Kc7Yw1Ns4Hd6Rf5Ug8Je0Pi3Ok2&x=1"

func data(ch vigil.Channel) templates.Data {
	return templates.Data{
		Code: "482913", Link: link, Minutes: 15, Channel: ch,
		Destination: "a***@example.com", Product: "Acme", Device: "Firefox on Linux",
		Time: time.Date(2026, time.March, 1, 14, 5, 0, 0, time.UTC),
	}
}

// tags drops the markup of an HTML body and decodes its entities, leaving
// what a reader sees.
var tags = regexp.MustCompile(`<[^>]*>`)

func visible(h string) string { return html.UnescapeString(tags.ReplaceAllString(h, " ")) }

func TestBuiltin(t *testing.T) {
	t.Parallel()
	s := templates.Builtin()
	require.Equal(t, shipped, s.Languages())
	require.Equal(t, "en", s.Default())
	require.Same(t, s, templates.Builtin(), "parsed once")

	_, warnings, err := templates.Load("", "")
	require.NoError(t, err)
	require.Empty(t, warnings, "the shipped set is complete and every SMS fits one segment")
}

func TestRenderEveryKindLanguageAndChannel(t *testing.T) {
	t.Parallel()
	s := templates.Builtin()
	for _, lang := range shipped {
		for _, kind := range templates.Kinds() {
			for _, ch := range []vigil.Channel{vigil.ChannelEmail, vigil.ChannelSMS} {
				t.Run(lang+"/"+string(kind)+"/"+string(ch), func(t *testing.T) {
					t.Parallel()
					r, err := s.Render(kind, ch, lang, data(ch))
					require.NoError(t, err)
					require.Equal(t, lang, r.Lang)
					require.NotEmpty(t, strings.TrimSpace(r.Text))
					require.NotContains(t, r.Text, "<no value>")

					var want string
					switch kind {
					case templates.KindVerificationCode, templates.KindLoginCode, templates.KindAppUnreachable:
						want = "482913"
					case templates.KindVerificationLink:
						want = link
					}

					if ch == vigil.ChannelSMS {
						require.Empty(t, r.Subject)
						require.Empty(t, r.HTML)
						require.Equal(t, strings.TrimSpace(r.Text), r.Text)
						require.Contains(t, r.Text, want)
						return
					}
					require.NotEmpty(t, r.Subject)
					require.NotContains(t, r.Subject, "\n")
					require.True(t, strings.HasSuffix(r.Text, ".\n"), "text ends in one newline: %q", r.Text)
					require.Contains(t, r.HTML, `<html lang="`+lang+`">`)
					require.Contains(t, r.Text, want)
					require.Contains(t, visible(r.HTML), want, "shown as text, not only in an attribute")
					if kind == templates.KindVerificationLink {
						require.Contains(t, r.HTML, `href="`+html.EscapeString(link)+`"`)
					}
				})
			}
		}
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	d := data(vigil.ChannelEmail)
	d.Product = `<script>alert(1)</script>`
	d.Device = `"><img src=x onerror=alert(1)>`
	d.Link = "javascript:alert(1)"

	for _, kind := range templates.Kinds() {
		r, err := templates.Builtin().Render(kind, vigil.ChannelEmail, "en", d)
		require.NoError(t, err)
		require.NotContains(t, r.HTML, "<script>", kind)
		require.NotContains(t, r.HTML, "<img", kind)
		require.NotContains(t, r.HTML, `href="javascript:`, kind)
		require.Contains(t, r.HTML, "&lt;script&gt;", kind)
		require.Contains(t, r.Text, "<script>", "plain text is not HTML")
	}
}

func TestRenderCleansOutsideValues(t *testing.T) {
	t.Parallel()
	d := data(vigil.ChannelEmail)
	d.Device = "Firefox\r\nBcc: victim@example.com\u202e " + strings.Repeat("x", 100)

	r, err := templates.Builtin().Render(templates.KindNewDevice, vigil.ChannelEmail, "en", d)
	require.NoError(t, err)
	require.NotContains(t, r.Subject+r.Text+r.HTML, "\r")
	require.NotContains(t, r.Text+r.HTML, "\u202e")
	require.Contains(t, r.Text, "Device: Firefox Bcc: victim@example.com xxx")
	require.NotContains(t, r.Text, strings.Repeat("x", 64), "capped")
}

func TestRenderWording(t *testing.T) {
	t.Parallel()
	s := templates.Builtin()
	cases := []struct {
		name    string
		kind    templates.Kind
		ch      vigil.Channel
		lang    string
		edit    func(*templates.Data)
		want    []string
		notWant []string
	}{
		{
			name: "hours from two hours on", kind: templates.KindVerificationLink, ch: vigil.ChannelEmail, lang: "en",
			edit: func(d *templates.Data) { d.Minutes, d.Hours = templates.Expiry(48 * time.Hour) },
			want: []string{"expires in 48 hours."},
		},
		{
			name: "one minute is singular", kind: templates.KindLoginCode, ch: vigil.ChannelSMS, lang: "de",
			edit: func(d *templates.Data) { d.Minutes = 1 },
			want: []string{"Er ist 1 Minute gültig."},
		},
		{
			name: "no product, no name", kind: templates.KindLoginCode, ch: vigil.ChannelSMS, lang: "en",
			edit:    func(d *templates.Data) { d.Product = "" },
			want:    []string{"Your sign-in code is 482913."},
			notWant: []string{":"},
		},
		{
			name: "product in front of an SMS", kind: templates.KindVerificationCode, ch: vigil.ChannelSMS, lang: "fr",
			want: []string{"Acme : Votre code de vérification est 482913."},
		},
		{
			name: "email notice about a phone number", kind: templates.KindAddressChanged, ch: vigil.ChannelEmail, lang: "fr",
			edit: func(d *templates.Data) { d.Channel, d.Destination = vigil.ChannelSMS, "+49 151 ****789" },
			want: []string{"Le numéro de téléphone de votre compte Acme a été modifié et le +49 151 ****789 n'y est plus associé."},
		},
		{
			name: "notice channel defaults to the delivery channel", kind: templates.KindAddressChanged, ch: vigil.ChannelSMS, lang: "es",
			edit: func(d *templates.Data) { d.Channel = "" },
			want: []string{"Se ha cambiado el teléfono de tu cuenta."},
		},
		{
			name: "new device without a device name", kind: templates.KindNewDevice, ch: vigil.ChannelEmail, lang: "de",
			edit:    func(d *templates.Data) { d.Device = "" },
			want:    []string{"Zeit: 01.03.2026, 14:05 UTC"},
			notWant: []string{"Gerät:"},
		},
		{
			name: "time in its own zone", kind: templates.KindNewDevice, ch: vigil.ChannelSMS, lang: "en",
			edit: func(d *templates.Data) { d.Time = d.Time.In(time.FixedZone("CET", 3600)) },
			want: []string{"on 1 Mar 15:05 CET."},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := data(tc.ch)
			if tc.edit != nil {
				tc.edit(&d)
			}
			r, err := s.Render(tc.kind, tc.ch, tc.lang, d)
			require.NoError(t, err)
			for _, w := range tc.want {
				require.Contains(t, r.Text, w)
			}
			for _, w := range tc.notWant {
				require.NotContains(t, r.Text, w)
			}
		})
	}
}

func TestRenderLanguage(t *testing.T) {
	t.Parallel()
	cases := map[string]string{"de-AT": "de", "fr_CA": "fr", "it": "en", "": "en", "garbage!": "en", "ES": "es"}
	for in, want := range cases {
		r, err := templates.Builtin().Render(templates.KindLoginCode, vigil.ChannelSMS, in, data(vigil.ChannelSMS))
		require.NoError(t, err)
		require.Equal(t, want, r.Lang, in)
	}
}

func TestRenderRefuses(t *testing.T) {
	t.Parallel()
	s := templates.Builtin()
	cases := []struct {
		name string
		kind templates.Kind
		ch   vigil.Channel
		edit func(*templates.Data)
		want string
	}{
		{"unknown kind", "welcome", vigil.ChannelEmail, nil, `unknown kind "welcome"`},
		{"unknown channel", templates.KindLoginCode, "fax", nil, `unknown channel "fax"`},
		{"unknown data channel", templates.KindAddressChanged, vigil.ChannelEmail, func(d *templates.Data) { d.Channel = "fax" }, `unknown data channel "fax"`},
		{"code without code", templates.KindLoginCode, vigil.ChannelSMS, func(d *templates.Data) { d.Code = "" }, "missing Code"},
		{"link without link", templates.KindVerificationLink, vigil.ChannelEmail, func(d *templates.Data) { d.Link = "" }, "missing Link"},
		{"code without expiry", templates.KindAppUnreachable, vigil.ChannelSMS, func(d *templates.Data) { d.Minutes = 0 }, "missing Minutes or Hours"},
		{"new device without time", templates.KindNewDevice, vigil.ChannelEmail, func(d *templates.Data) { d.Time = time.Time{} }, "missing Time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := data(tc.ch)
			if tc.edit != nil {
				tc.edit(&d)
			}
			_, err := s.Render(tc.kind, tc.ch, "en", d)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRenderZeroSet(t *testing.T) {
	t.Parallel()
	var s templates.Set
	_, err := s.Render(templates.KindLoginCode, vigil.ChannelSMS, "en", data(vigil.ChannelSMS))
	require.ErrorContains(t, err, "not loaded")
}

func TestRenderConcurrently(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			s := templates.Builtin()
			lang := shipped[i%len(shipped)]
			for _, kind := range templates.Kinds() {
				_, err := s.Render(kind, vigil.ChannelEmail, lang, data(vigil.ChannelEmail))
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		left           time.Duration
		minutes, hours int
	}{
		{0, 0, 0},
		{-time.Minute, 0, 0},
		{30 * time.Second, 1, 0},
		{15 * time.Minute, 15, 0},
		{15*time.Minute + time.Second, 16, 0},
		{2*time.Hour - time.Second, 120, 0},
		{2 * time.Hour, 120, 2},
		{2*time.Hour + 59*time.Minute, 179, 2},
		{48 * time.Hour, 2880, 48},
	}
	for _, tc := range cases {
		m, h := templates.Expiry(tc.left)
		require.Equal(t, tc.minutes, m, tc.left.String())
		require.Equal(t, tc.hours, h, tc.left.String())
	}
}
