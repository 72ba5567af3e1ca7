package flows

import (
	"net/mail"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/vigil-auth/vigil"
)

const maxEmailLength = 254

// Normalize returns the canonical form of an address on a channel and the
// masked form that may be shown and logged. Emails are lower-cased; phone
// numbers become E.164 and must be mobile numbers.
func Normalize(ch vigil.Channel, raw string) (value, masked string, err error) {
	raw = strings.TrimSpace(raw)
	switch ch {
	case vigil.ChannelEmail:
		return normalizeEmail(raw)
	case vigil.ChannelSMS:
		return normalizePhone(raw)
	}
	return "", "", vigil.Errorf(vigil.EINVALID, "Unknown channel %q: use email or sms.", ch)
}

// GuessChannel tells an email address from a phone number.
func GuessChannel(raw string) vigil.Channel {
	if strings.Contains(raw, "@") {
		return vigil.ChannelEmail
	}
	return vigil.ChannelSMS
}

func normalizeEmail(raw string) (string, string, error) {
	bad := vigil.Errorf(vigil.EADDRESS, "The email address is not valid.")
	if raw == "" || len(raw) > maxEmailLength {
		return "", "", bad
	}
	a, err := mail.ParseAddress(raw)
	if err != nil || a.Name != "" || a.Address != raw {
		return "", "", bad
	}
	at := strings.LastIndexByte(raw, '@')
	if at < 1 || !strings.Contains(raw[at+1:], ".") {
		return "", "", bad
	}
	v := strings.ToLower(raw)
	return v, MaskEmail(v), nil
}

func normalizePhone(raw string) (string, string, error) {
	if !strings.HasPrefix(raw, "+") {
		return "", "", vigil.Errorf(vigil.EADDRESS, "The phone number must be in international format, starting with + and the country code.")
	}
	num, err := phonenumbers.Parse(raw, "")
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", "", vigil.Errorf(vigil.EADDRESS, "The phone number is not valid.")
	}
	// Which numbers may receive a code (number type, country) is the SMS
	// protection's call at send time (fraud.go): an address is an address,
	// and one Kratos holds must still match the same one here.
	v := phonenumbers.Format(num, phonenumbers.E164)
	return v, maskPhone(num, v), nil
}

// MaskEmail keeps the first character of the local part and the domain.
func MaskEmail(v string) string {
	at := strings.LastIndexByte(v, '@')
	if at < 1 {
		return "***"
	}
	return v[:1] + "***" + v[at:]
}

func maskPhone(num *phonenumbers.PhoneNumber, e164 string) string {
	cc := phonenumbers.GetCountryCodeForRegion(phonenumbers.GetRegionCodeForNumber(num))
	if cc == 0 {
		cc = int(num.GetCountryCode())
	}
	national := phonenumbers.GetNationalSignificantNumber(num)
	if len(national) < 7 {
		return "+" + strconv.Itoa(cc) + " ****" + last(e164, 2)
	}
	return "+" + strconv.Itoa(cc) + " " + national[:3] + " ****" + last(national, 3)
}

func last(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
