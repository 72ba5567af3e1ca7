package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to look into the store the subprocess uses
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"; adapters/sqlite registers it too

	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

// The tests in this file run the binary against a fake Twilio
// (internal/twiliotest), configured only through VIGIL_* variables, on
// each store.

const (
	twilioFrom = "+15005550006"
	// realRescueEnv makes TestE2EKillWhileDeliveriesPending wait for the
	// store's own rescue of the jobs the killed process held (a minute
	// and more) instead of ageing them; see e2eStore.expireLeases.
	realRescueEnv = "VIGIL_TEST_E2E_REAL_RESCUE"
)

// smsCode is the code in an SMS body (verification.code_length is 6).
var smsCode = regexp.MustCompile(`\b\d{6}\b`)

// e2eStore is a database a vigil subprocess runs on, with the few queries
// the tests make behind its back.
type e2eStore struct {
	name string
	dsn  string
	db   *sql.DB
	// inFlight counts delivery jobs claimed by a process and not settled.
	inFlight string
	// expire ages those claims by an hour (see expireLeases).
	expire []string
}

// e2eStores returns a fresh SQLite file in dir and a fresh PostgreSQL
// schema, each with a connection the test uses to look inside.
func e2eStores(t *testing.T, dir string) []*e2eStore {
	t.Helper()
	sqlitePath := filepath.Join(dir, "vigil.db")
	pgDSN := pgtest.DSN(t)
	stores := []*e2eStore{
		{
			name: "sqlite",
			dsn:  "sqlite://" + sqlitePath,
			// A claimed message holds lease_until (microseconds, as
			// adapters/sqlite stores time) until its job settles.
			inFlight: `SELECT count(*) FROM messages WHERE lease_until IS NOT NULL`,
			expire:   []string{`UPDATE messages SET lease_until = lease_until - 3600000000 WHERE lease_until IS NOT NULL`},
		},
		{
			name: "postgres",
			dsn:  pgDSN,
			// River's tables are in the same schema as ours.
			inFlight: `SELECT count(*) FROM river_job WHERE kind = 'vigil_delivery' AND state = 'running'`,
			expire: []string{
				`UPDATE river_job SET attempted_at = attempted_at - interval '1 hour' WHERE state = 'running'`,
				`UPDATE river_leader SET elected_at = elected_at - interval '1 hour', expires_at = expires_at - interval '1 hour'`,
			},
		},
	}
	var err error
	stores[0].db, err = sql.Open("sqlite", sqlitePath+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	stores[1].db, err = sql.Open("pgx", pgDSN)
	require.NoError(t, err)
	for _, s := range stores {
		// Registered after pgtest.DSN's cleanup, so it runs before the
		// schema is dropped.
		t.Cleanup(func() { s.db.Close() })
	}
	return stores
}

// count runs a count(*) query.
func (s *e2eStore) count(t *testing.T, query string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var n int
	require.NoError(t, s.db.QueryRowContext(ctx, query).Scan(&n), query)
	return n
}

// expireLeases makes the delivery jobs a killed process held look an hour
// old, as if the store's own timeout (the SQLite lease, River's
// RescueStuckJobsAfter, both a minute and fixed in main.go) had run out,
// and lets the next process lead River at once instead of after the dead
// leader's term. The store's own code still finds and reruns the jobs;
// only the wait is skipped. Call it only while no vigil process runs.
func (s *e2eStore) expireLeases(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, q := range s.expire {
		_, err := s.db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
}

// twilioVigil is the environment of a vigil serve that sends SMS through
// a fake Twilio.
func twilioVigil(dsn string, tw *twiliotest.Server, extra map[string]string) map[string]string {
	env := map[string]string{
		"VIGIL_DSN":                                  dsn,
		"VIGIL_SECRETS_SYSTEM":                       testSecret,
		"VIGIL_ADMIN_API_KEY":                        testKey,
		"VIGIL_HOOKS_API_KEY":                        testHookKey,
		"VIGIL_VERIFICATION_ENABLE_SMS_VERIFICATION": "true",
		"VIGIL_DELIVERY_SMS_PROVIDER":                providerTwilio,
		"VIGIL_DELIVERY_SMS_TWILIO_BASE_URL":         tw.URL(),
		"VIGIL_DELIVERY_SMS_TWILIO_ACCOUNT_SID":      tw.AccountSID,
		"VIGIL_DELIVERY_SMS_TWILIO_AUTH_TOKEN":       tw.AuthToken,
		"VIGIL_DELIVERY_SMS_TWILIO_FROM":             twilioFrom,
	}
	maps.Copy(env, extra)
	return env
}

type served struct {
	proc   *proc
	public string
	admin  string
}

// serveOn runs `vigil serve --migrate` in dir with env on free ports (the
// public one given, when not zero) and waits until both listeners answer.
func serveOn(t *testing.T, bin, dir string, env map[string]string, publicPort int) *served {
	t.Helper()
	if publicPort == 0 {
		publicPort = freePort(t)
	}
	adminPort := freePort(t)
	env = maps.Clone(env)
	env["VIGIL_SERVE_PUBLIC_PORT"] = strconv.Itoa(publicPort)
	env["VIGIL_SERVE_ADMIN_PORT"] = strconv.Itoa(adminPort)
	s := &served{
		proc:   startVigil(t, bin, dir, baseEnv(env), "serve", "--migrate"),
		public: fmt.Sprintf("http://127.0.0.1:%d", publicPort),
		admin:  fmt.Sprintf("http://127.0.0.1:%d", adminPort),
	}
	waitReady(t, s.proc, s.admin)
	waitReady(t, s.proc, s.public)
	return s
}

// kill sends SIGKILL: no shutdown, nothing flushed, jobs left claimed.
func (s *served) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, s.proc.cmd.Process.Kill())
	<-s.proc.exited
}

