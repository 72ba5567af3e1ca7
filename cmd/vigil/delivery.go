package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/captcha"
	"github.com/vigil-auth/vigil/adapters/console"
	"github.com/vigil-auth/vigil/adapters/engagelab"
	"github.com/vigil-auth/vigil/adapters/httpsms"
	"github.com/vigil-auth/vigil/adapters/smtp"
	"github.com/vigil-auth/vigil/adapters/twilio"
	"github.com/vigil-auth/vigil/api"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/flows/templates"
)

// twilioCallbackPath is where Twilio posts delivery reports, on the public
// listener (api serves /callbacks/{provider}/status).
const twilioCallbackPath = "/callbacks/" + twilio.ProviderSMS + "/status"

// link is one provider of a channel's chain and the option that names it.
type link struct{ name, path string }

// chain is a channel's providers, in order: providers, or else the one
// provider. A provider named twice is reported and left out.
func chain(section, provider string, providers []string, ps *problems) []link {
	if len(providers) == 0 {
		return []link{{provider, section + ".provider"}}
	}
	seen := map[string]bool{}
	var out []link
	for i, name := range providers {
		path := fmt.Sprintf("%s.providers[%d]", section, i)
		if seen[name] {
			ps.addf(path, "%s is already in the chain", name)
			continue
		}
		seen[name] = true
		out = append(out, link{name, path})
	}
	return out
}

// delivery is everything vigil.yml's delivery, templates and captcha
// sections build.
type delivery struct {
	chains    map[vigil.Channel][]flows.Provider
	callbacks map[string]api.StatusCallback
	templates *templates.Set
	captcha   vigil.Captcha
	// warnings are worth a log line at start-up (templates that fall back
	// to the default language, SMS templates longer than one segment).
	warnings []string
}

