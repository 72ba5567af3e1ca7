package kratos_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
)

// hookNames are Vigil's four hooks: hooks/<name>.jsonnet renders the body
// of POST /hooks/kratos/<name>, and testdata/hooks_kratos_<name>.json holds
// what Kratos v26.2.0 really sent to that hook (the whole context).
var hookNames = []string{"login", "registration", "settings", "verification"}

// noImports stands in for Kratos' importer, which refuses every import: a
// hook body must be self-contained.
type noImports struct{}

func (noImports) Import(_, path string) (jsonnet.Contents, string, error) {
	return jsonnet.Contents{}, "", errors.New("import not allowed: " + path)
}

// render evaluates a hook body the way Kratos does: the context as the
// top-level argument ctx of an anonymous snippet, imports disabled.
func render(t *testing.T, name string, ctx []byte) (map[string]any, error) {
	t.Helper()
	file := filepath.Join("hooks", name+".jsonnet")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	vm := jsonnet.MakeVM()
	vm.Importer(noImports{})
	vm.TLACode("ctx", string(ctx))
	out, err := vm.EvaluateAnonymousSnippet(file, string(src))
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("%s rendered something that is not a JSON object: %v\n%s", file, err, out)
	}
	return body, nil
}

// goldenContext is the hook context Kratos sent to /hooks/kratos/<name>.
func goldenContext(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "hooks_kratos_"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var capture struct {
		Path string          `json:"path"`
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(raw, &capture); err != nil {
		t.Fatal(err)
	}
	if capture.Path != "/hooks/kratos/"+name {
		t.Fatalf("testdata for %s was captured at %s", name, capture.Path)
	}
	return capture.Body
}

func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON: %v\n%s", err, s)
	}
	return v
}

func requireEqualJSON(t *testing.T, want, got map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("body differs\nwant: %s\ngot:  %s", indent(want), indent(got))
	}
}

// checkContract fails when body has a field outside Vigil's hook contract:
//
//	identity: id, state, traits{locale}, verifiable_addresses[{value, via, verified}]
//	flow: id, type, active, transient_payload
//	session: devices[{ip_address, user_agent}]   (login only)
//	request_cookies: {vigil_*}                    (login only)
func checkContract(t *testing.T, hook string, body map[string]any) {
	t.Helper()
	top := []string{"identity", "flow"}
	if hook == "login" {
		top = append(top, "session", "request_cookies")
	}
	allowed := top
	if hook != "verification" {
		allowed = append(slices.Clone(top), "request_headers")
	}
	onlyKeys(t, "body", body, allowed, top)
	if h, ok := body["request_headers"]; ok {
		onlyKeys(t, "request_headers", object(t, "request_headers", h), []string{"Accept-Language"}, []string{"Accept-Language"})
	}

	identity := object(t, "identity", body["identity"])
	onlyKeys(t, "identity", identity,
		[]string{"id", "state", "traits", "verifiable_addresses"},
		[]string{"id", "state", "traits", "verifiable_addresses"})
	onlyKeys(t, "identity.traits", object(t, "identity.traits", identity["traits"]), []string{"locale"}, nil)
	for i, a := range list(t, "identity.verifiable_addresses", identity["verifiable_addresses"]) {
		keys := []string{"value", "via", "verified"}
		onlyKeys(t, "identity.verifiable_addresses["+strconv.Itoa(i)+"]", object(t, "address", a), keys, keys)
	}

	flow := object(t, "flow", body["flow"])
	onlyKeys(t, "flow", flow, []string{"id", "type", "active", "transient_payload"}, []string{"id", "type"})

	if hook != "login" {
		return
	}
	session := object(t, "session", body["session"])
	onlyKeys(t, "session", session, []string{"devices"}, []string{"devices"})
	for i, d := range list(t, "session.devices", session["devices"]) {
		onlyKeys(t, "session.devices["+strconv.Itoa(i)+"]", object(t, "device", d), []string{"ip_address", "user_agent"}, nil)
	}
	for name := range object(t, "request_cookies", body["request_cookies"]) {
		if !strings.HasPrefix(name, "vigil_") {
			t.Errorf("request_cookies: cookie %q is not Vigil's", name)
		}
	}
}

