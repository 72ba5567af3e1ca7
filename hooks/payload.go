package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

// payload is what the hook bodies carry: a subset of Kratos' Jsonnet ctx
// with the same structure, so both the shipped minimal bodies and a body
// that sends the whole ctx decode.
type payload struct {
	Identity *struct {
		ID                  string        `json:"id"`
		State               string        `json:"state"`
		Traits              *languageHint `json:"traits"`
		MetadataPublic      *languageHint `json:"metadata_public"`
		VerifiableAddresses []struct {
			Value    string `json:"value"`
			Via      string `json:"via"`
			Verified bool   `json:"verified"`
		} `json:"verifiable_addresses"`
	} `json:"identity"`
	Flow *struct {
		ID               string `json:"id"`
		Type             string `json:"type"`
		TransientPayload *struct {
			// VigilDevice is a native app's device token; any, so that
			// a payload of another shape does not make the body
			// unreadable.
			VigilDevice any `json:"vigil_device"`
		} `json:"transient_payload"`
	} `json:"flow"`
	// RequestCookies are the cookies of the person's request (the shipped
	// Jsonnet passes on only Vigil's own). Kratos sends none for API
	// flows.
	RequestCookies map[string]any `json:"request_cookies"`
	// RequestHeaders are the headers of the person's request, as far as
	// Kratos' clients.web_hook.header_allowlist lets them through
	// (Accept-Language is on its default list).
	RequestHeaders map[string][]string `json:"request_headers"`
	Session        *struct {
		Devices []struct {
			IPAddress string `json:"ip_address"`
			UserAgent string `json:"user_agent"`
		} `json:"devices"`
	} `json:"session"`
}

// languageHint is where an identity may say which language it reads:
// traits or public metadata, as locale or lang.
// The fields are any: a schema whose locale trait is not a string must
// not make the body unreadable; such a value is ignored.
type languageHint struct {
	Locale any `json:"locale"`
	Lang   any `json:"lang"`
}

func (h *languageHint) get() string {
	if h == nil {
		return ""
	}
	if s, ok := h.Locale.(string); ok && s != "" {
		return s
	}
	s, _ := h.Lang.(string)
	return s
}

const nilUUID = "00000000-0000-0000-0000-000000000000"

var errPreIdentity = errors.New("the identity has no id yet: run this hook after the identity is stored (no response.parse on registration hooks)")

// input is what a hook body says: the identity it is about and what it
// says of the person's request.
type input struct {
	Identity vigil.Identity
	flows.Origin
	FlowID string
	// Cookies are the request's cookies with string values.
	Cookies map[string]string
	// AppDevice is transient_payload.vigil_device of a native app.
	AppDevice string
}

// deviceToken is the device token the request presented: the browser's
// cookie, else the app's transient payload.
func (in *input) deviceToken(cookie string) string {
	if t := in.Cookies[cookie]; t != "" {
		return t
	}
	return in.AppDevice
}

// decode reads a hook body into the identity it is about and what it says
// of the person's request: the client IP and user agent, if the body
// carries a session; the Accept-Language header, if it carries the
// request's headers; the flow; and the device token, if any.
func decode(body []byte) (*input, error) {
	var p payload
	// Unmarshal, not a Decoder: it reads the body in place (a Decoder
	// copies it into its own buffer first) and refuses data after the
	// object.
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("body is not the expected JSON object: %w", err)
	}
	if p.Identity == nil {
		return nil, errors.New("body has no identity")
	}
	if p.Identity.ID == nilUUID {
		return nil, errPreIdentity
	}
	if !validUUID(p.Identity.ID) {
		return nil, errors.New("identity.id is not a UUID")
	}
	id := vigil.Identity{ID: p.Identity.ID, Active: p.Identity.State != "inactive"}
	id.Locale = p.Identity.Traits.get()
	if id.Locale == "" {
		id.Locale = p.Identity.MetadataPublic.get()
	}
	if len(id.Locale) > 35 {
		id.Locale = "" // not a language tag; the default will do
	}
	for _, a := range p.Identity.VerifiableAddresses {
		ch := vigil.Channel(a.Via)
		if !ch.Valid() || a.Value == "" {
			continue
		}
		id.Addresses = append(id.Addresses, vigil.IdentityAddress{Channel: ch, Value: a.Value, Verified: a.Verified})
	}
	in := &input{Identity: id}
	if p.Session != nil && len(p.Session.Devices) > 0 {
		in.ClientIP = hostOnly(p.Session.Devices[0].IPAddress)
		if ua := p.Session.Devices[0].UserAgent; len(ua) <= 1024 {
			in.UserAgent = ua
		}
	}
	for name, values := range p.RequestHeaders {
		if strings.EqualFold(name, "Accept-Language") && len(values) > 0 && len(values[0]) <= 256 {
			in.AcceptLanguage = values[0]
		}
	}
	if p.Flow != nil {
		in.FlowID = p.Flow.ID
		if tp := p.Flow.TransientPayload; tp != nil {
			in.AppDevice, _ = tp.VigilDevice.(string)
		}
	}
	for name, v := range p.RequestCookies {
		if s, ok := v.(string); ok {
			if in.Cookies == nil {
				in.Cookies = map[string]string{}
			}
			in.Cookies[name] = s
		}
	}
	return in, nil
}

// hostOnly drops the port Kratos may append to a device's address
// ("127.0.0.1:33192").
func hostOnly(addr string) string {
	addr = strings.TrimSpace(addr)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	if ip := net.ParseIP(addr); ip != nil {
		return ip.String()
	}
	return ""
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return false
			}
		}
	}
	return true
}
