package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

// runCLI runs the command line in-process.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	code = Run(context.Background(), args, Env{Lookup: envOf(env), Environ: environ}, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCLIVersion(t *testing.T) {
	t.Parallel()
	out, _, code := runCLI(t, nil, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "vigil dev (commit dev, go"), out)
}

func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"serve", "--nope"}, "unknown flag: --nope"},
		{"migrate without subcommand", []string{"migrate"}, "migrate needs a subcommand"},
		{"get without id", []string{"verifications", "get"}, "get takes 1 argument(s), got 0"},
		{"verify with one arg", []string{"verifications", "verify", "x"}, "verify takes 2 argument(s), got 1"},
		{"start without flags", []string{"verifications", "start"}, `required flag(s) "address", "channel", "identity" not set`},
		{"bad channel", []string{"verifications", "start", "--identity", "i", "--address", "a", "--channel", "fax"}, "--channel must be email or sms"},
		{"bad method", []string{"verifications", "start", "--identity", "i", "--address", "a", "--channel", "sms", "--method", "owl"}, "--method must be code or link"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := runCLI(t, nil, tt.args...)
			require.Equal(t, exitUsage, code, errOut)
			require.Contains(t, errOut, tt.want)
			require.Contains(t, errOut, "vigil --help")
		})
	}
}

func TestCLIConfigErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing essentials name their variables", func(t *testing.T) {
		t.Parallel()
		_, errOut, code := runCLI(t, map[string]string{"VIGIL_DSN": "sqlite://" + filepath.Join(t.TempDir(), "v.db")}, "serve")
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "vigil: invalid configuration (3 problems):")
		for _, name := range []string{"VIGIL_SECRETS_SYSTEM", "VIGIL_ADMIN_API_KEY", "VIGIL_HOOKS_API_KEY"} {
			require.Contains(t, errOut, name)
		}
	})
	t.Run("unsupported dsn scheme", func(t *testing.T) {
		t.Parallel()
		_, errOut, code := runCLI(t, map[string]string{"VIGIL_DSN": "mysql://root@localhost/vigil"}, "migrate", "status")
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, `dsn: unsupported scheme "mysql"; use sqlite:// or postgres://`)
	})
	t.Run("a named config file must exist", func(t *testing.T) {
		t.Parallel()
		_, errOut, code := runCLI(t, nil, "migrate", "status", "-c", filepath.Join(t.TempDir(), "nope.yml"))
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "read config file")
	})
	t.Run("unknown key in the file", func(t *testing.T) {
		t.Parallel()
		file := writeFile(t, "serve:\n  pubic: {port: 1}\n")
		_, errOut, code := runCLI(t, essentials(), "serve", "--config", file)
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "serve.pubic: unknown option (line 2)")
	})
	t.Run("unreadable values and invalid ones are reported together", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"VIGIL_VERIFICATION_CODE_LENGTH": "12", "VIGIL_SERVE_PUBLIC_PORT": "x"}
		_, errOut, code := runCLI(t, env, "serve", "--dev")
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "invalid configuration (2 problems)")
		require.Contains(t, errOut, `serve.public.port: environment variable VIGIL_SERVE_PUBLIC_PORT: "x" is not an integer`)
		require.Contains(t, errOut, "verification.code_length: must be between 4 and 10, got 12")
		require.NotContains(t, errOut, "export VIGIL_", "no secrets printed for a run that does not start")
	})
	t.Run("a broken file stops every command", func(t *testing.T) {
		t.Parallel()
		file := writeFile(t, "serve:\n  public:\n    port: x\n")
		env := map[string]string{"VIGIL_DSN": "sqlite://" + filepath.Join(t.TempDir(), "v.db")}
		_, errOut, code := runCLI(t, env, "migrate", "status", "-c", file)
		require.Equal(t, exitError, code)
		require.Contains(t, errOut, "serve.public.port:")
	})
	t.Run("unknown VIGIL_ variable warns", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"VIGIL_DSN": "sqlite://" + filepath.Join(t.TempDir(), "v.db"), "VIGIL_SERVE_PUBLC_PORT": "1"}
		_, errOut, code := runCLI(t, env, "migrate", "status")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, errOut, "warning: environment variable VIGIL_SERVE_PUBLC_PORT matches no option")
	})
}

func TestOpenDatabaseSchemes(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"mysql://x", "vigil.db", "redis://localhost"} {
		c := DefaultConfig()
		c.DSN = dsn
		_, err := OpenDatabase(context.Background(), c, newLogger(c.Log, &bytes.Buffer{}))
		require.Error(t, err, dsn)
		require.Contains(t, err.Error(), "use sqlite://FILE or postgres://USER@HOST/DB", dsn)
	}
}

