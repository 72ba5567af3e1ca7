package flows

import (
	"net/url"
	"strings"
	"time"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows/templates"
)

// render builds the message that carries secret, in the message's
// language.
func (s *Service) render(m *vigil.Message, v *vigil.Verification, to, secret string, now time.Time) (vigil.Outbound, error) {
	d := templates.Data{Product: s.cfg.Product, Channel: m.Channel}
	d.Minutes, d.Hours = templates.Expiry(m.ExpiresAt.Sub(now))
	kind := templates.KindVerificationCode
	switch {
	case v.Method == vigil.MethodLink:
		kind = templates.KindVerificationLink
		d.Link = strings.TrimRight(s.cfg.PublicURL, "/") + "/self-service/verifications/link?token=" + url.QueryEscape(secret)
	case v.Purpose == vigil.PurposeLoginStepUp:
		kind = templates.KindLoginCode
		d.Code = secret
	default:
		d.Code = secret
	}
	return s.write(kind, m.Channel, m.ID, to, m.Locale, d)
}

// write renders a kind of message for one recipient.
func (s *Service) write(kind templates.Kind, ch vigil.Channel, id, to, lang string, d templates.Data) (vigil.Outbound, error) {
	r, err := s.tmpl.Render(kind, ch, lang, d)
	if err != nil {
		return vigil.Outbound{}, err
	}
	return vigil.Outbound{ID: id, Channel: ch, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Locale: r.Lang}, nil
}

// language picks the language of a message: the identity's locale, else
// the caller's Accept-Language, else the default.
func (s *Service) language(locale, acceptLanguage string) string {
	if locale == "" && acceptLanguage == "" {
		return ""
	}
	return s.tmpl.Pick(locale, acceptLanguage)
}