func onlyKeys(t *testing.T, where string, o map[string]any, allowed, required []string) {
	t.Helper()
	for k := range o {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s: field %q is not in Vigil's hook contract", where, k)
		}
	}
	for _, k := range required {
		if _, ok := o[k]; !ok {
			t.Errorf("%s: field %q is missing", where, k)
		}
	}
}

func object(t *testing.T, where string, v any) map[string]any {
	t.Helper()
	o, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: want an object, got %T", where, v)
	}
	return o
}

func list(t *testing.T, where string, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s: want a list, got %T", where, v)
	}
	return l
}

func indent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// The bodies rendered from the contexts Kratos really sent are exactly
// these: everything Vigil needs, nothing it does not.
func TestBodiesFromRealContexts(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"login": `{
			"identity": {"id": "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9", "state": "active", "traits": {},
				"verifiable_addresses": [
					{"value": "alice@example.com", "via": "email", "verified": false},
					{"value": "+4915123456789", "via": "sms", "verified": false}]},
			"flow": {"id": "89714442-0448-4a9e-ae1d-a950b544d314", "type": "api", "active": "password",
				"transient_payload": {"vigil_device": "dev-123"}},
			"session": {"devices": [{"ip_address": "127.0.0.1:36930", "user_agent": "Mozilla/5.0 test"}]},
			"request_cookies": {}}`,
		"registration": `{
			"identity": {"id": "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9", "state": "active", "traits": {},
				"verifiable_addresses": [
					{"value": "alice@example.com", "via": "email", "verified": false},
					{"value": "+4915123456789", "via": "sms", "verified": false}]},
			"flow": {"id": "b389ce8b-3d8a-4a8b-9ba7-19c526977bf9", "type": "api",
				"transient_payload": {"vigil_device": "dev-123"}}}`,
		"settings": `{
			"identity": {"id": "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9", "state": "active", "traits": {},
				"verifiable_addresses": [
					{"value": "alice@example.com", "via": "email", "verified": false},
					{"value": "+4915123456780", "via": "sms", "verified": false}]},
			"flow": {"id": "ea44781f-9c37-4382-b16b-66c3a89420c5", "type": "api"}}`,
		"verification": `{
			"identity": {"id": "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9", "state": "active", "traits": {},
				"verifiable_addresses": [
					{"value": "alice@example.com", "via": "email", "verified": true},
					{"value": "+4915123456780", "via": "sms", "verified": false}]},
			"flow": {"id": "3e8bcfdc-ad36-4121-83c9-bdeecba07bb3", "type": "api", "active": "code",
				"transient_payload": {}}}`,
	}
	for _, name := range hookNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := render(t, name, goldenContext(t, name))
			if err != nil {
				t.Fatal(err)
			}
			checkContract(t, name, got)
			requireEqualJSON(t, mustJSON(t, want[name]), got)
		})
	}
}

// A context richer than the captured ones (more traits, foreign cookies, a
// session token, admin metadata) still renders only the contract's fields.
func TestBodiesLeaveEverythingElseAtKratos(t *testing.T) {
	t.Parallel()
	for _, name := range hookNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ctx map[string]any
			if err := json.Unmarshal(goldenContext(t, name), &ctx); err != nil {
				t.Fatal(err)
			}
			identity := object(t, "identity", ctx["identity"])
			identity["traits"] = map[string]any{"email": "alice@example.com", "phone": "+4915123456789", "locale": "de-AT", "name": "Alice"}
			identity["metadata_admin"] = map[string]any{"secret": "x"}
			identity["credentials"] = map[string]any{"password": map[string]any{"hashed_password": "x"}}
			ctx["session"] = map[string]any{
				"id": "00000000-0000-0000-0000-000000000000", "token": "ory_st_secret",
				"devices": []any{map[string]any{"id": "d", "ip_address": "203.0.113.9", "user_agent": "UA", "location": "Berlin"}},
			}
			ctx["request_cookies"] = map[string]any{
				"ory_kratos_session": "secret", "csrf_token_abc": "secret", "vigil_device": "tok", "vigil_other": "x", "VIGIL_caps": "no",
			}
			ctx["request_headers"] = map[string]any{
				"Accept-Language": []any{"de-AT,de;q=0.9"}, "Authorization": []any{"Bearer secret"}, "Cookie": []any{"ory_kratos_session=secret"},
			}
			raw, _ := json.Marshal(ctx)

			got, err := render(t, name, raw)
			if err != nil {
				t.Fatal(err)
			}
			checkContract(t, name, got)
			if loc := at(got, "identity", "traits", "locale"); loc != "de-AT" {
				t.Errorf("identity.traits.locale = %v, want de-AT", loc)
			}
			if name != "verification" {
				requireEqualJSON(t, mustJSON(t, `{"Accept-Language": ["de-AT,de;q=0.9"]}`), object(t, "request_headers", got["request_headers"]))
			}
			if name != "login" {
				return
			}
			requireEqualJSON(t, mustJSON(t, `{"devices": [{"ip_address": "203.0.113.9", "user_agent": "UA"}]}`), object(t, "session", got["session"]))
			requireEqualJSON(t, mustJSON(t, `{"vigil_device": "tok", "vigil_other": "x"}`), object(t, "request_cookies", got["request_cookies"]))
		})
	}
}

