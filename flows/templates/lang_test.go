package templates

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// regional is the built-in set plus Brazilian Portuguese and Traditional
// Chinese, so region and script matching have something to find.
func regional(t *testing.T) *Set {
	t.Helper()
	s, _, err := LoadFS(fstest.MapFS{
		"pt_BR/login_code.sms.tmpl":   {Data: []byte("Seu código: {{.Code}}")},
		"zh-hant/login_code.sms.tmpl": {Data: []byte("{{.Code}}")},
	}, "en")
	require.NoError(t, err)
	require.Equal(t, []string{"de", "en", "es", "fr", "pt-BR", "zh-Hant"}, s.Languages())
	return s
}

func TestPick(t *testing.T) {
	t.Parallel()
	s := regional(t)
	cases := []struct {
		name, locale, accept, want string
	}{
		{"nothing: default", "", "", "en"},
		{"locale", "de", "fr", "de"},
		{"locale with region", "de-AT", "", "de"},
		{"locale posix spelling", "de_AT", "", "de"},
		{"locale posix with codeset", "fr_CA.UTF-8@euro", "", "fr"},
		{"locale case", "DE-at", "", "de"},
		{"locale with script and region", "zh-Hant-TW", "", "zh-Hant"},
		{"locale private use dropped", "es-x-foo-bar", "", "es"},
		{"locale region match", "pt-br", "", "pt-BR"},
		{"locale sibling region", "pt-PT", "", "pt-BR"},
		{"locale base to region", "pt", "", "pt-BR"},
		{"unsupported locale: accept", "it", "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5", "fr"},
		{"garbage locale: accept", "C", "es", "es"},
		{"q-values order", "", "it, es;q=0.5, de;q=0.7", "de"},
		{"equal q keeps order", "", "fr;q=0.8, de;q=0.8", "fr"},
		{"q=1 with decimals", "", "es;q=0.999, de;q=1.000", "de"},
		{"spaces and case", "", "  it ;Q=0.9 ,  ES-mx ; q=0.8 ", "es"},
		{"wildcard: default", "", "it, *;q=0.1", "en"},
		{"wildcard with default refused", "", "it, *;q=0.1, en;q=0", "de"},
		{"refused languages", "", "en;q=0, de;q=0.5", "de"},
		{"refused match is skipped", "", "en-GB, en;q=0, fr;q=0.1", "fr"},
		{"only refusals: default", "", "fr;q=0", "en"},
		{"q above 1 skipped", "", "es;q=1.5, de", "de"},
		{"q with four decimals skipped", "", "es;q=0.0001, de;q=0.5", "de"},
		{"bad q skipped", "", "de;q=abc", "en"},
		{"empty q skipped", "", "de;q=, fr;q=0.2", "fr"},
		{"other parameters ignored", "", "de;level=1;q=0.5, xx", "de"},
		{"wildcard q=0 alone", "", "*;q=0", "en"},
		{"unknown everything", "tlh", "tlh, x-klingon, i-default", "en"},
		{"garbage", "\x00\xff", ",,;;q=,=;*;q", "en"},
		{"tag too long", strings.Repeat("de-", 40) + "de", "", "en"},
		{"empty subtag", "de--AT", "de_", "en"},
		{"subtag too long", "de-abcdefghi", "", "en"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, s.Pick(tc.locale, tc.accept))
		})
	}
}

func TestPickReadsABoundedHeader(t *testing.T) {
	t.Parallel()
	s := Builtin()
	many := strings.Repeat("it;q=0.9, ", maxAcceptEntries) + "de"
	require.Equal(t, "en", s.Pick("", many), "entries after the first 32 are not read")
	long := "it, " + strings.Repeat(" ", maxAcceptLen) + ", de"
	require.Equal(t, "en", s.Pick("", long), "bytes after the first 4 KiB are not read")
	cut := strings.Repeat(" ", maxAcceptLen-4) + ", de-AT"
	require.Equal(t, "en", s.Pick("", cut), "an entry cut by the cap is dropped, not read as de")
}

func TestParseTag(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"de":               "de",
		"DE":               "de",
		"de-at":            "de-AT",
		"pt_br":            "pt-BR",
		"zh-hant-tw":       "zh-Hant-TW",
		"es-419":           "es-419",
		"sr_RS@latin":      "sr-RS",
		"en_US.UTF-8":      "en-US",
		"de-CH-1996":       "de-CH-1996",
		"yue":              "yue",
		"\tfr\n":           "fr",
		"":                 "",
		"d":                "",
		"deut":             "",
		"de-":              "",
		"-de":              "",
		"de--at":           "",
		"d3":               "",
		"de-ät":            "",
		"i-klingon":        "",
		"*":                "",
		"de-abcdefghi":     "",
		"x-private":        "",
		"de-AT-x-private1": "de-AT-x-private1",
	}
	for in, want := range cases {
		got, ok := parseTag(in)
		require.Equal(t, want != "", ok, in)
		require.Equal(t, want, got, in)
	}
}

func TestParseQ(t *testing.T) {
	t.Parallel()
	cases := map[string]int{"0": 0, "0.": 0, "0.5": 500, "0.05": 50, "0.123": 123, "1": 1000, "1.": 1000, "1.000": 1000}
	for in, want := range cases {
		q, ok := parseQ(in)
		require.True(t, ok, in)
		require.Equal(t, want, q, in)
	}
	for _, in := range []string{"", ".5", "1.001", "2", "0.1234", "-0", "0.a", "00.5", "1.0.0", " 1"} {
		_, ok := parseQ(in)
		require.False(t, ok, in)
	}
}
