package kratos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// kratosBin finds a Kratos v26.2.0 binary: KRATOS_BIN, else kratos on PATH.
func kratosBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("KRATOS_BIN"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("kratos"); err == nil {
		return bin
	}
	t.Skip("no Kratos: set KRATOS_BIN to a Kratos v26.2.0 binary (or put kratos on PATH) to run kratos.yml for real")
	return ""
}

// fakeVigil stands in for Vigil's admin listener: it records what Kratos
// sends to the hooks and answers the login hook as told.
type fakeVigil struct {
	key string

	mu         sync.Mutex
	calls      []hookCall
	blockLogin bool
}

type hookCall struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// blockedLogin is what Vigil answers when the gate refuses a login.
const blockedLogin = `{"messages":[{"instance_ptr":"#/","messages":[{"id":4070001,
	"text":"Confirm the code we sent to a****@example.com.","type":"error",
	"context":{"reason":"verification_required","challenge_id":"0b6f3e0e-7c1e-4a43-9d4e-0a8f4d1b2c3d","channel":"email","destination":"a****@example.com"}}]}]}`

func (f *fakeVigil) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/hooks/kratos/") {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get(hooksKeyHeader) != f.key {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, hookCall{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	block := f.blockLogin
	f.mu.Unlock()
	if r.URL.Path == "/hooks/kratos/login" && block {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, blockedLogin)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeVigil) setBlockLogin(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blockLogin = b
}

// take returns and forgets the calls so far.
func (f *fakeVigil) take() []hookCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// kratosClient talks to the Kratos under test.
type kratosClient struct {
	t      *testing.T
	public string
	admin  string
	// api sends no cookies: Kratos refuses API flows that carry any.
	api *http.Client
	// browser keeps cookies, like a browser.
	browser *http.Client
}

// call sends JSON (or nothing) as an app would and decodes the JSON answer
// into a map.
func (k *kratosClient) call(method, url string, header http.Header, body any) (int, map[string]any) {
	k.t.Helper()
	return k.do(k.api, method, url, header, body)
}

// browserCall does the same as a browser would, with cookies.
func (k *kratosClient) browserCall(method, url string, body any) (int, map[string]any) {
	k.t.Helper()
	return k.do(k.browser, method, url, nil, body)
}

func (k *kratosClient) do(client *http.Client, method, url string, header http.Header, body any) (int, map[string]any) {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			k.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		k.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vigil-e2e/1.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	maps.Copy(req.Header, header)
	res, err := client.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"_raw": string(raw)}
	}
	return res.StatusCode, out
}

func (k *kratosClient) flowID(kind string, header http.Header) string {
	k.t.Helper()
	status, flow := k.call(http.MethodGet, k.public+"/self-service/"+kind+"/api", header, nil)
	id, _ := flow["id"].(string)
	if status != http.StatusOK || id == "" {
		k.t.Fatalf("create %s flow: %d %v", kind, status, flow)
	}
	return id
}

