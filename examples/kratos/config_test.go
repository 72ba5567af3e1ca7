package kratos_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The login methods Kratos v26.2.0 has (selfservice.flows.login.after.<m>)
// and the registration methods (selfservice.flows.registration.after.<m>).
var (
	loginMethods        = []string{"password", "code", "oidc", "webauthn", "passkey", "totp", "lookup_secret"}
	registrationMethods = []string{"password", "code", "oidc", "webauthn", "passkey"}
)

const (
	hooksKeyHeader      = "X-Vigil-Key"
	hooksKeyPlaceholder = "change-me-hooks-api-key"
	localVigilAdmin     = "http://127.0.0.1:4481"
	composeVigilAdmin   = "http://vigil:4481"
)

// vigilHook is one of Vigil's web hooks in kratos.yml.
type vigilHook struct {
	// Path is the option path of the hook's list entry, e.g.
	// selfservice.flows.login.after.password.hooks.0
	Path string
	Name string // login, registration, settings, verification
	Hook map[string]any
}

// EnvURL is the environment variable that overrides the hook's URL.
func (h vigilHook) EnvURL() string {
	return strings.ToUpper(strings.ReplaceAll(h.Path+".config.url", ".", "_"))
}

func loadYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// at walks a path of map keys and list indexes; nil when it is not there.
func at(v any, path ...any) any {
	for _, p := range path {
		switch key := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[key]
		case int:
			l, ok := v.([]any)
			if !ok || key >= len(l) {
				return nil
			}
			v = l[key]
		}
	}
	return v
}

// hookLists lists every hook list kratos.yml has under selfservice.flows,
// by option path.
func hookLists(cfg map[string]any) map[string][]any {
	out := map[string][]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, sub := range m {
			p := path + "." + k
			if k == "hooks" {
				if l, ok := sub.([]any); ok {
					out[p] = l
				}
				continue
			}
			walk(p, sub)
		}
	}
	walk("selfservice.flows", at(cfg, "selfservice", "flows"))
	return out
}

