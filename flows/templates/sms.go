package templates

import (
	"unicode/utf8"
)

// SMS encodings as SMSInfo reports them.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// Segment sizes: a single message, and each part of a concatenated one
// (the user data header takes the rest).
const (
	gsmSingle  = 160 // septets
	gsmPart    = 153
	ucs2Single = 70 // UTF-16 code units
	ucs2Part   = 67
)

// gsmBasic is the GSM 7-bit default alphabet of 3GPP TS 23.038 section
// 6.2.1, indexed by septet. 0x1B is the escape to the extension table, not
// a character, so it holds a rune no text maps to it.
var gsmBasic = [128]rune{
	'@', '\u00A3', '$', '\u00A5', '\u00E8', '\u00E9', '\u00F9', '\u00EC', // @ £ $ ¥ è é ù ì
	'\u00F2', '\u00C7', '\n', '\u00D8', '\u00F8', '\r', '\u00C5', '\u00E5', // ò Ç LF Ø ø CR Å å
	'\u0394', '_', '\u03A6', '\u0393', '\u039B', '\u03A9', '\u03A0', '\u03A8', // Δ _ Φ Γ Λ Ω Π Ψ
	'\u03A3', '\u0398', '\u039E', utf8.RuneError, '\u00C6', '\u00E6', '\u00DF', '\u00C9', // Σ Θ Ξ ESC Æ æ ß É
	' ', '!', '"', '#', '\u00A4', '%', '&', '\'', // ¤ where ASCII has $
	'(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7',
	'8', '9', ':', ';', '<', '=', '>', '?',
	'\u00A1', 'A', 'B', 'C', 'D', 'E', 'F', 'G', // ¡ where ASCII has @
	'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W',
	'X', 'Y', 'Z', '\u00C4', '\u00D6', '\u00D1', '\u00DC', '\u00A7', // Ä Ö Ñ Ü §
	'\u00BF', 'a', 'b', 'c', 'd', 'e', 'f', 'g', // ¿ where ASCII has `
	'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w',
	'x', 'y', 'z', '\u00E4', '\u00F6', '\u00F1', '\u00FC', '\u00E0', // ä ö ñ ü à
}

// gsmExtension is the default extension table of 3GPP TS 23.038 section
// 6.2.1.1: each character is sent as ESC plus one septet.
const gsmExtension = "\f^{}\\[~]|\u20AC" // form feed ^ { } \ [ ~ ] | €

// gsmSeptets maps every character GSM-7 can carry to its size in septets.
var gsmSeptets = func() map[rune]int {
	m := make(map[rune]int, len(gsmBasic)+len(gsmExtension))
	for _, r := range gsmBasic {
		if r != utf8.RuneError {
			m[r] = 1
		}
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// SMSInfo reports how text travels as an SMS: in GSM-7 when every
// character is in the default alphabet or its extension table (extension
// characters take two septets), else in UCS-2 (UTF-16 code units, so a
// character outside the BMP, like most emoji, takes two); and how many
// segments that takes. Concatenated parts never split an escape sequence
// or a surrogate pair, as senders do not. Empty text takes 0 segments.
func SMSInfo(text string) (encoding string, segments int) {
	if text == "" {
		return GSM7, 0
	}
	gsm := true
	for _, r := range text {
		if _, ok := gsmSeptets[r]; !ok {
			gsm = false
			break
		}
	}
	if gsm {
		return GSM7, count(text, gsmSingle, gsmPart, func(r rune) int { return gsmSeptets[r] })
	}
	return UCS2, count(text, ucs2Single, ucs2Part, utf16Len)
}

func utf16Len(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// count fills segments of part units, starting a new one when a
// character does not fit whole in what is left.
func count(text string, single, part int, size func(rune) int) int {
	total := 0
	for _, r := range text {
		total += size(r)
	}
	if total <= single {
		return 1
	}
	segments, used := 1, 0
	for _, r := range text {
		n := size(r)
		if used+n > part {
			segments++
			used = 0
		}
		used += n
	}
	return segments
}