// startKratos runs kratos.yml as written, except for what a test must
// change: ports, an in-memory database, no password breach lookups (no
// network), and the hooks' URL and key, set through the same environment
// variables docker-compose.yml uses.
func startKratos(t *testing.T, vigilURL, key string) *kratosClient {
	t.Helper()
	bin := kratosBin(t)
	public, admin := freePort(t), freePort(t)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"DSN=memory",
		"LOG_LEVEL=warning",
		"SERVE_PUBLIC_PORT=" + public,
		"SERVE_ADMIN_PORT=" + admin,
		"SERVE_PUBLIC_BASE_URL=http://127.0.0.1:" + public + "/",
		"SERVE_ADMIN_BASE_URL=http://127.0.0.1:" + admin + "/",
		"SELFSERVICE_METHODS_PASSWORD_CONFIG_HAVEIBEENPWNED_ENABLED=false",
	}
	for _, h := range vigilHooks(t, loadYAML(t, "kratos.yml")) {
		env = append(env,
			h.EnvURL()+"="+vigilURL+"/hooks/kratos/"+h.Name,
			strings.TrimSuffix(h.EnvURL(), "_URL")+"_AUTH_CONFIG_VALUE="+key,
		)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "-c", "kratos.yml", "--dev", "--sqa-opt-out")
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kratos output:\n%s", logs.String())
		}
	})

	jar, _ := cookiejar.New(nil)
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	k := &kratosClient{
		t:       t,
		public:  "http://127.0.0.1:" + public,
		admin:   "http://127.0.0.1:" + admin,
		api:     &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects},
		browser: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects, Jar: jar},
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(k.admin + "/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kratos did not get ready:\n%s", logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// onlyCall checks that exactly one hook was called, at path, and returns
// the call with the identity's addresses sorted by value: Kratos keeps no
// particular order.
func onlyCall(t *testing.T, calls []hookCall, path string) hookCall {
	t.Helper()
	if len(calls) != 1 || calls[0].Path != path {
		var paths []string
		for _, c := range calls {
			paths = append(paths, c.Path)
		}
		t.Fatalf("hook calls = %v, want exactly one to %s", paths, path)
	}
	if addrs, ok := at(calls[0].Body, "identity", "verifiable_addresses").([]any); ok {
		sort.Slice(addrs, func(i, j int) bool { return fmt.Sprint(at(addrs[i], "value")) < fmt.Sprint(at(addrs[j], "value")) })
	}
	return calls[0]
}

// The whole integration against the real Kratos: every hook fires with a
// body that holds the contract, registration issues no session, a login
// Vigil refuses shows Vigil's message and can be submitted again, and the
// environment overrides docker-compose.yml relies on take effect.
func TestWithRealKratos(t *testing.T) {
	t.Parallel()
	fake := &fakeVigil{key: "e2e-hooks-key-0123456789"}
	vigil := httptest.NewServer(fake)
	t.Cleanup(vigil.Close)
	k := startKratos(t, vigil.URL, fake.key)

	const password = "correct-horse-battery-staple-42"
	traits := map[string]any{"email": "Alice@Example.com", "phone": "+4915123456789", "locale": "de-AT"}

	// Registration: the hook gets the stored identity; no session comes back.
	flow := k.flowID("registration", nil)
	status, res := k.call(http.MethodPost, k.public+"/self-service/registration?flow="+flow, nil, map[string]any{
		"method": "password", "password": password, "traits": traits,
		"transient_payload": map[string]any{"vigil_device": "dev-123"},
	})
	if status != http.StatusOK {
		t.Fatalf("registration: %d %v", status, res)
	}
	if res["session_token"] != nil || res["session"] != nil {
		t.Fatalf("registration issued a session; the login gate would be skipped: %v", res)
	}
	identityID, _ := at(res, "identity", "id").(string)
	call := onlyCall(t, fake.take(), "/hooks/kratos/registration")
	checkContract(t, "registration", call.Body)
	requireEqualJSON(t, mustJSON(t, `{
		"identity": {"id": "`+identityID+`", "state": "active", "traits": {"locale": "de-AT"},
			"verifiable_addresses": [
				{"value": "+4915123456789", "via": "sms", "verified": false},
				{"value": "alice@example.com", "via": "email", "verified": false}]},
		"flow": {"id": "`+flow+`", "type": "api", "transient_payload": {"vigil_device": "dev-123"}}}`), call.Body)
	if call.Header.Get("Ory-Webhook-Trigger-Id") == "" {
		t.Errorf("no Ory-Webhook-Trigger-Id header")
	}

	// Login refused by Vigil: the person sees Vigil's message, no session.
	fake.setBlockLogin(true)
	flow = k.flowID("login", nil)
	login := map[string]any{"method": "password", "identifier": "alice@example.com", "password": password}
	status, res = k.call(http.MethodPost, k.public+"/self-service/login?flow="+flow, nil, login)
	if status != http.StatusBadRequest {
		t.Fatalf("blocked login: %d %v", status, res)
	}
	msg := at(res, "ui", "messages", 0)
	if at(msg, "id") != float64(4070001) || at(msg, "context", "reason") != "verification_required" ||
		at(msg, "context", "challenge_id") != "0b6f3e0e-7c1e-4a43-9d4e-0a8f4d1b2c3d" {
		t.Fatalf("blocked login shows %v, want Vigil's message 4070001 with its context", at(res, "ui", "messages"))
	}
	call = onlyCall(t, fake.take(), "/hooks/kratos/login")
	checkContract(t, "login", call.Body)
	if ip, _ := at(call.Body, "session", "devices", 0, "ip_address").(string); !strings.HasPrefix(ip, "127.0.0.1") {
		t.Errorf("session.devices[0].ip_address = %q", ip)
	}
	if ua := at(call.Body, "session", "devices", 0, "user_agent"); ua != "vigil-e2e/1.0" {
		t.Errorf("session.devices[0].user_agent = %v", ua)
	}
	if at(call.Body, "flow", "id") != flow || at(call.Body, "flow", "active") != "password" || at(call.Body, "identity", "id") != identityID {
		t.Errorf("login body names the wrong flow or identity: %v", call.Body)
	}

	// The same flow again, now allowed: the session is issued.
	fake.setBlockLogin(false)
	status, res = k.call(http.MethodPost, k.public+"/self-service/login?flow="+flow, nil, login)
	token, _ := res["session_token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("allowed login on the same flow: %d %v", status, res)
	}
	onlyCall(t, fake.take(), "/hooks/kratos/login")

	// A browser login: Kratos hands the hook every cookie, the body only
	// Vigil's.
	pub, _ := url.Parse(k.public)
	k.browser.Jar.SetCookies(pub, []*http.Cookie{{Name: "vigil_device", Value: "browser-device"}, {Name: "other_app", Value: "x"}})
	status, bflow := k.browserCall(http.MethodGet, k.public+"/self-service/login/browser", nil)
	if status != http.StatusOK {
		t.Fatalf("browser login flow: %d %v", status, bflow)
	}
	csrf := ""
	nodes, _ := at(bflow, "ui", "nodes").([]any)
	for _, n := range nodes {
		if at(n, "attributes", "name") == "csrf_token" {
			csrf, _ = at(n, "attributes", "value").(string)
		}
	}
	browserLogin := map[string]any{"method": "password", "identifier": "alice@example.com", "password": password, "csrf_token": csrf}
	bflowID, _ := bflow["id"].(string)
	status, res = k.browserCall(http.MethodPost, k.public+"/self-service/login?flow="+bflowID, browserLogin)
	if status != http.StatusOK {
		t.Fatalf("browser login: %d %v", status, res)
	}
	call = onlyCall(t, fake.take(), "/hooks/kratos/login")
	checkContract(t, "login", call.Body)
	requireEqualJSON(t, map[string]any{"vigil_device": "browser-device"}, object(t, "request_cookies", at(call.Body, "request_cookies")))
	if at(call.Body, "flow", "type") != "browser" {
		t.Errorf("flow.type = %v, want browser", at(call.Body, "flow", "type"))
	}

	// Settings: a new phone number reaches Vigil after Kratos stored it.
	auth := http.Header{"X-Session-Token": {token}}
	flow = k.flowID("settings", auth)
	traits["phone"] = "+4915123456780"
	status, res = k.call(http.MethodPost, k.public+"/self-service/settings?flow="+flow, auth, map[string]any{"method": "profile", "traits": traits})
	if status != http.StatusOK {
		t.Fatalf("settings: %d %v", status, res)
	}
	call = onlyCall(t, fake.take(), "/hooks/kratos/settings")
	checkContract(t, "settings", call.Body)
	requireEqualJSON(t, mustJSON(t, `{"id": "`+identityID+`", "state": "active", "traits": {"locale": "de-AT"},
		"verifiable_addresses": [
			{"value": "+4915123456780", "via": "sms", "verified": false},
			{"value": "alice@example.com", "via": "email", "verified": false}]}`), object(t, "identity", call.Body["identity"]))

	// Verification by Kratos' own flow: Vigil hears of the verified email.
	flow = k.flowID("verification", nil)
	status, res = k.call(http.MethodPost, k.public+"/self-service/verification?flow="+flow, nil, map[string]any{"method": "code", "email": "alice@example.com"})
	if status != http.StatusOK {
		t.Fatalf("verification (send): %d %v", status, res)
	}
	code := latestCode(t, k, "alice@example.com")
	status, res = k.call(http.MethodPost, k.public+"/self-service/verification?flow="+flow, nil, map[string]any{"method": "code", "code": code})
	if status != http.StatusOK || res["state"] != "passed_challenge" {
		t.Fatalf("verification (code): %d %v", status, res)
	}
	call = onlyCall(t, fake.take(), "/hooks/kratos/verification")
	checkContract(t, "verification", call.Body)
	if at(call.Body, "identity", "verifiable_addresses", 1, "verified") != true {
		t.Errorf("verification body does not show the email verified: %v", call.Body)
	}
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// latestCode reads the newest verification code Kratos' courier queued for
// the recipient (the admin API lists messages even when no courier runs).
func latestCode(t *testing.T, k *kratosClient, recipient string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, k.admin+"/admin/courier/messages?recipient="+url.QueryEscape(recipient), nil)
	res, err := k.api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var msgs []struct {
		Body         string    `json:"body"`
		TemplateType string    `json:"template_type"`
		CreatedAt    time.Time `json:"created_at"`
	}
	if err := json.NewDecoder(res.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	var code string
	var newest time.Time
	for _, m := range msgs {
		if m.TemplateType != "verification_code_valid" || !m.CreatedAt.After(newest) {
			continue
		}
		if c := sixDigits.FindString(m.Body); c != "" {
			code, newest = c, m.CreatedAt
		}
	}
	if code == "" {
		t.Fatalf("no verification code queued for %s among %d messages", recipient, len(msgs))
	}
	return code
}