// buildDelivery builds the providers, callbacks, templates and CAPTCHA
// check, reporting every problem at its option path. Validate runs it too,
// so that what start-up would refuse is reported with the rest.
func (c *Config) buildDelivery(stdout io.Writer, logger *slog.Logger) (*delivery, problems) {
	var ps problems
	d := &delivery{chains: map[vigil.Channel][]flows.Provider{}, callbacks: map[string]api.StatusCallback{}}
	// An adapter reports all its problems at once, one per line.
	adapterErr := func(path string, err error, prefix string) {
		for line := range strings.SplitSeq(strings.TrimPrefix(err.Error(), prefix), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				ps.addf(path, "%s", line)
			}
		}
	}

	email := c.Delivery.Email
	for _, l := range chain("delivery.email", email.Provider, email.Providers, &ps) {
		switch l.name {
		case providerConsole:
			d.chains[vigil.ChannelEmail] = append(d.chains[vigil.ChannelEmail], flows.Provider{Name: providerConsole, Sender: console.New(stdout, c.Dev)})
		case providerSMTP:
			sm := email.SMTP
			if sm.URL == "" {
				ps.addf("delivery.email.smtp.url", "required when the email providers include smtp (smtp://user:pass@host:587 or smtps://user:pass@host:465)")
			}
			if sm.From == "" {
				ps.addf("delivery.email.smtp.from", "required when the email providers include smtp")
			}
			if sm.URL == "" || sm.From == "" {
				continue
			}
			s, err := smtp.New(smtp.Config{URL: sm.URL, From: sm.From, Timeout: providerTimeout})
			if err != nil {
				msg := strings.TrimPrefix(err.Error(), "smtp: ")
				p := "delivery.email.smtp.url"
				if strings.HasPrefix(msg, "From") {
					p = "delivery.email.smtp.from"
				}
				ps.addf(p, "%s", msg)
				continue
			}
			d.chains[vigil.ChannelEmail] = append(d.chains[vigil.ChannelEmail], flows.Provider{Name: providerSMTP, Sender: s})
		default:
			ps.addf(l.path, "must be console or smtp, got %q", l.name)
		}
	}

	sms := c.Delivery.SMS
	tw := sms.Twilio
	creds := twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken}
	if tw.APIKeySID != "" || tw.APIKeySecret != "" {
		// The auth token then only checks callback signatures.
		creds = twilio.Credentials{AccountSID: tw.AccountSID, APIKeySID: tw.APIKeySID, APIKeySecret: tw.APIKeySecret}
	}
	callbackURL := ""
	if tw.StatusCallbacks {
		callbackURL = c.Serve.Public.BaseURL + twilioCallbackPath
	}
	for _, l := range chain("delivery.sms", sms.Provider, sms.Providers, &ps) {
		name := l.name
		p := flows.Provider{Name: name}
		switch name {
		case providerConsole:
			p.Sender = console.New(stdout, c.Dev)
		case providerHTTP:
			h := sms.HTTP
			if h.URL == "" {
				ps.addf("delivery.sms.http.url", "required when the sms providers include http")
				continue
			}
			if !isHTTPURL(h.URL) {
				ps.addf("delivery.sms.http.url", "must be an absolute http:// or https:// URL")
				continue
			}
			s, err := httpsms.New(httpsms.Config{URL: h.URL, Headers: h.Headers, BearerToken: h.BearerToken, Timeout: providerTimeout})
			if err != nil {
				p := "delivery.sms.http"
				if strings.Contains(err.Error(), "header") {
					p = "delivery.sms.http.headers"
				}
				adapterErr(p, err, "httpsms: ")
				continue
			}
			p.Sender = s
		case providerTwilio, providerTwilioWhatsApp:
			cfg := twilio.Config{Credentials: creds, StatusCallback: callbackURL, BaseURL: tw.BaseURL, Timeout: providerTimeout}
			if name == providerTwilio {
				cfg.From, cfg.MessagingServiceSID = tw.From, tw.MessagingServiceSID
			} else {
				cfg.From, cfg.WhatsApp = tw.WhatsAppFrom, true
			}
			s, err := twilio.New(cfg)
			if err != nil {
				adapterErr("delivery.sms.twilio", err, "twilio: ")
				continue
			}
			p.Sender = s
		case providerTwilioVerify:
			v, err := twilio.NewVerify(twilio.VerifyConfig{Credentials: creds, ServiceSID: tw.VerifyServiceSID, BaseURL: tw.VerifyBaseURL, Timeout: providerTimeout})
			if err != nil {
				adapterErr("delivery.sms.twilio", err, "twilio: ")
				continue
			}
			p.OTP = v
		case providerEngageLab:
			e := sms.EngageLab
			s, err := engagelab.New(engagelab.Config{BaseURL: e.BaseURL, DevKey: e.DevKey, DevSecret: e.DevSecret,
				TemplateID: e.TemplateID, Language: e.Language, Timeout: providerTimeout})
			if err != nil {
				adapterErr("delivery.sms.engagelab", err, "engagelab: ")
				continue
			}
			p.OTP = s
		default:
			ps.addf(l.path, "must be one of console, http, twilio, twilio_whatsapp, twilio_verify, engagelab, got %q", name)
			continue
		}
		d.chains[vigil.ChannelSMS] = append(d.chains[vigil.ChannelSMS], p)
	}
	if tw.StatusCallbacks {
		cb, err := twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: tw.AuthToken})
		if err != nil {
			ps.addf("delivery.sms.twilio.auth_token", "required with status_callbacks: Twilio signs its callbacks with it")
		} else {
			d.callbacks[twilio.ProviderSMS] = twilioCallback(cb, callbackURL)
		}
	}
	c.validateProtection(&ps)
	c.validateQueue(&ps)

	set, warnings, err := templates.Load(c.Templates.Dir, c.Templates.DefaultLanguage)
	if err != nil {
		path := "templates.dir"
		if c.Templates.Dir == "" {
			path = "templates.default_language"
		}
		ps.addf(path, "%v", err)
	}
	d.templates, d.warnings = set, warnings

	if cp := c.Captcha; cp.Provider != "" && cp.Secret == "" {
		ps.addf("captcha.secret", "required with captcha.provider; set VIGIL_CAPTCHA_SECRET")
	} else if cp.Provider != "" {
		v, err := captcha.New(captcha.Config{Provider: captcha.Provider(cp.Provider), Secret: cp.Secret, SiteKey: cp.SiteKey, URL: cp.URL, Logger: logger})
		if err != nil {
			adapterErr("captcha", err, "captcha: ")
		} else {
			d.captcha = v
		}
	}
	return d, ps
}