// loadClient keeps a connection per concurrent caller instead of the
// default transport's two.
var loadClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32},
}

// adminJSON is call for other goroutines than the test's: it reports
// instead of failing.
func adminJSON(ctx context.Context, method, url string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := loadClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s answered %d: %s", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, nil
}

// forEach runs f for 0..n-1 on workers goroutines and fails the test with
// the first few errors.
func forEach(t *testing.T, n, workers int, f func(ctx context.Context, i int) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	require.Empty(t, errs[:min(len(errs), 5)], "%d of %d failed", len(errs), n)
}

// messageList is what GET /admin/messages answers, as far as the tests
// look.
type messageList struct {
	Messages []struct {
		Status   string `json:"status"`
		Provider string `json:"provider"`
	} `json:"messages"`
}

// TestE2EKillWhileDeliveriesPending kills the process while a thousand
// deliveries are pending: after a restart every message is delivered,
// and a message sent twice (Twilio took it but the process died before
// recording that) carries the same code both times.
func TestE2EKillWhileDeliveriesPending(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	// A switch of the test run, like VIGIL_TEST_DATABASE_URL.
	realRescue := os.Getenv(realRescueEnv) != ""
	const n = 1000
	identity := func(i int) string { return fmt.Sprintf("6f1e0c2a-3b4d-4e5f-8a6b-%012d", i) }
	number := func(i int) string { return fmt.Sprintf("+49151%08d", 20_000_000+i) }

	for _, store := range e2eStores(t, t.TempDir()) {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tw := twiliotest.Start(t)
			// Twilio takes the first messages and answers them late, so
			// that workers have requests in flight; then it takes a few
			// and never answers (the process dies before it learns they
			// were sent); then it holds every request without taking it,
			// so that the rest are pending at the kill however fast the
			// machine is.
			const answered, unanswered = 300, 8
			tw.Inject(twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Delay: 50 * time.Millisecond, Times: answered})
			tw.Inject(twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Hang: true, Times: unanswered})
			tw.Inject(twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: http.StatusServiceUnavailable, Hang: true})
			env := twilioVigil(store.dsn, tw, map[string]string{
				"VIGIL_LOG_LEVEL": "warn",
				// A thousand SMS to one prefix within seconds, none of them
				// ever verified: the protection would rightly refuse them.
				// The resend limits count per destination and identity, so
				// distinct ones keep them out of the way.
				"VIGIL_DELIVERY_SMS_PROTECTION_PREFIX_PER_HOUR":      "0",
				"VIGIL_DELIVERY_SMS_PROTECTION_CONVERSION_THRESHOLD": "0",
			})
			first := serveOn(t, bin, dir, env, 0)

			began := time.Now()
			forEach(t, n, 16, func(ctx context.Context, i int) error {
				var started struct {
					ID string `json:"id"`
				}
				status, err := adminJSON(ctx, http.MethodPost, first.admin+"/admin/verifications", map[string]string{
					"identity_id": identity(i), "address": number(i), "channel": "sms",
				}, &started)
				if err == nil && (status != http.StatusCreated || started.ID == "") {
					err = fmt.Errorf("start %s: status %d", identity(i), status)
				}
				return err
			})
			startedIn := time.Since(began)

			// Twilio took answered+unanswered messages and holds the next
			// request: kill once the answered ones are recorded as sent.
			waitUntil(t, 30*time.Second, func() (bool, string) {
				got := tw.Requests(twiliotest.EndpointMessages)
				sent := store.count(t, `SELECT count(*) FROM messages WHERE status = 'sent'`)
				return got > answered+unanswered && sent == answered,
					fmt.Sprintf("%d requests reached Twilio, %d messages recorded as sent", got, sent)
			})
			first.kill(t)
			atKill := len(tw.Messages())
			inFlight := store.count(t, store.inFlight)
			require.Equal(t, answered+unanswered, atKill, "messages Twilio took before the kill")
			t.Logf("%d verifications started in %s; killed with %d messages at Twilio and %d delivery jobs held by the process",
				n, startedIn.Round(time.Millisecond), atKill, inFlight)
			tw.ClearFaults() // what is left may go as fast as it can

			within := 45 * time.Second
			if realRescue {
				within = 3 * time.Minute
			} else {
				store.expireLeases(t)
			}
			second := serveOn(t, bin, dir, env, 0)
			restarted := time.Now()

			waitUntil(t, within, func() (bool, string) {
				got := map[string]bool{}
				for _, m := range tw.Messages() {
					got[m.To] = true
				}
				return len(got) == n, fmt.Sprintf("%d of %d recipients have a message", len(got), n)
			})
			waitUntil(t, within, func() (bool, string) {
				left := store.count(t, `SELECT count(*) FROM messages WHERE status <> 'sent'`)
				return left == 0, fmt.Sprintf("%d messages not sent", left)
			})
			doneIn := time.Since(restarted)

			codes := map[string][]string{}
			for _, m := range tw.Messages() {
				require.Equal(t, twilioFrom, m.From)
				code := smsCode.FindString(m.Body)
				require.NotEmpty(t, code, "no code in %q", m.Body)
				codes[m.To] = append(codes[m.To], code)
			}
			require.Len(t, codes, n)
			duplicates := 0
			for i := range n {
				got := codes[number(i)]
				require.NotEmpty(t, got, "nothing reached %s", number(i))
				for _, c := range got[1:] {
					require.Equal(t, got[0], c, "%s got two different codes", number(i))
				}
				duplicates += len(got) - 1
			}
			// Exactly the messages Twilio took without answering go twice.
			require.Equal(t, unanswered, duplicates)

			forEach(t, n, 16, func(ctx context.Context, i int) error {
				var list messageList
				status, err := adminJSON(ctx, http.MethodGet, second.admin+"/admin/messages?identity_id="+identity(i), nil, &list)
				switch {
				case err != nil:
					return err
				case status != http.StatusOK:
					return fmt.Errorf("messages of %s: status %d", identity(i), status)
				case len(list.Messages) != 1:
					return fmt.Errorf("messages of %s: %d, want 1", identity(i), len(list.Messages))
				case list.Messages[0].Status != "sent" || list.Messages[0].Provider != providerTwilio:
					return fmt.Errorf("message of %s: status %q, provider %q", identity(i), list.Messages[0].Status, list.Messages[0].Provider)
				}
				return nil
			})
			t.Logf("after the restart all %d delivered and sent in %s; %d duplicates, each with its first code",
				n, doneIn.Round(time.Millisecond), duplicates)

			exit, _ := second.proc.stop(t, 30*time.Second)
			require.Equal(t, 0, exit)
		})
	}
}

