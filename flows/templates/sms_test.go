package templates

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// specBasic is the default alphabet as 3GPP TS 23.038 prints it, row by
// row, typed independently of gsmBasic (ESC shown as a space-free gap).
const specBasic = "@£$¥èéùìòÇ\nØø\rÅå" +
	"Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ" +
	" !\"#¤%&'()*+,-./" +
	"0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNO" +
	"PQRSTUVWXYZÄÖÑÜ§" +
	"¿abcdefghijklmno" +
	"pqrstuvwxyzäöñüà"

func TestGSMTable(t *testing.T) {
	t.Parallel()
	spec := []rune(specBasic)
	require.Len(t, spec, 128)
	for i, r := range spec {
		if i == 0x1B {
			require.Equal(t, utf8.RuneError, gsmBasic[i], "ESC is not a character")
			continue
		}
		require.Equal(t, r, gsmBasic[i], "septet 0x%02X", i)
	}
	seen := map[rune]bool{}
	for _, r := range gsmBasic {
		require.False(t, seen[r], "duplicate %q", r)
		seen[r] = true
	}
	// Greek capitals are the Greek letters, not look-alikes.
	require.Equal(t, '\u03A9', gsmBasic[0x15])
	require.Equal(t, '\u0394', gsmBasic[0x10])
	require.Len(t, gsmSeptets, 127+10)
	for _, r := range "\f^{}\\[~]|€" {
		require.Equal(t, 2, gsmSeptets[r], "%q", r)
	}
}

func TestSMSInfo(t *testing.T) {
	t.Parallel()
	r := strings.Repeat
	cases := []struct {
		name     string
		text     string
		encoding string
		segments int
	}{
		{"empty", "", GSM7, 0},
		{"ascii", "Your code is 123456.", GSM7, 1},
		{"whole basic table", strings.ReplaceAll(specBasic, "\x1b", ""), GSM7, 1},
		{"extension table", "\f^{}\\[~]|€", GSM7, 1},
		{"german", "Bestätigen Sie Ihre Telefonnummer: Größe, Übung", GSM7, 1},
		{"spanish í is not in GSM-7", "¿Sí? ¡No!", UCS2, 1},
		{"spanish gsm", "¿Es tu teléfono? ¡Hecho! Año", GSM7, 1},
		{"capital C cedilla", "Ç", GSM7, 1},
		{"small c cedilla", "ç", UCS2, 1},
		{"french circumflex", "êtes", UCS2, 1},
		{"french ligature", "œuvre", UCS2, 1},
		{"backtick", "`", UCS2, 1},
		{"tab", "a\tb", UCS2, 1},
		{"escape", "\x1b", UCS2, 1},
		{"typographic apostrophe", "n’est", UCS2, 1},
		{"ohm sign, not omega", "\u2126", UCS2, 1},
		{"invalid utf-8", "\xff", UCS2, 1},

		{"160 septets", r("a", 160), GSM7, 1},
		{"161 septets", r("a", 161), GSM7, 2},
		{"153×2 septets", r("a", 306), GSM7, 2},
		{"153×2+1 septets", r("a", 307), GSM7, 3},
		{"80 euro signs are 160 septets", r("€", 80), GSM7, 1},
		{"159 septets and an extension character", r("a", 159) + "€", GSM7, 2},
		{"an escape never straddles parts", r("a", 152) + "€" + r("a", 152), GSM7, 3},

		{"70 units", r("ç", 70), UCS2, 1},
		{"71 units", r("ç", 71), UCS2, 2},
		{"67×2 units", r("ç", 134), UCS2, 2},
		{"67×2+1 units", r("ç", 135), UCS2, 3},
		{"one emoji forces UCS-2", r("a", 60) + "😀", UCS2, 1},
		{"35 emoji are 70 units", r("😀", 35), UCS2, 1},
		{"36 emoji are 72 units", r("😀", 36), UCS2, 2},
		{"a surrogate pair never straddles parts", r("ç", 66) + "😀" + r("ç", 66), UCS2, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			enc, n := SMSInfo(tc.text)
			require.Equal(t, tc.encoding, enc)
			require.Equal(t, tc.segments, n)
		})
	}
}

// TestShippedSMSFitOneSegment renders every shipped SMS with every sample
// (the longest values real messages carry) and wants one GSM-7 segment:
// UCS-2 would leave 70 characters, too few for a link.
func TestShippedSMSFitOneSegment(t *testing.T) {
	t.Parallel()
	s := Builtin()
	for _, lang := range s.Languages() {
		for _, kind := range kinds {
			e := s.langs[lang][slot{kind, PartSMS}]
			require.Equal(t, "builtin/"+lang+"/"+string(kind)+".sms.tmpl", e.label)
			for _, d := range samples() {
				text, err := e.execute(d)
				require.NoError(t, err)
				enc, n := SMSInfo(text)
				require.Equal(t, GSM7, enc, "%s %s: %q", lang, kind, text)
				require.Equal(t, 1, n, "%s %s: %q", lang, kind, text)
			}
		}
	}
}

// TestSamples keeps the load-time sample data honest.
func TestSamples(t *testing.T) {
	t.Parallel()
	_, token, _ := strings.Cut(sampleLink, "token=")
	require.Len(t, token, 43, "32 bytes in unpadded base64url")
	for _, d := range samples() {
		require.True(t, d.Channel.Valid())
		for _, kind := range kinds {
			require.NoError(t, kind.needs(d))
		}
	}
	require.Contains(t, []vigil.Channel{samples()[0].Channel, samples()[3].Channel}, vigil.ChannelSMS)
}
