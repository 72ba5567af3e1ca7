package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/kratostest"
)

// TestKratosLoginBench compares a Kratos API login gated by Vigil with the
// same login whose hook answers 204 at once, beside a real Kratos
// (KRATOS_BIN). It takes minutes, so it runs only with VIGIL_BENCH_KRATOS=1
// (`make bench-kratos`); VIGIL_BENCH_KRATOS_LOGINS sets the number of
// measured rounds (default 300). It is a test, not a Go benchmark, because
// it reuses startWithKratos; it reports and asserts nothing about time.
// docs/benchmarks.md records its figures.
//
// Two Kratos processes run examples/kratos unchanged except for the hook
// URLs:
//
//   - gate: startWithKratos, Vigil on PostgreSQL. Two identities, both
//     verified through Vigil: "synced", whose address Kratos also shows
//     verified (the steady state: the gate allows from the hook body and
//     does not list addresses), and "unsynced", verified while Vigil could
//     not reach Kratos' admin API, which stays unreachable, so Kratos still
//     says unverified and the gate reads Vigil's addresses.
//   - no-op: the same configuration and Jsonnet bodies, every hook pointed at
//     a bare net/http server that reads the body and answers 204. Two
//     identities as well, so that both Kratos processes do the same work per
//     round. It is started with startWithKratos too, for the identical Kratos
//     configuration; the Vigil that comes with it is never called.
//
// Each round runs one login (GET /self-service/login/api, then POST
// /self-service/login?flow=...) of each of the four identities, one after
// another, in an order that rotates from round to round, so that machine
// noise falls on every setup alike.
func TestKratosLoginBench(t *testing.T) {
	if os.Getenv("VIGIL_BENCH_KRATOS") != "1" {
		t.Skip("minutes long: run with VIGIL_BENCH_KRATOS=1 and KRATOS_BIN (make bench-kratos)")
	}
	kratostest.Bin(t)
	rounds := 300
	if s := os.Getenv("VIGIL_BENCH_KRATOS_LOGINS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "VIGIL_BENCH_KRATOS_LOGINS")
		require.Positive(t, n, "VIGIL_BENCH_KRATOS_LOGINS")
		rounds = n
	}
	const warmup = 20

	// Setup A: the gate.
	gate := startWithKratos(t, kratosOptions{})
	syncedID := registerAndVerify(t, gate, "synced@example.com", 1)
	gate.waitVerifiedAtKratos(t, syncedID, "email", 30*time.Second)
	gate.adminLink.down.Store(true)
	unsyncedID := registerAndVerify(t, gate, "unsynced@example.com", 2)
	require.Equal(t, false, address(t, gate.kratos.Identity(t, unsyncedID), "email")["verified"],
		"Kratos must not learn of the unsynced verification")

	// Setup B: the no-op receiver.
	var noopCalls atomic.Int64
	noop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		noopCalls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(noop.Close)
	base := startWithKratos(t, kratosOptions{hookURL: func(string) string { return noop.URL }})
	for _, email := range []string{"noop1@example.com", "noop2@example.com"} {
		id, resp := base.kratos.Register(t, map[string]any{"email": email}, kratosPassword, nil)
		require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	}
	hasher := kratosBenchHasher(t, gate.kratos, syncedID)

	type setup struct {
		name     string
		k        *kratostest.Kratos
		email    string
		samples  *[]time.Duration
		describe string
	}
	var synced, unsynced, none []time.Duration
	setups := []setup{
		{"gate, synced", gate.kratos, "synced@example.com", &synced, "verified at Kratos: hook result read and stored, no address read"},
		{"gate, unsynced", gate.kratos, "unsynced@example.com", &unsynced, "unverified at Kratos: the gate also lists Vigil's addresses"},
		{"no-op", base.kratos, "noop1@example.com", &none, "bare net/http server, reads the body, 204"},
		{"no-op", base.kratos, "noop2@example.com", &none, ""},
	}
	login := func(s setup) time.Duration {
		began := time.Now()
		flow := s.k.LoginFlow(t)
		status, body := s.k.SubmitLogin(t, flow, s.email, kratosPassword, nil)
		took := time.Since(began)
		require.Equal(t, http.StatusOK, status, "%s: %s", s.name, body)
		return took
	}

	began := time.Now()
	calls := noopCalls.Load()
	for round := range warmup + rounds {
		for i := range setups {
			s := setups[(round+i)%len(setups)]
			took := login(s)
			if round >= warmup {
				*s.samples = append(*s.samples, took)
			}
		}
	}
	require.Equal(t, int64(2*(warmup+rounds)), noopCalls.Load()-calls, "the no-op hook ran once per login")

	base50 := kratosBenchPercentile(none, 50)
	t.Logf("Kratos API login (GET flow + POST password), %d rounds after %d warm-up rounds, %s in all; password hash %s", rounds, warmup, time.Since(began).Round(time.Second), hasher)
	t.Logf("%-15s | %6s | %9s | %9s | %9s | %10s | %s", "setup", "logins", "p50", "p90", "p99", "p50 ratio", "p50 - no-op")
	for _, s := range setups[:3] {
		p50 := kratosBenchPercentile(*s.samples, 50)
		t.Logf("%-15s | %6d | %9s | %9s | %9s | %9.3fx | %+.2f ms", s.name, len(*s.samples),
			kratosBenchMS(p50), kratosBenchMS(kratosBenchPercentile(*s.samples, 90)), kratosBenchMS(kratosBenchPercentile(*s.samples, 99)),
			float64(p50)/float64(base50), float64(p50-base50)/float64(time.Millisecond))
	}
	for _, s := range setups[:3] {
		t.Logf("  %s: %s", s.name, s.describe)
	}
	for _, s := range setups[:2] {
		ratio := float64(kratosBenchPercentile(*s.samples, 50)) / float64(base50)
		verdict := "holds"
		if ratio > 1.10 {
			verdict = "DOES NOT hold"
		}
		t.Logf("target p50 <= 1.10x no-op, %s: %.3fx, %s", s.name, ratio, verdict)
	}
}

