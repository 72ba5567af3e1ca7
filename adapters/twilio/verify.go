package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

// codeMaxCheckAttempts is Verify's answer to a check past its limit.
const codeMaxCheckAttempts = 60202

// VerifyConfig configures a Verify.
type VerifyConfig struct {
	Credentials
	// ServiceSID is the Verify Service (VA…) that makes, sends and checks
	// the codes; its settings decide the code length, the expiry and the
	// message template.
	ServiceSID string
	// SMSChannel is the Verify channel used for vigil.ChannelSMS: "sms"
	// (the default), "whatsapp" or "call".
	SMSChannel string
	// BaseURL replaces DefaultVerifyBaseURL.
	BaseURL string
	// Timeout bounds one request; a shorter context deadline wins. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is. The default client does not
	// follow redirects.
	HTTPClient *http.Client
}

// Verify sends and checks one-time codes with Twilio Verify v2; Twilio
// makes the codes. It is safe for concurrent use.
type Verify struct {
	c          *client
	sendURL    string
	checkURL   string
	smsChannel string
}

var _ vigil.OTPSender = (*Verify)(nil)

// NewVerify checks cfg, reporting every problem at once, and returns a
// Verify.
func NewVerify(cfg VerifyConfig) (*Verify, error) {
	user, pass, errs := cfg.basicAuth(nil)
	if !validSID(cfg.ServiceSID, "VA") {
		errs = append(errs, errors.New("ServiceSID must be VA followed by 32 hexadecimal digits"))
	}
	base, err := parseBaseURL(cfg.BaseURL, DefaultVerifyBaseURL, "BaseURL")
	if err != nil {
		errs = append(errs, err)
	}
	v := &Verify{
		sendURL:    base + "/v2/Services/" + url.PathEscape(cfg.ServiceSID) + "/Verifications",
		checkURL:   base + "/v2/Services/" + url.PathEscape(cfg.ServiceSID) + "/VerificationCheck",
		smsChannel: cfg.SMSChannel,
	}
	switch v.smsChannel {
	case "":
		v.smsChannel = "sms"
	case "sms", "whatsapp", "call":
	default:
		errs = append(errs, fmt.Errorf("SMSChannel %q: want sms, whatsapp or call", cfg.SMSChannel))
	}
	v.c, err = newClient(user, pass, cfg.Timeout, cfg.HTTPClient)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("twilio: %w", errors.Join(errs...))
	}
	return v, nil
}

// SendOTP starts a verification: Twilio makes a code and sends it. While a
// verification to the same recipient is pending, Twilio sends the same
// code again under the same SID, so a retry after a lost answer repeats a
// message but never changes the code. ProviderID is the verification SID
// (VE…), which CheckOTP prefers.
func (v *Verify) SendOTP(ctx context.Context, r vigil.OTPRequest) (vigil.SendResult, error) {
	form := url.Values{}
	switch r.Channel {
	case "", vigil.ChannelSMS:
		if !isE164(r.To) {
			return vigil.SendResult{}, vigil.Permanent(errors.New("twilio: recipient is not an E.164 phone number"))
		}
		form.Set("Channel", v.smsChannel)
	case vigil.ChannelEmail:
		if !plausibleEmail(r.To) {
			return vigil.SendResult{}, vigil.Permanent(errors.New("twilio: recipient is not an email address"))
		}
		form.Set("Channel", "email")
	default:
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("twilio: cannot send channel %q", r.Channel))
	}
	form.Set("To", r.To)
	locale := validLocale(r.Locale)
	if locale {
		form.Set("Locale", r.Locale)
	}

	const op = "start verification"
	resp, err := v.c.post(ctx, op, v.sendURL, form)
	if err == nil && locale && resp.status == http.StatusNotFound {
		// Twilio answers an unsupported Locale with 404 and advises
		// asking again without it, so that the number's country picks
		// the language.
		form.Del("Locale")
		resp, err = v.c.post(ctx, op, v.sendURL, form)
	}
	if err != nil {
		return vigil.SendResult{}, err
	}
	if !resp.ok() {
		return vigil.SendResult{}, apiError(op, resp, time.Now())
	}
	res := vigil.SendResult{Provider: ProviderVerify, Status: vigil.MessageSent}
	var created struct {
		SID string `json:"sid"`
	}
	if resp.readErr == nil && json.Unmarshal(resp.body, &created) == nil && plausibleSID(created.SID) {
		res.ProviderID = created.SID
	}
	return res, nil
}

// CheckOTP asks Twilio whether code is the one it sent, by verification
// SID when c.ProviderID is one, else by recipient. Twilio's "approved" is
// true; "pending" (a wrong code) is false; a verification Twilio no longer
// has (404: expired, approved already, or deleted after too many checks)
// and Twilio's own check limit (60202) are false too. A code that cannot
// be one of Twilio's (4 to 10 letters or digits) is false without asking.
func (v *Verify) CheckOTP(ctx context.Context, c vigil.OTPCheck) (bool, error) {
	if !plausibleCode(c.Code) {
		return false, nil
	}
	form := url.Values{}
	switch {
	case validSID(c.ProviderID, "VE"):
		form.Set("VerificationSid", c.ProviderID)
	case c.To != "":
		form.Set("To", c.To)
	default:
		return false, vigil.Permanent(errors.New("twilio: check verification: neither a verification SID nor a recipient"))
	}
	form.Set("Code", c.Code)

	const op = "check verification"
	resp, err := v.c.post(ctx, op, v.checkURL, form)
	if err != nil {
		return false, err
	}
	switch {
	case resp.ok():
		var check struct {
			Status string `json:"status"`
		}
		if resp.readErr != nil {
			return false, fmt.Errorf("twilio: %s: read answer: %w", op, resp.readErr)
		}
		if err := json.Unmarshal(resp.body, &check); err != nil {
			return false, fmt.Errorf("twilio: %s: answer is not JSON: %w", op, err)
		}
		return check.Status == "approved", nil
	case resp.status == http.StatusNotFound:
		return false, nil
	case resp.status == http.StatusTooManyRequests && errorCode(resp.body) == codeMaxCheckAttempts:
		return false, nil
	}
	return false, apiError(op, resp, time.Now())
}

// plausibleCode reports whether code can be a Verify code: 4 to 10
// letters or digits.
func plausibleCode(code string) bool {
	if len(code) < 4 || len(code) > 10 {
		return false
	}
	for i := range len(code) {
		if !isAlnum(code[i]) {
			return false
		}
	}
	return true
}

// plausibleEmail is a sanity check, not validation: Vigil validated the
// address when it was added.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 && !strings.ContainsAny(s, " \r\n\x00<>")
}

// validLocale reports whether l looks like a BCP 47 tag ("de", "pt-BR",
// "zh-HK"); anything else is left out rather than sent.
func validLocale(l string) bool {
	if l == "" || len(l) > 35 {
		return false
	}
	for i := range len(l) {
		if !isAlnum(l[i]) && l[i] != '-' {
			return false
		}
	}
	return true
}
