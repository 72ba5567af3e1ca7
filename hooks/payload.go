package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vigil-auth/vigil"
)

// payload is what the hook bodies carry: a subset of Kratos' Jsonnet ctx
// with the same structure, so both the shipped minimal bodies and a body
// that sends the whole ctx decode.
type payload struct {
	Identity *struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Traits *struct {
			Locale string `json:"locale"`
		} `json:"traits"`
		VerifiableAddresses []struct {
			Value    string `json:"value"`
			Via      string `json:"via"`
			Verified bool   `json:"verified"`
		} `json:"verifiable_addresses"`
	} `json:"identity"`
	Flow *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"flow"`
	Session *struct {
		Devices []struct {
			IPAddress string `json:"ip_address"`
			UserAgent string `json:"user_agent"`
		} `json:"devices"`
	} `json:"session"`
}

const nilUUID = "00000000-0000-0000-0000-000000000000"

var errPreIdentity = errors.New("the identity has no id yet: run this hook after the identity is stored (no response.parse on registration hooks)")

// decode reads a hook body into the identity it is about and the client IP,
// if the body carries a session.
func decode(body []byte) (vigil.Identity, string, error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return vigil.Identity{}, "", fmt.Errorf("body is not the expected JSON object: %w", err)
	}
	if dec.More() {
		return vigil.Identity{}, "", errors.New("body has data after the JSON object")
	}
	if p.Identity == nil {
		return vigil.Identity{}, "", errors.New("body has no identity")
	}
	if p.Identity.ID == nilUUID {
		return vigil.Identity{}, "", errPreIdentity
	}
	if !validUUID(p.Identity.ID) {
		return vigil.Identity{}, "", errors.New("identity.id is not a UUID")
	}
	id := vigil.Identity{ID: p.Identity.ID, Active: p.Identity.State != "inactive"}
	if p.Identity.Traits != nil {
		id.Locale = p.Identity.Traits.Locale
	}
	for _, a := range p.Identity.VerifiableAddresses {
		ch := vigil.Channel(a.Via)
		if !ch.Valid() || a.Value == "" {
			continue
		}
		id.Addresses = append(id.Addresses, vigil.IdentityAddress{Channel: ch, Value: a.Value, Verified: a.Verified})
	}
	var ip string
	if p.Session != nil && len(p.Session.Devices) > 0 {
		ip = hostOnly(p.Session.Devices[0].IPAddress)
	}
	return id, ip, nil
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