// vigilHooks finds every hook in kratos.yml that calls Vigil.
func vigilHooks(t *testing.T, cfg map[string]any) []vigilHook {
	t.Helper()
	var out []vigilHook
	for path, list := range hookLists(cfg) {
		for i, h := range list {
			hook, _ := h.(map[string]any)
			url, _ := at(hook, "config", "url").(string)
			if !strings.HasPrefix(url, localVigilAdmin+"/hooks/kratos/") {
				continue
			}
			out = append(out, vigilHook{
				Path: fmt.Sprintf("%s.%d", path, i),
				Name: strings.TrimPrefix(url, localVigilAdmin+"/hooks/kratos/"),
				Hook: hook,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Every login method has the gate (parse: true), every registration method
// the post-persist registration hook and no session hook, profile changes
// and Kratos' verification reach Vigil; each hook authenticates and has a
// body that exists.
func TestKratosConfigPutsVigilOnEveryMethod(t *testing.T) {
	t.Parallel()
	cfg := loadYAML(t, "kratos.yml")

	want := map[string]string{}
	for _, m := range loginMethods {
		want["selfservice.flows.login.after."+m+".hooks.0"] = "login"
	}
	for _, m := range registrationMethods {
		want["selfservice.flows.registration.after."+m+".hooks.0"] = "registration"
	}
	want["selfservice.flows.settings.after.profile.hooks.0"] = "settings"
	want["selfservice.flows.verification.after.hooks.0"] = "verification"

	got := map[string]string{}
	for _, h := range vigilHooks(t, cfg) {
		got[h.Path] = h.Name
		t.Run(h.Path, func(t *testing.T) {
			t.Parallel()
			c, _ := h.Hook["config"].(map[string]any)
			if h.Hook["hook"] != "web_hook" {
				t.Errorf("hook = %v, want web_hook", h.Hook["hook"])
			}
			if c["method"] != "POST" {
				t.Errorf("method = %v, want POST", c["method"])
			}
			body, _ := c["body"].(string)
			if body != "file://./hooks/"+h.Name+".jsonnet" {
				t.Errorf("body = %q, want file://./hooks/%s.jsonnet", body, h.Name)
			}
			if _, err := os.Stat(strings.TrimPrefix(body, "file://")); err != nil {
				t.Errorf("body file: %v", err)
			}
			auth := map[string]any{"type": "api_key", "config": map[string]any{"name": hooksKeyHeader, "value": hooksKeyPlaceholder, "in": "header"}}
			if !jsonEqual(c["auth"], auth) {
				t.Errorf("auth = %v, want %v", c["auth"], auth)
			}
			if c["can_interrupt"] != nil {
				t.Errorf("can_interrupt is deprecated; use response.parse")
			}
			parse := at(c, "response", "parse") == true
			// Only the login gate decides; the others run after Kratos
			// stored the change (post-persist) and only inform Vigil.
			if wantParse := h.Name == "login"; parse != wantParse {
				t.Errorf("response.parse = %v, want %v", parse, wantParse)
			}
			if at(c, "response", "ignore") == true {
				t.Errorf("response.ignore makes the call asynchronous; Vigil's answer would be lost")
			}
		})
	}
	if !jsonEqual(want, got) {
		t.Errorf("Vigil's hooks in kratos.yml:\n got %v\nwant %v", got, want)
	}

	// No session is issued at registration: the login gate comes first.
	for path, list := range hookLists(cfg) {
		if !strings.HasPrefix(path, "selfservice.flows.registration.") {
			continue
		}
		for i, h := range list {
			if at(h, "hook") == "session" {
				t.Errorf("%s.%d is a session hook: registration must not log people in before the gate", path, i)
			}
		}
	}
	// A global login list would be ignored for every method that has its
	// own, which is every one: keeping one would only mislead.
	if at(cfg, "selfservice", "flows", "login", "after", "hooks") != nil {
		t.Errorf("selfservice.flows.login.after.hooks is set but never used: every method has its own list")
	}
	for _, m := range loginMethods {
		if at(cfg, "selfservice", "methods", m, "enabled") != true {
			t.Errorf("selfservice.methods.%s is not enabled", m)
		}
	}
}

func TestIdentitySchema(t *testing.T) {
	t.Parallel()
	cfg := loadYAML(t, "kratos.yml")
	url, _ := at(cfg, "identity", "schemas", 0, "url").(string)
	if url != "file://./identity.schema.json" {
		t.Fatalf("identity.schemas[0].url = %q", url)
	}
	raw, err := os.ReadFile("identity.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	traits := at(schema, "properties", "traits", "properties")
	for _, c := range []struct {
		trait, format, via string
	}{
		{"email", "email", "email"},
		{"phone", "tel", "sms"},
	} {
		if f := at(traits, c.trait, "format"); f != c.format {
			t.Errorf("%s: format = %v, want %s (Kratos validates and normalizes by it)", c.trait, f, c.format)
		}
		if v := at(traits, c.trait, "ory.sh/kratos", "verification", "via"); v != c.via {
			t.Errorf("%s: verification via = %v, want %s", c.trait, v, c.via)
		}
		if at(traits, c.trait, "ory.sh/kratos", "credentials", "password", "identifier") != true {
			t.Errorf("%s: not a password identifier", c.trait)
		}
	}
	if at(traits, "locale", "type") != "string" {
		t.Errorf("locale trait missing")
	}
	if req, _ := at(schema, "properties", "traits", "required").([]any); len(req) != 1 || req[0] != "email" {
		t.Errorf("required traits = %v, want [email]", req)
	}
}

// docker-compose.yml runs kratos.yml unchanged and points every one of
// Vigil's hooks at the vigil container, and nothing else; the hooks key is
// the same on both sides.
func TestComposeRedirectsEveryHook(t *testing.T) {
	t.Parallel()
	cfg := loadYAML(t, "kratos.yml")
	compose := loadYAML(t, filepath.Join("..", "..", "docker-compose.yml"))

	kratosEnv, ok := at(compose, "services", "kratos", "environment").(map[string]any)
	if !ok {
		t.Fatal("services.kratos.environment is not a map")
	}
	env := map[string]string{}
	for k, v := range kratosEnv {
		env[k] = fmt.Sprint(v)
	}
	seen := map[string]bool{}
	for _, h := range vigilHooks(t, cfg) {
		name := h.EnvURL()
		seen[name] = true
		want := composeVigilAdmin + "/hooks/kratos/" + h.Name
		if env[name] != want {
			t.Errorf("kratos environment %s = %q, want %q", name, env[name], want)
		}
	}
	for name := range env {
		if strings.HasPrefix(name, "SELFSERVICE_") && strings.HasSuffix(name, "_CONFIG_URL") && !seen[name] {
			t.Errorf("kratos environment %s overrides a hook kratos.yml does not have", name)
		}
	}

	if at(compose, "services", "vigil", "environment", "VIGIL_HOOKS_API_KEY") != hooksKeyPlaceholder {
		t.Errorf("vigil's VIGIL_HOOKS_API_KEY differs from the key kratos.yml sends")
	}
	mounts, _ := at(compose, "services", "kratos", "volumes").([]any)
	if len(mounts) != 1 || !strings.HasPrefix(fmt.Sprint(mounts[0]), "./examples/kratos:/etc/config/kratos") {
		t.Errorf("kratos volumes = %v, want examples/kratos at /etc/config/kratos", mounts)
	}
	if at(compose, "services", "kratos", "working_dir") != "/etc/config/kratos" {
		t.Errorf("kratos working_dir must be /etc/config/kratos: kratos.yml names its files relative to it")
	}
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