// Optional parts of the context may be missing or null: the bodies still
// render, with empty lists and objects where the contract has them.
func TestBodiesGuardOptionalFields(t *testing.T) {
	t.Parallel()
	contexts := map[string]string{
		"absent": `{
			"flow": {"id": "f", "type": "browser"},
			"identity": {"id": "i", "state": "active"}}`,
		"null": `{
			"flow": {"id": "f", "type": "browser", "active": null, "transient_payload": null},
			"identity": {"id": "i", "state": "active", "traits": null, "verifiable_addresses": null},
			"session": null, "request_cookies": null}`,
		"session without devices": `{
			"flow": {"id": "f", "type": "browser"},
			"identity": {"id": "i", "state": "active", "traits": {"email": "a@example.com"}, "verifiable_addresses": []},
			"session": {"id": "s"}, "request_cookies": {}}`,
		"device without ip": `{
			"flow": {"id": "f", "type": "browser"},
			"identity": {"id": "i", "state": "active", "traits": {}},
			"session": {"devices": [{"ip_address": null, "user_agent": "UA"}]}}`,
	}
	for _, name := range hookNames {
		for ctxName, ctx := range contexts {
			t.Run(name+"/"+ctxName, func(t *testing.T) {
				t.Parallel()
				got, err := render(t, name, []byte(ctx))
				if err != nil {
					t.Fatal(err)
				}
				checkContract(t, name, got)
				want := `{
					"identity": {"id": "i", "state": "active", "traits": {}, "verifiable_addresses": []},
					"flow": {"id": "f", "type": "browser"}}`
				if name == "login" {
					devices := `[]`
					if ctxName == "device without ip" {
						devices = `[{"user_agent": "UA"}]`
					}
					want = strings.TrimSuffix(want, "}") + `, "session": {"devices": ` + devices + `}, "request_cookies": {}}`
				}
				requireEqualJSON(t, mustJSON(t, want), got)
			})
		}
	}
}

// Without an identity a body fails to render, so Kratos fails the hook
// instead of calling Vigil with nothing to decide on. The error must not be
// "cancel", which would make Kratos skip the hook and, at login, let the
// person in without asking Vigil.
func TestBodiesRefuseAContextWithoutIdentity(t *testing.T) {
	t.Parallel()
	for _, name := range hookNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, name, []byte(`{"flow": {"id": "f", "type": "api"}, "identity": null}`))
			if err == nil {
				t.Fatal("rendered a body without identity")
			}
			if !strings.Contains(err.Error(), "no identity") || strings.Contains(err.Error(), "RUNTIME ERROR: cancel") {
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
}

// Every Jsonnet file in hooks/ is one of the four and has its golden
// context, so a new body cannot slip in untested.
func TestEveryBodyIsTested(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("hooks", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".jsonnet"))
	}
	want := append([]string(nil), hookNames...)
	sort.Strings(want)
	sort.Strings(got)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("hooks/ holds %v, want %v", got, want)
	}
}
