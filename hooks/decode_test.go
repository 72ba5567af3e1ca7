package hooks

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil"
)

func TestDecodeGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ip string
		addrs    int
	}{
		{"login", "127.0.0.1", 2},
		{"registration", "", 2},
		{"settings", "127.0.0.1", 2},
		{"verification", "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("testdata", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			in, err := decode(b)
			if err != nil {
				t.Fatal(err)
			}
			id, from := in.Identity, in.Origin
			if id.ID != "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9" || !id.Active || len(id.Addresses) != tc.addrs {
				t.Fatalf("decoded %+v", id)
			}
			if from.ClientIP != tc.ip {
				t.Fatalf("ip %q, want %q", from.ClientIP, tc.ip)
			}
			if id.Addresses[0].Channel != vigil.ChannelEmail || id.Addresses[1].Channel != vigil.ChannelSMS {
				t.Fatalf("addresses %+v", id.Addresses)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, n := range []string{"login", "registration", "settings", "verification"} {
		b, err := os.ReadFile(filepath.Join("testdata", n+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"identity":{"id":"9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9","verifiable_addresses":[{"value":"+1","via":"sms"},{"value":"x","via":"fax"}]},"session":{"devices":[{"ip_address":"[::1]:80"}]}}`))
	f.Add([]byte(`{"identity":null}`))
	f.Add([]byte(`{"identity":{"id":"00000000-0000-0000-0000-000000000000"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := decode(body)
		if err != nil {
			return
		}
		id, ip := in.Identity, in.ClientIP
		if !validUUID(id.ID) || id.ID == nilUUID {
			t.Fatalf("accepted identity id %q", id.ID)
		}
		for _, a := range id.Addresses {
			if !a.Channel.Valid() || a.Value == "" {
				t.Fatalf("accepted address %+v", a)
			}
		}
		if ip != "" && net.ParseIP(ip) == nil {
			t.Fatalf("accepted client ip %q", ip)
		}
	})
}

func TestDecodeLanguage(t *testing.T) {
	t.Parallel()
	const id = `"id":"9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9"`
	for _, tc := range []struct{ name, identity, want string }{
		{"traits locale", `{` + id + `,"traits":{"locale":"de-AT","lang":"fr"}}`, "de-AT"},
		{"traits lang", `{` + id + `,"traits":{"lang":"fr"}}`, "fr"},
		{"metadata when traits say nothing", `{` + id + `,"traits":{"email":"a@example.com"},"metadata_public":{"locale":"es"}}`, "es"},
		{"traits win over metadata", `{` + id + `,"traits":{"lang":"fr"},"metadata_public":{"locale":"es"}}`, "fr"},
		{"none", `{` + id + `}`, ""},
		{"a locale trait that is no string is ignored", `{` + id + `,"traits":{"locale":{"region":"AT"},"lang":"de"}}`, "de"},
		{"not a language tag", `{` + id + `,"traits":{"locale":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := decode([]byte(`{"identity":` + tc.identity + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := in.Identity; got.Locale != tc.want {
				t.Fatalf("locale %q, want %q", got.Locale, tc.want)
			}
		})
	}
}

func TestDecodeAcceptLanguage(t *testing.T) {
	t.Parallel()
	const identity = `{"identity":{"id":"9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9"}`
	for _, tc := range []struct{ name, headers, want string }{
		{"as Kratos sends it", `{"Accept-Language":["de-AT,de;q=0.9,en;q=0.5"],"User-Agent":["x"]}`, "de-AT,de;q=0.9,en;q=0.5"},
		{"any case", `{"accept-language":["fr"]}`, "fr"},
		{"not allowlisted at Kratos", `{"Accept":["application/json"]}`, ""},
		{"absurdly long", `{"Accept-Language":["` + strings.Repeat("a", 300) + `"]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := decode([]byte(identity + `,"request_headers":` + tc.headers + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if in.AcceptLanguage != tc.want {
				t.Fatalf("accept-language %q, want %q", in.AcceptLanguage, tc.want)
			}
		})
	}
}

func TestDecodeDevice(t *testing.T) {
	t.Parallel()
	const identity = `{"identity":{"id":"9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9"}`
	for _, tc := range []struct{ name, rest, flow, ua, want string }{
		{"browser cookie", `,"request_cookies":{"vigil_device":"c00kie","vigil_other":"x"}`, "", "", "c00kie"},
		{"app transient payload", `,"flow":{"id":"5c2b8a74-7c0e-4d0b-9a57-2f5d0c1b9e11","type":"api","transient_payload":{"vigil_device":"app"}}`,
			"5c2b8a74-7c0e-4d0b-9a57-2f5d0c1b9e11", "", "app"},
		{"cookie wins over payload", `,"flow":{"id":"f","transient_payload":{"vigil_device":"app"}},"request_cookies":{"vigil_device":"c00kie"}`, "f", "", "c00kie"},
		{"payload of another shape", `,"flow":{"id":"f","transient_payload":{"vigil_device":{"x":1}}},"request_cookies":{"vigil_device":7}`, "f", "", ""},
		{"user agent from the session", `,"session":{"devices":[{"ip_address":"10.0.0.1:5","user_agent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}]}`,
			"", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", ""},
		{"none", ``, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := decode([]byte(identity + tc.rest + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := in.deviceToken("vigil_device"); got != tc.want {
				t.Fatalf("device token %q, want %q", got, tc.want)
			}
			if in.FlowID != tc.flow || in.UserAgent != tc.ua {
				t.Fatalf("flow %q, user agent %q", in.FlowID, in.UserAgent)
			}
		})
	}
}
