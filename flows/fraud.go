package flows

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/vigil-auth/vigil"
)

// Phone number types, as vigil.yml names them (libphonenumber's types).
const (
	PhoneTypeMobile        = "mobile"
	PhoneTypeFixedOrMobile = "fixed_line_or_mobile"
	PhoneTypeFixedLine     = "fixed_line"
	PhoneTypeTollFree      = "toll_free"
	PhoneTypePremiumRate   = "premium_rate"
	PhoneTypeSharedCost    = "shared_cost"
	PhoneTypeVoIP          = "voip"
	PhoneTypePersonal      = "personal_number"
	PhoneTypePager         = "pager"
	PhoneTypeUAN           = "uan"
	PhoneTypeVoicemail     = "voicemail"
	PhoneTypeUnknown       = "unknown"
)

var phoneTypes = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.MOBILE:               PhoneTypeMobile,
	phonenumbers.FIXED_LINE_OR_MOBILE: PhoneTypeFixedOrMobile,
	phonenumbers.FIXED_LINE:           PhoneTypeFixedLine,
	phonenumbers.TOLL_FREE:            PhoneTypeTollFree,
	phonenumbers.PREMIUM_RATE:         PhoneTypePremiumRate,
	phonenumbers.SHARED_COST:          PhoneTypeSharedCost,
	phonenumbers.VOIP:                 PhoneTypeVoIP,
	phonenumbers.PERSONAL_NUMBER:      PhoneTypePersonal,
	phonenumbers.PAGER:                PhoneTypePager,
	phonenumbers.UAN:                  PhoneTypeUAN,
	phonenumbers.VOICEMAIL:            PhoneTypeVoicemail,
	phonenumbers.UNKNOWN:              PhoneTypeUnknown,
}

// ValidPhoneType reports whether name is one of the PhoneType names.
func ValidPhoneType(name string) bool {
	for _, n := range phoneTypes {
		if n == name {
			return true
		}
	}
	return false
}

// route is where an SMS goes, as far as metrics and the fraud watch need
// to know: never the number itself.
type route struct {
	Country string // ISO 3166-1 alpha-2, "" when unknown
	Prefix  string // "+" and the first PrefixDigits digits
	Type    string // PhoneType*
}

// routeOf describes an E.164 number.
func (s *Service) routeOf(e164 string) route {
	r := route{Type: PhoneTypeUnknown, Prefix: e164}
	if n := s.cfg.SMS.PrefixDigits + 1; len(e164) > n {
		r.Prefix = e164[:n]
	}
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return r
	}
	r.Country = phonenumbers.GetRegionCodeForNumber(num)
	if r.Country == "ZZ" {
		r.Country = ""
	}
	r.Type = phoneTypes[phonenumbers.GetNumberType(num)]
	return r
}

// screen refuses a number the protection does not let a code reach: a
// number type not allowed (premium-rate, shared-cost, VoIP, toll-free,
// unknown by default) or a country outside the allowlist.
func (s *Service) screen(r route) error {
	p := s.cfg.SMS
	if !slices.Contains(p.AllowedTypes, r.Type) {
		return vigil.Errorf(vigil.EUNSUPPORTEDADDR, "This phone number cannot receive verification codes; use a mobile number.")
	}
	if len(p.AllowedCountries) > 0 && !slices.Contains(p.AllowedCountries, r.Country) {
		return vigil.Errorf(vigil.EUNSUPPORTEDADDR, "Verification codes cannot be sent to phone numbers in this country.")
	}
	return nil
}

// Counter keys of the SMS protection. Prefixes and countries are not
// personal data; they are kept in clear so that operators can read them.
const (
	keySMSPrefixHour = "sms:prefix:1h:"
	keySMSGlobalHour = "sms:global:1h"
	keyConvSent      = "sms:conv:sent:"
	keyConvVerified  = "sms:conv:verified:"
)

// takeSMSBudget counts one SMS send to r, in tx, against the per-prefix
// velocity limit and the global hourly budget, and refuses a prefix the
// conversion watch throttles. A refusal rolls the transaction back, counts
// included.
func (s *Service) takeSMSBudget(ctx context.Context, tx vigil.Tx, r route, now time.Time) error {
	if err := s.watchConversion(ctx, tx, r, now); err != nil {
		return err
	}
	if p := s.cfg.SMS.PrefixPerHour; p > 0 {
		if err := s.hit(ctx, tx, keySMSPrefixHour+r.Prefix, time.Hour, p, now); err != nil {
			s.obs.SMSRefused(r.Country, "prefix_velocity")
			return err
		}
	}
	if g := s.cfg.SMS.GlobalPerHour; g > 0 {
		if err := s.hit(ctx, tx, keySMSGlobalHour, time.Hour, g, now); err != nil {
			s.obs.SMSRefused(r.Country, "global_budget")
			return err
		}
	}
	return s.countConversion(ctx, tx, keyConvSent, r, now)
}

// convBucket is the width of the conversion watch's counters: a sixth of
// the window, so the sliding window moves in steps of a sixth.
func (s *Service) convBucket() time.Duration {
	return max(s.cfg.SMS.Conversion.Window/6, time.Minute)
}

// countConversion adds one to the sent or verified counters of the
// route's country and prefix.
func (s *Service) countConversion(ctx context.Context, tx vigil.Tx, kind string, r route, now time.Time) error {
	if s.cfg.SMS.Conversion.Threshold <= 0 {
		return nil
	}
	start := now.Truncate(s.convBucket())
	for _, key := range []string{kind + "country:" + r.Country, kind + "prefix:" + r.Prefix} {
		if _, err := tx.Hit(ctx, key, start, now.Add(-counterRetention)); err != nil {
			return fmt.Errorf("conversion counter: %w", err)
		}
	}
	return nil
}

// watchConversion compares codes verified with codes sent over the
// window, for the route's country and prefix. A ratio below the threshold
// raises the alert metric; for a prefix, with Throttle, it also refuses
// the send until the window slides past the sends that did not convert.
func (s *Service) watchConversion(ctx context.Context, tx vigil.Tx, r route, now time.Time) error {
	w := s.cfg.SMS.Conversion
	if w.Threshold <= 0 {
		return nil
	}
	since := now.Add(-w.Window).Truncate(s.convBucket())
	for _, scope := range []struct{ name, value string }{{"country", r.Country}, {"prefix", r.Prefix}} {
		sent, err := tx.SumHits(ctx, keyConvSent+scope.name+":"+scope.value, since)
		if err != nil {
			return fmt.Errorf("read conversion: %w", err)
		}
		if sent < w.MinSent {
			continue
		}
		verified, err := tx.SumHits(ctx, keyConvVerified+scope.name+":"+scope.value, since)
		if err != nil {
			return fmt.Errorf("read conversion: %w", err)
		}
		ratio := float64(verified) / float64(sent)
		if ratio >= w.Threshold {
			continue
		}
		throttle := w.Throttle && scope.name == "prefix"
		s.obs.ConversionLow(scope.name, scope.value, ratio, throttle)
		if throttle {
			s.log.WarnContext(ctx, "sms prefix throttled: codes sent there are not being verified",
				"prefix", r.Prefix, "country", r.Country, "sent", sent, "verified", verified,
				"conversion", strconv.FormatFloat(ratio, 'f', 2, 64))
			return &vigil.Error{Code: vigil.ERATELIMITED, Message: "Verification codes to this phone number range are paused; try again later or use another address.", RetryAfter: s.convBucket()}
		}
	}
	return nil
}