// waitUntil polls cond until it holds, failing with its last word after
// within.
func waitUntil(t *testing.T, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "timeout", "after %s: %s", within, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ETwilioStatusCallback follows one SMS from Twilio's answer to its
// delivery report: only reports Twilio signed count, and a status never
// moves back.
func TestE2ETwilioStatusCallback(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	const (
		identity = "3c9d5e1f-7a2b-4c6d-9e8f-0a1b2c3d4e5f"
		to       = "+4915123456789"
	)
	for _, store := range e2eStores(t, t.TempDir()) {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			port := freePort(t)
			public := fmt.Sprintf("http://127.0.0.1:%d", port)
			s := serveOn(t, bin, t.TempDir(), twilioVigil(store.dsn, tw, map[string]string{
				"VIGIL_DELIVERY_SMS_TWILIO_STATUS_CALLBACKS": "true",
				"VIGIL_SERVE_PUBLIC_BASE_URL":                public,
			}), port)

			require.Equal(t, http.StatusCreated, call(t, http.MethodPost, s.admin+"/admin/verifications", testKey,
				map[string]string{"identity_id": identity, "address": to, "channel": "sms"}, nil))
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			msgs, err := tw.WaitForMessages(ctx, 1)
			require.NoError(t, err)
			m := msgs[0]
			require.Equal(t, to, m.To)
			require.Equal(t, public+twilioCallbackPath, m.StatusCallback)

			status := func() string {
				t.Helper()
				var list messageList
				require.Equal(t, http.StatusOK, call(t, http.MethodGet, s.admin+"/admin/messages?identity_id="+identity, testKey, nil, &list))
				require.Len(t, list.Messages, 1)
				return list.Messages[0].Status
			}
			// Vigil learns the message's SID from Twilio's answer; a report
			// can only be matched after that.
			waitUntil(t, 20*time.Second, func() (bool, string) {
				st := status()
				return st == "sent", "status " + st
			})

			// Reports Twilio did not sign are refused and change nothing.
			delivered, err := tw.StatusParams(m.SID, "delivered", 0)
			require.NoError(t, err)
			for name, c := range map[string]twiliotest.Callback{
				"another token": {URL: m.StatusCallback, AuthToken: "not-the-auth-token-0123456789abcd", Params: delivered},
				"another URL":   {URL: m.StatusCallback, SignURL: "https://example.com" + twilioCallbackPath, AuthToken: tw.AuthToken, Params: delivered},
			} {
				code, err := twiliotest.Post(t.Context(), c)
				require.NoError(t, err, name)
				require.Equal(t, http.StatusUnauthorized, code, name)
			}
			sent, err := tw.StatusParams(m.SID, "sent", 0)
			require.NoError(t, err)
			for name, signature := range map[string]string{
				"a signature of other parameters": twiliotest.Sign(tw.AuthToken, m.StatusCallback, sent),
				"no signature":                    "",
			} {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.StatusCallback, strings.NewReader(delivered.Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if signature != "" {
					req.Header.Set("X-Twilio-Signature", signature)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err, name)
				resp.Body.Close()
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode, name)
			}
			require.Equal(t, "sent", status())

			code, err := tw.SendStatus(t.Context(), m.SID, "delivered", 0)
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, code)
			require.Equal(t, "delivered", status())

			// Twilio does not promise order: a late "sent" is no news.
			code, err = tw.SendStatus(t.Context(), m.SID, "sent", 0)
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, code)
			require.Equal(t, "delivered", status())

			got := deliveryMetrics(t, s.admin)
			want := map[string]float64{
				`channel="sms",country="DE",provider="twilio",status="sent"`:      1,
				`channel="sms",country="DE",provider="twilio",status="delivered"`: 1,
			}
			require.Equal(t, want, got)

			exit, _ := s.proc.stop(t, 30*time.Second)
			require.Equal(t, 0, exit)
		})
	}
}

// deliveryMetrics reads vigil_deliveries_total from the admin listener's
// /metrics: each series' labels, as exposed, to its value.
func deliveryMetrics(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "vigil_deliveries_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		require.True(t, ok, sc.Text())
		v, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err, sc.Text())
		out[labels] = v
	}
	require.NoError(t, sc.Err())
	return out
}
