package templates

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func FuzzPick(f *testing.F) {
	for _, seed := range [][2]string{
		{"de-AT", ""},
		{"pt_BR.UTF-8@euro", "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5"},
		{"", "*;q=0, en;q=0, de;q=0.001"},
		{"x", ",,;;q=,=;*;q"},
		{"zh-Hant-TW-x-a-b", "i-klingon;q=1.000"},
	} {
		f.Add(seed[0], seed[1])
	}
	s := Builtin()
	f.Fuzz(func(t *testing.T, locale, accept string) {
		got := s.Pick(locale, accept)
		if !slices.Contains(s.Languages(), got) {
			t.Fatalf("Pick(%q, %q) = %q, not a supported language", locale, accept, got)
		}
		if tag, ok := parseTag(locale); ok {
			if again, ok := parseTag(tag); !ok || again != tag {
				t.Fatalf("parseTag(%q) = %q, which parses as %q, %v", locale, tag, again, ok)
			}
		}
	})
}

func FuzzSMSInfo(f *testing.F) {
	for _, seed := range []string{"", "Your code is 123456.", "€{}[]", "ç", "😀😀", strings.Repeat("a", 161), "\xff\x1b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		enc, n := SMSInfo(text)
		if text == "" {
			if n != 0 {
				t.Fatalf("empty text takes %d segments", n)
			}
			return
		}
		var units, single, part int
		switch enc {
		case GSM7:
			single, part = gsmSingle, gsmPart
			for _, r := range text {
				s, ok := gsmSeptets[r]
				if !ok {
					t.Fatalf("GSM-7 for %q, which has %q", text, r)
				}
				units += s
			}
		case UCS2:
			single, part = ucs2Single, ucs2Part
			if !strings.ContainsFunc(text, func(r rune) bool { _, ok := gsmSeptets[r]; return !ok }) && utf8.ValidString(text) {
				t.Fatalf("UCS-2 for %q, which GSM-7 can carry", text)
			}
			units = len(utf16.Encode([]rune(text)))
		default:
			t.Fatalf("encoding %q", enc)
		}
		if units <= single {
			if n != 1 {
				t.Fatalf("%d units in %s take %d segments", units, enc, n)
			}
			return
		}
		// A part leaves at most one unit empty, so that a character is
		// never split.
		lo, hi := (units+part-1)/part, (units+part-2)/(part-1)
		if n < lo || n > hi {
			t.Fatalf("%d units in %s take %d segments, want %d to %d", units, enc, n, lo, hi)
		}
	})
}
