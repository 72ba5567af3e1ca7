package flows

import (
	"bytes"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/vigil-auth/vigil"
)

// message is what the templates see.
type message struct {
	Code    string
	Link    string
	Minutes int
	Hours   int
	StepUp  bool
}

var (
	subjects = map[bool]string{false: "Verify your email address", true: "Your sign-in code"}

	textTmpl = texttemplate.Must(texttemplate.New("text").Parse(
		`{{if .Link}}Confirm your email address by opening this link:

{{.Link}}

The link expires in {{if .Hours}}{{.Hours}} hours{{else}}{{.Minutes}} minutes{{end}}.{{else if .StepUp}}Your sign-in code is {{.Code}}.

It expires in {{.Minutes}} minutes.{{else}}Your verification code is {{.Code}}.

It expires in {{.Minutes}} minutes.{{end}} If this was not you, ignore this message.
`))

	smsTmpl = texttemplate.Must(texttemplate.New("sms").Parse(
		`{{if .Link}}Confirm your phone number: {{.Link}}{{else if .StepUp}}Your sign-in code is {{.Code}}. It expires in {{.Minutes}} minutes.{{else}}Your verification code is {{.Code}}. It expires in {{.Minutes}} minutes.{{end}}`))

	htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family:sans-serif;line-height:1.5">
{{if .Link}}<p>Confirm your email address:</p>
<p><a href="{{.Link}}">Confirm my address</a></p>
<p>If the button does not work, copy this link into your browser:<br>{{.Link}}</p>
<p>The link expires in {{if .Hours}}{{.Hours}} hours{{else}}{{.Minutes}} minutes{{end}}.</p>
{{else}}<p>{{if .StepUp}}Your sign-in code is{{else}}Your verification code is{{end}}</p>
<p style="font-size:1.6em;letter-spacing:.2em"><strong>{{.Code}}</strong></p>
<p>It expires in {{.Minutes}} minutes.</p>{{end}}
<p>If this was not you, ignore this message.</p>
</body></html>
`))
)

// render builds the message that carries secret.
func (s *Service) render(m *vigil.Message, v *vigil.Verification, to, secret string, now time.Time) (vigil.Outbound, error) {
	left := m.ExpiresAt.Sub(now)
	d := message{
		Minutes: int((left + time.Minute - 1) / time.Minute),
		StepUp:  v.Purpose == vigil.PurposeLoginStepUp,
	}
	if left >= 2*time.Hour {
		d.Hours = int(left / time.Hour)
	}
	if v.Method == vigil.MethodLink {
		d.Link = strings.TrimRight(s.cfg.PublicURL, "/") + "/self-service/verifications/link?token=" + url.QueryEscape(secret)
	} else {
		d.Code = secret
	}
	out := vigil.Outbound{ID: m.ID, Channel: m.Channel, To: to}
	var buf bytes.Buffer
	if m.Channel == vigil.ChannelSMS {
		if err := smsTmpl.Execute(&buf, d); err != nil {
			return out, err
		}
		out.Text = buf.String()
		return out, nil
	}
	out.Subject = subjects[d.StepUp]
	if err := textTmpl.Execute(&buf, d); err != nil {
		return out, err
	}
	out.Text = buf.String()
	buf.Reset()
	if err := htmlTmpl.Execute(&buf, d); err != nil {
		return out, err
	}
	out.HTML = buf.String()
	return out, nil
}