func TestMigrateAndPending(t *testing.T) {
	t.Parallel()
	env := map[string]string{"VIGIL_DSN": "sqlite://" + filepath.Join(t.TempDir(), "v.db")}

	out, errOut, code := runCLI(t, env, "migrate", "status")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "pending")
	require.Contains(t, out, "run `vigil migrate up`")

	out, errOut, code = runCLI(t, env, "migrate", "up")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "applied 0001")

	out, errOut, code = runCLI(t, env, "migrate", "status")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "pending")
}

// testConfig is a valid configuration on a fresh SQLite file and free
// ports.
func testConfig(t *testing.T) Config {
	t.Helper()
	l, err := LoadConfig(LoadOptions{LookupEnv: envOf(essentials())})
	require.NoError(t, err)
	c := l.Config
	c.DSN = "sqlite://" + filepath.Join(t.TempDir(), "vigil.db")
	c.Serve.Public.Port = freePort(t)
	c.Serve.Admin.Port = freePort(t)
	c.Serve.ShutdownTimeout = 5 * time.Second
	require.NoError(t, c.Validate())
	return c
}

func TestServeRefusesPendingMigrations(t *testing.T) {
	t.Parallel()
	m := NewMain(testConfig(t), &bytes.Buffer{}, &bytes.Buffer{})
	err := m.Serve(context.Background(), OpenOptions{})
	require.ErrorIs(t, err, ErrPendingMigrations)
	require.Contains(t, err.Error(), "run `vigil migrate up` or pass --migrate")
	require.NoError(t, m.Close(context.Background()))
}

func TestMainServeAndClose(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	m := NewMain(testConfig(t), &stdout, &stderr)
	require.NoError(t, m.Serve(context.Background(), OpenOptions{Migrate: true}))

	for _, addr := range []net.Addr{m.PublicAddr, m.AdminAddr} {
		resp, err := http.Get("http://" + addr.String() + "/health/ready")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	// A verification started now is delivered by the queue: the console
	// prints the masked recipient, never the code outside --dev.
	st, err := m.Service.Start(context.Background(), startRequest("carol@example.com"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "c***@example.com") }, 20*time.Second, 50*time.Millisecond, "stdout: %s", &stdout)
	require.NotRegexp(t, `\b\d{6}\b`, stdout.String())

	require.NoError(t, m.Close(context.Background()))
	require.True(t, m.draining.Load())
	resp, err := http.Get("http://" + m.PublicAddr.String() + "/health/alive")
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "listeners are closed")
	v, err := m.Service.GetVerification(context.Background(), st.ID)
	require.Error(t, err, "database is closed")
	require.Nil(t, v)
	require.NotContains(t, stderr.String(), `"level":"ERROR"`)
}

func TestServePortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c := testConfig(t)
	addr, ok := ln.Addr().(*net.TCPAddr)
	require.True(t, ok)
	c.Serve.Admin.Port = addr.Port
	m := NewMain(c, &bytes.Buffer{}, &bytes.Buffer{})
	err = m.Serve(context.Background(), OpenOptions{Migrate: true})
	require.Error(t, err)
	require.Contains(t, err.Error(), "serve.admin: listen on 127.0.0.1:"+strconv.Itoa(c.Serve.Admin.Port))
	require.NoError(t, m.Close(context.Background()))
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	left := 2
	require.Equal(t, "That code is not right. (wrong_code, 2 attempts left)",
		oneLine(&vigil.Error{Code: vigil.EWRONGCODE, Message: "That code is not right.", AttemptsLeft: &left}))
	require.Equal(t, "Too many. (rate_limited, retry after 30s)",
		oneLine(&vigil.Error{Code: vigil.ERATELIMITED, Message: "Too many.", RetryAfter: 30 * time.Second}))
	require.Equal(t, "open database: no such file",
		oneLine(errors.New("open database:\n   no such file")))
}

func startRequest(address string) flows.StartRequest {
	return flows.StartRequest{
		IdentityID: "5f0e8d7c-6b5a-4493-8271-605f4e3d2c1b",
		Address:    address,
		Channel:    vigil.ChannelEmail,
		Method:     vigil.MethodCode,
		Actor:      "admin",
	}
}

// syncBuffer is a bytes.Buffer that the console writes to from the queue's
// goroutines while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCLITemplates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "templates")
	out, errOut, code := runCLI(t, nil, "templates", "export", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "wrote 96 templates")
	require.FileExists(t, filepath.Join(dir, "de", "verification_code.sms.tmpl"))

	_, errOut, code = runCLI(t, nil, "templates", "export", dir)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "exists")

	out, errOut, code = runCLI(t, nil, "templates", "check", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ok: languages [de en es fr], default en")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "de", "login_code.sms.tmpl"), []byte("Code {{.Nope}}"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "es", "login_code.txt.tmpl"), []byte("{{if .Code}"), 0o600))
	_, errOut, code = runCLI(t, nil, "templates", "check", dir)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "unknown field Nope")
	require.Contains(t, errOut, "es/login_code.txt.tmpl", "every problem at once")

	_, errOut, code = runCLI(t, nil, "templates")
	require.Equal(t, 2, code, errOut)
}
