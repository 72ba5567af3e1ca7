package console

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/vigil-auth/vigil"
)

// mask shows enough of an address to tell messages apart and no more:
// the first character and the domain of an email address, the country
// code and last three digits of a phone number.
func mask(ch vigil.Channel, to string) string {
	if ch == vigil.ChannelEmail {
		return maskEmail(to)
	}
	return maskPhone(to)
}

func maskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "***"
	}
	local, domain := addr[:at], addr[at+1:]
	first, size := utf8.DecodeRuneInString(local)
	if size == 0 || first == utf8.RuneError {
		return "***@" + domain
	}
	return string(first) + "***@" + domain
}

func maskPhone(num string) string {
	var digits strings.Builder
	for _, r := range num {
		if '0' <= r && r <= '9' {
			digits.WriteRune(r)
		}
	}
	d := digits.String()
	if !strings.HasPrefix(strings.TrimSpace(num), "+") || len(d) < 7 {
		// Not E.164: no country code to keep, and a short number would
		// be half shown by its last three digits.
		return "****"
	}
	cc := d[:countryCodeLen(d)]
	return "+" + cc + " ****" + d[len(d)-3:]
}

// countryCodeLen returns the length of the E.164 country code d starts
// with. Country codes are prefix-free: 1 and 7 are the only one-digit
// codes, twoDigitCodes holds the two-digit ones, all others have three.
func countryCodeLen(d string) int {
	switch d[0] {
	case '1', '7':
		return 1
	}
	if twoDigitCodes[d[:2]] {
		return 2
	}
	return 3
}

var twoDigitCodes = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true, "60": true,
	"61": true, "62": true, "63": true, "64": true, "65": true, "66": true, "81": true, "82": true, "84": true,
	"86": true, "90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}

var (
	longDigits = regexp.MustCompile(`[0-9]{4,}`)
	urls       = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://\S+`)
)

// scrub removes what could be a code or a link from a subject line.
func scrub(subject string) string {
	subject = urls.ReplaceAllString(subject, "[link]")
	return longDigits.ReplaceAllString(subject, "****")
}
