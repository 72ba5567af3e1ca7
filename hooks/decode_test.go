package hooks

import (
	"net"
	"os"
	"path/filepath"
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
			id, ip, err := decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if id.ID != "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9" || !id.Active || len(id.Addresses) != tc.addrs {
				t.Fatalf("decoded %+v", id)
			}
			if ip != tc.ip {
				t.Fatalf("ip %q, want %q", ip, tc.ip)
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
		id, ip, err := decode(body)
		if err != nil {
			return
		}
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
