package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
)

// whatsappPrefix marks a WhatsApp address in Programmable Messaging.
const whatsappPrefix = "whatsapp:"

// maxValidity is the longest ValidityPeriod Twilio takes (36000 s).
const maxValidity = 10 * time.Hour

// Config configures a Sender.
type Config struct {
	Credentials
	// From is the sender: an E.164 number, a short code or an
	// alphanumeric sender ID; with WhatsApp, the E.164 number of the
	// WhatsApp sender (the "whatsapp:" prefix is added). It may be empty
	// when MessagingServiceSID is set.
	From string
	// MessagingServiceSID (MG…) sends through a Messaging Service, which
	// picks the sender from its pool when From is empty.
	MessagingServiceSID string
	// WhatsApp sends every message over WhatsApp instead of SMS.
	WhatsApp bool
	// StatusCallback, when set, is the public URL Twilio posts delivery
	// reports to (see Callbacks).
	StatusCallback string
	// ValidityPeriod, when set, tells Twilio to drop a message still in
	// its queue after this long (1s to 10h), so a code does not arrive
	// after it expired. Zero leaves Twilio's default (10 hours).
	ValidityPeriod time.Duration
	// BaseURL replaces DefaultBaseURL (a regional edge such as
	// https://api.dublin.ie1.twilio.com, or a test server).
	BaseURL string
	// Timeout bounds one Send; a shorter context deadline wins. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, is used as is. The default client does not
	// follow redirects.
	HTTPClient *http.Client
}

// Sender sends SMS or WhatsApp messages through Twilio Programmable
// Messaging. It is safe for concurrent use.
type Sender struct {
	c        *client
	endpoint string
	provider string
	whatsapp bool
	from     string
	service  string
	callback string
	validity int // seconds; zero: Twilio's default
}

var _ vigil.Sender = (*Sender)(nil)

// New checks cfg, reporting every problem at once, and returns a Sender.
func New(cfg Config) (*Sender, error) {
	user, pass, errs := cfg.basicAuth(nil)
	base, err := parseBaseURL(cfg.BaseURL, DefaultBaseURL, "BaseURL")
	if err != nil {
		errs = append(errs, err)
	}
	s := &Sender{
		endpoint: base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		provider: ProviderSMS,
		whatsapp: cfg.WhatsApp,
		service:  cfg.MessagingServiceSID,
		callback: cfg.StatusCallback,
	}
	if cfg.WhatsApp {
		s.provider = ProviderWhatsApp
	}

	from := strings.TrimPrefix(cfg.From, whatsappPrefix)
	switch {
	case from == "" && s.service == "":
		errs = append(errs, errors.New("need From or MessagingServiceSID"))
	case from == "":
	case cfg.WhatsApp && !isE164(from):
		errs = append(errs, errors.New("with WhatsApp, From must be an E.164 number"))
	case !cfg.WhatsApp && strings.HasPrefix(cfg.From, whatsappPrefix):
		errs = append(errs, errors.New("a whatsapp: From needs WhatsApp on"))
	case !cfg.WhatsApp && !validSender(from):
		errs = append(errs, errors.New("without WhatsApp, From must be an E.164 number, a short code or an alphanumeric sender ID"))
	}
	if from != "" {
		s.from = from
		if cfg.WhatsApp {
			s.from = whatsappPrefix + from
		}
	}
	if s.service != "" && !validSID(s.service, "MG") {
		errs = append(errs, errors.New("MessagingServiceSID must be MG followed by 32 hexadecimal digits"))
	}
	if s.callback != "" {
		if u, err := url.Parse(s.callback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("StatusCallback must be an absolute http or https URL"))
		}
	}
	switch v := cfg.ValidityPeriod; {
	case v == 0:
	case v < time.Second || v > maxValidity || v%time.Second != 0:
		errs = append(errs, errors.New("ValidityPeriod must be whole seconds from 1s to 10h"))
	default:
		s.validity = int(v / time.Second)
	}
	s.c, err = newClient(user, pass, cfg.Timeout, cfg.HTTPClient)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("twilio: %w", errors.Join(errs...))
	}
	return s, nil
}

// validSender reports whether s can be an SMS sender: an E.164 number, a
// short code (digits) or an alphanumeric sender ID (up to 11 letters,
// digits and spaces, with at least one letter).
func validSender(s string) bool {
	if isE164(s) {
		return true
	}
	if s == "" || len(s) > 11 {
		return false
	}
	letter := false
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == ' ':
		default:
			return false
		}
	}
	return letter || len(s) <= 8 // short codes are up to 8 digits
}

// Send creates one message. Twilio's 201 means it queued the message, not
// that it was delivered: the result is MessageSent, and delivery comes
// later through a status callback. See the package documentation for
// which errors are permanent.
func (s *Sender) Send(ctx context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	if m.Channel != "" && m.Channel != vigil.ChannelSMS {
		return vigil.SendResult{}, vigil.Permanent(fmt.Errorf("twilio: cannot send channel %q", m.Channel))
	}
	if !isE164(m.To) {
		return vigil.SendResult{}, vigil.Permanent(errors.New("twilio: recipient is not an E.164 phone number"))
	}
	if m.Text == "" {
		return vigil.SendResult{}, vigil.Permanent(errors.New("twilio: message has no text"))
	}
	form := url.Values{}
	if s.whatsapp {
		form.Set("To", whatsappPrefix+m.To)
	} else {
		form.Set("To", m.To)
	}
	form.Set("Body", m.Text)
	if s.from != "" {
		form.Set("From", s.from)
	}
	if s.service != "" {
		form.Set("MessagingServiceSid", s.service)
	}
	if s.callback != "" {
		form.Set("StatusCallback", s.callback)
	}
	if s.validity > 0 {
		form.Set("ValidityPeriod", strconv.Itoa(s.validity))
	}

	const op = "send message"
	resp, err := s.c.post(ctx, op, s.endpoint, form)
	if err != nil {
		return vigil.SendResult{}, err
	}
	if !resp.ok() {
		return vigil.SendResult{}, apiError(op, resp, time.Now())
	}
	// Created. A body we could not read only costs us the SID: failing
	// now would send the code twice.
	res := vigil.SendResult{Provider: s.provider, Status: vigil.MessageSent}
	var created struct {
		SID string `json:"sid"`
	}
	if resp.readErr == nil && json.Unmarshal(resp.body, &created) == nil && plausibleSID(created.SID) {
		res.ProviderID = created.SID
	}
	return res, nil
}