// twilioCallback adapts Twilio's callback reader to the API's contract:
// a request not signed by Twilio is unauthorized, a malformed one invalid.
func twilioCallback(cb *twilio.Callbacks, publicURL string) api.StatusCallback {
	return func(r *http.Request) (vigil.StatusUpdate, bool, error) {
		u, ok, err := cb.Parse(r, publicURL)
		if err == nil {
			return u, ok, nil
		}
		if _, bad := errors.AsType[*twilio.SignatureError](err); bad {
			return u, false, vigil.Errorf(vigil.EUNAUTHORIZED, "The request is not signed by Twilio.")
		}
		return u, false, vigil.Errorf(vigil.EINVALID, "The status report could not be read.")
	}
}

// minRescueAfter keeps a delivery from being taken over while it still
// runs: a job may take the queue's 30 s job timeout.
const minRescueAfter = 35 * time.Second

// validateQueue checks delivery.queue.
func (c *Config) validateQueue(ps *problems) {
	q := c.Delivery.Queue
	checkRange(ps, "delivery.queue.workers", q.Workers, 0, 1000, " (0 is the store's default)")
	if q.RescueAfter < minRescueAfter || q.RescueAfter > time.Hour {
		ps.addf("delivery.queue.rescue_after", "must be between %s and 1h, got %s", minRescueAfter, q.RescueAfter)
	}
}

// validateProtection checks delivery.sms.protection.
func (c *Config) validateProtection(ps *problems) {
	p := c.Delivery.SMS.Protection
	const path = "delivery.sms.protection"
	for i, t := range p.AllowedNumberTypes {
		if !flows.ValidPhoneType(t) {
			ps.addf(fmt.Sprintf("%s.allowed_number_types[%d]", path, i), "unknown number type %q (mobile, fixed_line_or_mobile, fixed_line, toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, voicemail, unknown)", t)
		}
	}
	for i, cc := range p.AllowedCountries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			ps.addf(fmt.Sprintf("%s.allowed_countries[%d]", path, i), "must be an upper-case ISO 3166-1 alpha-2 code such as DE, got %q", cc)
		}
	}
	checkRange(ps, path+".prefix_digits", p.PrefixDigits, 1, 15, "")
	checkRange(ps, path+".prefix_per_hour", p.PrefixPerHour, 0, 10_000_000, " (0 is no cap)")
	checkRange(ps, path+".global_per_hour", p.GlobalPerHour, 0, 100_000_000, " (0 is no cap)")
	cv := p.Conversion
	if cv.Threshold < 0 || cv.Threshold > 1 {
		ps.addf(path+".conversion.threshold", "must be between 0 (off) and 1, got %v", cv.Threshold)
	}
	if cv.Threshold > 0 {
		if cv.Window < 6*time.Minute || cv.Window > 24*time.Hour {
			ps.addf(path+".conversion.window", "must be between 6m and 24h, got %s", cv.Window)
		}
		checkRange(ps, path+".conversion.min_sent", cv.MinSent, 1, 1_000_000, "")
	}
}

// validateDelivery adds the delivery, templates and captcha problems.
func (c *Config) validateDelivery(ps *problems) {
	_, found := c.buildDelivery(io.Discard, slog.New(slog.DiscardHandler))
	*ps = append(*ps, found...)
}
