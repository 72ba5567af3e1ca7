package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/smtptest"
)

// The tests in this file build the real binary and run it as a person
// would: in an empty directory, configured only through the environment.

// buildVigil compiles cmd/vigil into a temporary directory.
func buildVigil(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command must be on PATH to build the binary")
	bin := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command(goBin, "build", "-o", bin, "-ldflags", "-X main.version=e2e -X main.commit=test", ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// baseEnv is a clean environment: nothing VIGIL_* leaks in from outside.
func baseEnv(extra map[string]string) []string {
	env := make([]string, 0, 3+len(extra))
	env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"), "TMPDIR="+os.TempDir())
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// freePort asks the kernel for a port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	require.True(t, ok)
	return addr.Port
}

// lines collects a stream line by line and lets tests wait for a match.
type lines struct {
	mu   sync.Mutex
	all  []string
	more chan struct{}
	done chan struct{}
}

func newLines(r io.Reader) *lines {
	l := &lines{more: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			close(l.more)
			l.more = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// waitFor returns the submatches of the first line, from line index from
// on, that re matches.
func (l *lines) waitFor(t *testing.T, re *regexp.Regexp, from int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for i := from; i < len(l.all); i++ {
			if m := re.FindStringSubmatch(l.all[i]); m != nil {
				l.mu.Unlock()
				return m
			}
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-l.done:
			require.Failf(t, "stream ended", "no line matched %s", re)
		case <-deadline:
			require.Failf(t, "timeout", "no line matched %s within %s", re, timeout)
		}
	}
}

func (l *lines) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

type proc struct {
	cmd    *exec.Cmd
	stdout *lines
	stderr *lines
	exited chan struct{}
	err    error
}

// startVigil runs the binary in dir with env and args. The process is
// killed at the end of the test if it is still running.
func startVigil(t *testing.T, bin, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, stdout: newLines(stdout), stderr: newLines(stderr), exited: make(chan struct{})}
	go func() {
		<-p.stdout.done
		<-p.stderr.done
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("vigil %s stdout:\n%s", strings.Join(args, " "), p.stdout)
			t.Logf("vigil %s stderr:\n%s", strings.Join(args, " "), p.stderr)
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code and how long the exit took.
func (p *proc) stop(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(within):
		require.Failf(t, "no exit", "vigil did not exit within %s of SIGTERM", within)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// waitReady polls /health/ready until it answers 200.
func waitReady(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			require.Failf(t, "vigil exited", "before %s/health/ready answered: %v", base, p.err)
		default:
		}
		resp, err := http.Get(base + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "%s/health/ready did not answer 200 in time (last: %v)", base, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// call makes a JSON request and decodes a JSON answer into out (when not
// nil). It returns the status code.
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s answered %d: %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

type devServer struct {
	proc   *proc
	dir    string
	public string
	admin  string
}

// startDev runs `vigil serve --dev` in dir with free ports and waits until
// both listeners are ready.
func startDev(t *testing.T, bin, dir string, extra map[string]string) *devServer {
	t.Helper()
	pub, adm := freePort(t), freePort(t)
	env := map[string]string{
		"VIGIL_SERVE_PUBLIC_PORT": strconv.Itoa(pub),
		"VIGIL_SERVE_ADMIN_PORT":  strconv.Itoa(adm),
	}
	maps.Copy(env, extra)
	p := startVigil(t, bin, dir, baseEnv(env), "serve", "--dev")
	s := &devServer{
		proc:   p,
		dir:    dir,
		public: fmt.Sprintf("http://127.0.0.1:%d", pub),
		admin:  fmt.Sprintf("http://127.0.0.1:%d", adm),
	}
	waitReady(t, p, s.public)
	waitReady(t, p, s.admin)
	return s
}

func TestE2EServeDev(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dir := t.TempDir()
	s := startDev(t, bin, dir, nil)

	for _, base := range []string{s.public, s.admin} {
		var body map[string]any
		require.Equal(t, http.StatusOK, call(t, http.MethodGet, base+"/health/ready", "", nil, &body), base)
		require.Equal(t, http.StatusOK, call(t, http.MethodGet, base+"/health/alive", "", nil, nil), base)
	}
	_, err := os.Stat(filepath.Join(dir, "vigil.db"))
	require.NoError(t, err, "--dev creates vigil.db in the working directory")

	// The generated secrets are printed once, with how to keep them.
	stderr := s.proc.stderr.String()
	for _, name := range []string{"VIGIL_SECRETS_SYSTEM", "VIGIL_ADMIN_API_KEY", "VIGIL_HOOKS_API_KEY"} {
		require.Equal(t, 1, strings.Count(stderr, "export "+name+"="), "%s printed once", name)
	}

	// Metrics on admin only; admin API never on public.
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, s.admin+"/metrics", "", nil, nil))
	require.Equal(t, http.StatusNotFound, call(t, http.MethodGet, s.public+"/metrics", "", nil, nil))
	require.Equal(t, http.StatusNotFound, call(t, http.MethodPost, s.public+"/admin/verifications", "", map[string]string{}, nil))

	code, took := s.proc.stop(t, 10*time.Second)
	require.Equal(t, 0, code, "exit code after SIGTERM")
	require.Less(t, took, 5*time.Second)
}

var (
	// consoleCode matches the code in the text the dev console prints.
	consoleCode  = regexp.MustCompile(`(?m)^(\d{4,10})$`)
	adminKeyLine = regexp.MustCompile(`export VIGIL_ADMIN_API_KEY=(\S+)`)
	secretLine   = regexp.MustCompile(`export VIGIL_SECRETS_SYSTEM=(\S+)`)
)

// roundTrip starts a verification through the admin API, reads the code
// the console printed and submits it to the public API.
func roundTrip(t *testing.T, s *devServer) (verificationID string) {
	t.Helper()
	key := s.proc.stderr.waitFor(t, adminKeyLine, 0, 5*time.Second)[1]
	identity := "0b4c1a52-4f7e-4d7c-9a55-2f0c1d5e8a11"
	address := "alice@example.com"

	// The admin API wants its key.
	require.Equal(t, http.StatusUnauthorized, call(t, http.MethodPost, s.admin+"/admin/verifications", "wrong-key-wrong-key",
		map[string]string{"identity_id": identity, "address": address, "channel": "email", "method": "code"}, nil))

	mark := s.proc.stdout.len()
	var started struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	status := call(t, http.MethodPost, s.admin+"/admin/verifications", key,
		map[string]string{"identity_id": identity, "address": address, "channel": "email", "method": "code"}, &started)
	require.Equal(t, http.StatusCreated, status)
	require.NotEmpty(t, started.ID)
	require.True(t, started.ExpiresAt.After(time.Now()))

	// The console provider prints the message, code included, in --dev.
	code := s.proc.stdout.waitFor(t, consoleCode, mark, 20*time.Second)[1]

	var wrong map[string]any
	wrongCode := strings.Repeat("0", len(code))
	if wrongCode == code {
		wrongCode = strings.Repeat("1", len(code))
	}
	require.Equal(t, http.StatusBadRequest, call(t, http.MethodPost, s.public+"/self-service/verifications/"+started.ID+"/code", "",
		map[string]string{"code": wrongCode}, &wrong), "%v", wrong)

	var verified struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, s.public+"/self-service/verifications/"+started.ID+"/code", "",
		map[string]string{"code": code}, &verified))
	require.Equal(t, started.ID, verified.ID)
	require.Equal(t, "verified", verified.State)

	var view struct {
		State      string `json:"state"`
		IdentityID string `json:"identity_id"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, s.admin+"/admin/verifications/"+started.ID, key, nil, &view))
	require.Equal(t, "verified", view.State)
	require.Equal(t, identity, view.IdentityID)

	// Nothing but the dev console ever shows the code: not the logs.
	require.NotContains(t, s.proc.stderr.String(), code)
	return started.ID
}

func TestE2EDevVerificationRoundTrip(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dir := t.TempDir()
	s := startDev(t, bin, dir, nil)
	id := roundTrip(t, s)

	// The admin commands work on the same database with the same secrets.
	secret := s.proc.stderr.waitFor(t, secretLine, 0, time.Second)[1]
	out, errOut, code := runVigil(t, bin, dir, map[string]string{"VIGIL_SECRETS_SYSTEM": secret}, "verifications", "get", id)
	require.Equal(t, 0, code, errOut)
	var view map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &view), out)
	require.Equal(t, "verified", view["state"])

	exit, _ := s.proc.stop(t, 10*time.Second)
	require.Equal(t, 0, exit)
}

func TestE2EPostgresRoundTrip(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dsn := pgtest.DSN(t)
	dir := t.TempDir()

	// Outside --dev, serving an unmigrated database fails fast and says
	// what to do.
	env := map[string]string{
		"VIGIL_DSN":            dsn,
		"VIGIL_SECRETS_SYSTEM": testSecret,
		"VIGIL_ADMIN_API_KEY":  testKey,
		"VIGIL_HOOKS_API_KEY":  testHookKey,
	}
	_, errOut, code := runVigil(t, bin, dir, env, "serve")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "vigil migrate up")

	out, errOut, code := runVigil(t, bin, dir, map[string]string{"VIGIL_DSN": dsn}, "migrate", "up")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied")
	out, errOut, code = runVigil(t, bin, dir, map[string]string{"VIGIL_DSN": dsn}, "migrate", "status")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "pending")

	s := startDev(t, bin, dir, map[string]string{"VIGIL_DSN": dsn})
	roundTrip(t, s)
	exit, _ := s.proc.stop(t, 10*time.Second)
	require.Equal(t, 0, exit)
	_, err := os.Stat(filepath.Join(dir, "vigil.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "no SQLite file when the DSN names PostgreSQL")
}

// runVigil runs a command to its end and returns stdout, stderr and the
// exit code.
func runVigil(t *testing.T, bin, dir string, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = baseEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestE2EMissingSecretsStopStartUp(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dir := t.TempDir()
	_, errOut, code := runVigil(t, bin, dir, nil, "serve")
	require.Equal(t, 1, code)
	for _, name := range []string{"VIGIL_SECRETS_SYSTEM", "VIGIL_ADMIN_API_KEY", "VIGIL_HOOKS_API_KEY"} {
		require.Contains(t, errOut, name)
	}
	require.Contains(t, errOut, "secrets.system: required")
	_, err := os.Stat(filepath.Join(dir, "vigil.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing is created when the configuration is invalid")
}

func TestE2EAdminCommands(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dir := t.TempDir()
	env := map[string]string{"VIGIL_SECRETS_SYSTEM": testSecret}

	// Without migrations the admin commands say what to do.
	_, errOut, code := runVigil(t, bin, dir, env, "verifications", "get", "0b4c1a52-4f7e-4d7c-9a55-2f0c1d5e8a11")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "vigil migrate up")

	out, errOut, code := runVigil(t, bin, dir, nil, "migrate", "up")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied")
	out, errOut, code = runVigil(t, bin, dir, nil, "migrate", "up")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "up to date")

	identity := "7d1f3c2e-9b8a-4e6f-8c5d-1a2b3c4d5e6f"
	out, errOut, code = runVigil(t, bin, dir, env, "verifications", "start",
		"--identity", identity, "--address", "bob@example.com", "--channel", "email")
	require.Equal(t, 0, code, errOut)
	var started struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &started), out)
	require.NotEmpty(t, started.ID)

	out, errOut, code = runVigil(t, bin, dir, env, "verifications", "get", started.ID)
	require.Equal(t, 0, code, errOut)
	var view map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &view), out)
	require.Equal(t, "pending", view["state"])
	require.Equal(t, identity, view["identity_id"])

	// A wrong code is a one-line error and a non-zero exit.
	out, errOut, code = runVigil(t, bin, dir, env, "verifications", "verify", started.ID, "000000")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "one line: %q", errOut)
	require.Contains(t, errOut, "wrong_code")

	out, errOut, code = runVigil(t, bin, dir, env, "verifications", "unlock", identity)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, identity)

	_, errOut, code = runVigil(t, bin, dir, env, "verifications", "get", "9e0b2c7a-0000-4000-8000-000000000000")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not_found")

	_, errOut, code = runVigil(t, bin, dir, env, "verifications", "start", "--identity", identity, "--address", "x", "--channel", "fax")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--channel must be email or sms")

	// Without the secrets the admin commands name the variable.
	_, errOut, code = runVigil(t, bin, dir, nil, "verifications", "get", started.ID)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "VIGIL_SECRETS_SYSTEM")
	require.NotContains(t, errOut, "VIGIL_ADMIN_API_KEY", "admin commands need no API keys")

	out, _, code = runVigil(t, bin, dir, nil, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "vigil e2e (commit test")
}

// A process killed after it committed a verification but before the code
// reached anyone: the restarted process delivers it, with the same code.
func TestE2EKilledBeforeDeliveryDeliversAfterRestart(t *testing.T) {
	t.Parallel()
	bin := buildVigil(t)
	dir := t.TempDir()
	// While the first process runs, the mail server refuses connections:
	// its first attempt fails and a retry is scheduled.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusing := "smtp://" + closed.Addr().String() + "/?tls=none"
	require.NoError(t, closed.Close())

	for _, store := range []struct{ name, dsn string }{
		{"sqlite", "sqlite://" + filepath.Join(dir, "vigil.db")},
		{"postgres", pgtest.DSN(t)},
	} {
		t.Run(store.name, func(t *testing.T) {
			t.Parallel()
			mail := smtptest.Start(t)
			env := func(smtpURL string) (map[string]string, string, string) {
				pub, adm := freePort(t), freePort(t)
				return map[string]string{
					"VIGIL_DSN":                      store.dsn,
					"VIGIL_SECRETS_SYSTEM":           testSecret,
					"VIGIL_ADMIN_API_KEY":            testKey,
					"VIGIL_HOOKS_API_KEY":            testHookKey,
					"VIGIL_SERVE_PUBLIC_PORT":        strconv.Itoa(pub),
					"VIGIL_SERVE_ADMIN_PORT":         strconv.Itoa(adm),
					"VIGIL_DELIVERY_EMAIL_PROVIDER":  "smtp",
					"VIGIL_DELIVERY_EMAIL_SMTP_URL":  smtpURL,
					"VIGIL_DELIVERY_EMAIL_SMTP_FROM": "Vigil <no-reply@example.com>",
				}, fmt.Sprintf("http://127.0.0.1:%d", pub), fmt.Sprintf("http://127.0.0.1:%d", adm)
			}
			e, _, admin := env(refusing)
			first := startVigil(t, bin, dir, baseEnv(e), "serve", "--migrate")
			waitReady(t, first, admin)

			var started struct{ ID string }
			require.Equal(t, http.StatusCreated, call(t, http.MethodPost, admin+"/admin/verifications", testKey, map[string]string{
				"identity_id": "5d0c7c1e-2b7a-4f7e-9a51-6e1d2c3b4a59", "address": "kim@example.com", "channel": "email",
			}, &started))
			var msgs struct {
				Messages []struct {
					Status   string `json:"status"`
					Attempts int    `json:"attempts"`
				} `json:"messages"`
			}
			require.Eventually(t, func() bool {
				call(t, http.MethodGet, admin+"/admin/messages?recipient=kim@example.com", testKey, nil, &msgs)
				return len(msgs.Messages) == 1 && msgs.Messages[0].Attempts == 1
			}, 20*time.Second, 20*time.Millisecond, "the first attempt never happened")
			require.Equal(t, "retrying", msgs.Messages[0].Status)
			// Let the queue record the retry it was asked for. Killed
			// before that, the job counts as stuck in flight and is rescued
			// after a minute instead: the same outcome, later.
			time.Sleep(500 * time.Millisecond)
			require.NoError(t, first.cmd.Process.Kill()) // SIGKILL: no shutdown, nothing flushed
			<-first.exited

			e, public, admin := env(mail.URL())
			second := startVigil(t, bin, dir, baseEnv(e), "serve")
			waitReady(t, second, admin)
			got, err := mail.WaitFor(t.Context(), 1)
			require.NoError(t, err)
			code := regexp.MustCompile(`\b\d{6}\b`).FindString(got[0].MustParse(t).Text())
			require.NotEmpty(t, code)
			var view map[string]any
			require.Equal(t, http.StatusOK, call(t, http.MethodPost, public+"/self-service/verifications/"+started.ID+"/code", "", map[string]string{"code": code}, &view))
			require.Equal(t, "verified", view["state"])
			code2, _ := second.stop(t, 15*time.Second)
			require.Equal(t, 0, code2)
		})
	}
}