// registerAndVerify registers an identity at the gate's Kratos, reads
// Vigil's code from the n-th email, submits it to Vigil and checks that a
// login now gets its session. It returns the identity's id.
func registerAndVerify(t *testing.T, e *kratosEnv, email string, n int) string {
	t.Helper()
	id, resp := e.kratos.Register(t, map[string]any{"email": email}, kratosPassword, nil)
	require.NotEmpty(t, id, "registration: %d %s", resp.Status, resp.Body)
	code := e.emailCode(t, n)
	flow := e.kratos.LoginFlow(t)
	status, body := e.kratos.SubmitLogin(t, flow, email, kratosPassword, nil)
	require.Equal(t, http.StatusBadRequest, status, "unverified: the gate blocks: %s", body)
	_, ctx := uiMessage(t, body)
	challenge, _ := ctx["challenge_id"].(string)
	require.NotEmpty(t, challenge)
	e.submitCode(t, challenge, code)
	status, body = e.kratos.SubmitLogin(t, flow, email, kratosPassword, nil)
	require.Equal(t, http.StatusOK, status, "verified: the gate allows: %s", body)
	return id
}

// kratosBenchHasher names the hash Kratos stored for the identity's
// password (e.g. "$2a$12$": bcrypt, cost 12), the work that dominates
// every login. Only the algorithm and its parameters are returned.
func kratosBenchHasher(t *testing.T, k *kratostest.Kratos, id string) string {
	t.Helper()
	resp := k.Do(t, http.MethodGet, k.AdminURL+"/admin/identities/"+id+"?include_credential=password", nil, nil)
	require.Equal(t, http.StatusOK, resp.Status, "%s", resp.Body)
	var v struct {
		Credentials struct {
			Password struct {
				Config struct {
					HashedPassword string `json:"hashed_password"`
				} `json:"config"`
			} `json:"password"`
		} `json:"credentials"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &v))
	// bcrypt: $2a$12$<salt and hash>; argon2: $argon2id$v=19$m=...$<salt>$<hash>.
	parts := strings.Split(v.Credentials.Password.Config.HashedPassword, "$")
	keep := len(parts) - 1
	if len(parts) > 1 && strings.HasPrefix(parts[1], "argon2") {
		keep--
	}
	if keep < 2 {
		return "unknown"
	}
	return strings.Join(parts[:keep], "$") + "$"
}

// kratosBenchPercentile is the nearest-rank p-th percentile.
func kratosBenchPercentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

func kratosBenchMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}
