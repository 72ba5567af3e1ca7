package kratostest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SkipMessage is why tests that need a real Kratos skip.
const SkipMessage = "real Kratos: set KRATOS_BIN to a kratos v26.2.0 binary built with -tags sqlite"

// DSNFile asks Start for a SQLite file in the test's temporary directory,
// migrated before Kratos starts.
const DSNFile = "sqlite-file"

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	// Kratos retries a failing web hook for up to 93 s (KRATOS.md), so a
	// flow request may legitimately take that long.
	requestTimeout = 2 * time.Minute
	// overridesFile is layered over the configuration with a second -c.
	overridesFile = "kratostest.overrides.json"
)

//go:embed config
var defaultConfig embed.FS

// Bin returns the Kratos binary to run: $KRATOS_BIN, else kratos on PATH.
// Without either the test is skipped.
func Bin(tb testing.TB) string {
	tb.Helper()
	//nolint:forbidigo // a test helper, configured by the environment of go test like pgtest
	if p := os.Getenv("KRATOS_BIN"); p != "" {
		// Set but wrong is a mistake to report, not a reason to skip.
		bin, err := exec.LookPath(p)
		if err != nil {
			tb.Fatalf("kratostest: KRATOS_BIN: %v", err)
		}
		return bin
	}
	if p, err := exec.LookPath("kratos"); err == nil {
		return p
	}
	tb.Skip(SkipMessage)
	return ""
}

// Options configure Start.
type Options struct {
	// ConfigDir is copied, with every file and subdirectory (Jsonnet
	// bodies, identity schemas), into the test's temporary directory, where
	// Kratos runs, so relative file:// URLs resolve as they would beside the
	// original. Empty means the built-in configuration: password logins,
	// email and phone traits, a session on registration, no web hooks.
	ConfigDir string
	// ConfigFile is the configuration file inside ConfigDir; default
	// kratos.yml.
	ConfigFile string
	// Replace maps text to its replacement in every copied file, for
	// example "http://127.0.0.1:4481/hooks/" to a test server's URL and the
	// example api_key to a test's secret. Longer keys are tried first.
	Replace map[string]string
	// Overrides set configuration keys, written as dotted paths
	// ("selfservice.flows.login.after.password.hooks") or nested maps.
	// They are written to a JSON file loaded after the configuration file,
	// so objects merge key by key and a list or a value replaces the old
	// one. The ports, base URLs and DSN are Start's and cannot be
	// overridden.
	Overrides map[string]any
	// DSN is "" or "memory" for an in-memory database (migrated by Kratos
	// at start), DSNFile for a SQLite file in the test's directory, or any
	// DSN Kratos takes, migrated before start.
	DSN string
	// Env is added to the otherwise empty environment of the Kratos
	// process ("KEY=value").
	Env []string
}

// Kratos is a running Kratos process.
type Kratos struct {
	// PublicURL and AdminURL have no trailing slash.
	PublicURL string
	AdminURL  string
	// Dir holds the configuration files Kratos runs with.
	Dir string

	log    *logBuffer
	client *http.Client
}

// Start runs Kratos for the test and stops it when the test ends. It
// fails the test when Kratos does not become ready, and prints Kratos' log
// when the test failed.
func Start(tb testing.TB, opts Options) *Kratos {
	tb.Helper()
	bin := Bin(tb)
	dir := tb.TempDir()

	configFile := opts.ConfigFile
	if configFile == "" {
		configFile = "kratos.yml"
	}
	var src fs.FS
	if opts.ConfigDir == "" {
		sub, err := fs.Sub(defaultConfig, "config")
		if err != nil {
			tb.Fatalf("kratostest: %v", err)
		}
		src = sub
	} else {
		src = os.DirFS(opts.ConfigDir)
	}
	if err := copyConfig(dir, src, opts.Replace); err != nil {
		tb.Fatalf("kratostest: copy %s: %v", opts.ConfigDir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, configFile)); err != nil {
		tb.Fatalf("kratostest: configuration file: %v", err)
	}

	dsn := opts.DSN
	switch dsn {
	case "":
		dsn = "memory"
	case DSNFile:
		dsn = "sqlite://" + filepath.Join(dir, "kratos.db") + "?_fk=true"
	}
	overrides, err := expand(opts.Overrides)
	if err != nil {
		tb.Fatalf("kratostest: Overrides: %v", err)
	}

	env := append([]string{"HOME=" + dir, "TMPDIR=" + dir}, opts.Env...)
	log := &logBuffer{}
	k := &Kratos{Dir: dir, log: log, client: &http.Client{Timeout: requestTimeout}}
	printLog := func() {
		if tb.Failed() {
			tb.Logf("kratostest: Kratos log:\n%s", log.String())
		}
	}
	// Registered before the process exists, so it runs after the process
	// is stopped (cleanups run last first).
	tb.Cleanup(printLog)

	migrated := dsn == "memory"
	// A free port can be taken by someone else before Kratos binds it;
	// then Start tries again with new ones.
	for attempt := 1; ; attempt++ {
		public, admin := freePort(tb), freePort(tb)
		k.PublicURL = "http://127.0.0.1:" + strconv.Itoa(public)
		k.AdminURL = "http://127.0.0.1:" + strconv.Itoa(admin)
		layer := merge(overrides, map[string]any{
			"dsn": dsn,
			"serve": map[string]any{
				"public": map[string]any{"host": "127.0.0.1", "port": public, "base_url": k.PublicURL + "/"},
				"admin":  map[string]any{"host": "127.0.0.1", "port": admin, "base_url": k.AdminURL + "/"},
			},
		})
		b, err := json.MarshalIndent(layer, "", "  ")
		if err != nil {
			tb.Fatalf("kratostest: Overrides: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, overridesFile), b, 0o600); err != nil {
			tb.Fatalf("kratostest: %v", err)
		}
		configArgs := []string{"-c", configFile, "-c", overridesFile}

		if !migrated {
			cmd := exec.CommandContext(tb.Context(), bin, append([]string{"migrate", "sql", "up", "-e", "--yes"}, configArgs...)...)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			_, _ = log.Write(out)
			if err != nil {
				tb.Fatalf("kratostest: kratos migrate sql up: %v\n%s", err, out)
			}
			migrated = true
		}

		err = k.run(tb, bin, env, append([]string{"serve"}, append(configArgs, "--dev", "--watch-courier", "--sqa-opt-out")...))
		if err == nil {
			return k
		}
		if attempt < 3 && strings.Contains(log.String(), "address already in use") {
			tb.Logf("kratostest: port taken, trying again: %v", err)
			continue
		}
		tb.Fatalf("kratostest: %v", err)
	}
}

// run starts `kratos serve` and waits until both APIs are ready. On
// success the process is stopped when the test ends; on failure it is
// already stopped.
func (k *Kratos) run(tb testing.TB, bin string, env, args []string) error {
	tb.Helper()
	// tb.Context ends just before the test's cleanups run: Kratos is
	// interrupted then, and killed if it has not exited stopTimeout later.
	cmd := exec.CommandContext(tb.Context(), bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopTimeout
	cmd.Dir, cmd.Env = k.Dir, env
	cmd.Stdout, cmd.Stderr = k.log, k.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("kratos serve exited before it was ready: %w", waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if k.ready(k.AdminURL) && k.ready(k.PublicURL) {
			tb.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("kratos serve not ready after %s", startTimeout)
		}
	}
}

func (k *Kratos) ready(base string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	if err != nil {
		return false
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Log returns what Kratos has written to stdout and stderr so far.
func (k *Kratos) Log() string { return k.log.String() }

func freePort(tb testing.TB) int {
	tb.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("kratostest: free port: %v", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		tb.Fatalf("kratostest: free port: unexpected address %v", l.Addr())
	}
	return addr.Port
}

// copyConfig copies every regular file of src into dir, applying replace.
func copyConfig(dir string, src fs.FS, replace map[string]string) error {
	keys := make([]string, 0, len(replace))
	for k := range replace {
		if k == "" {
			return errors.New("empty key in Replace")
		}
		keys = append(keys, k)
	}
	// strings.Replacer tries its pairs in order at each position: longest
	// first, so a URL prefix does not shadow a longer URL.
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, replace[k])
	}
	r := strings.NewReplacer(pairs...)

	return fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := fs.ReadFile(src, path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, []byte(r.Replace(string(b))), 0o600)
	})
}

// expand turns dotted keys into nested maps and merges them.
func expand(overrides map[string]any) (map[string]any, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		parts := strings.Split(key, ".")
		m := out
		for i, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("key %q has an empty part", key)
			}
			if i == len(parts)-1 {
				v := overrides[key]
				if old, ok := m[p]; ok {
					om, ok1 := old.(map[string]any)
					nm, ok2 := v.(map[string]any)
					if !ok1 || !ok2 {
						return nil, fmt.Errorf("key %q is set twice", key)
					}
					v = merge(om, nm)
				}
				m[p] = v
				break
			}
			next, ok := m[p]
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			nm, ok := next.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("key %q is inside a value set by another key", key)
			}
			m = nm
		}
	}
	return out, nil
}

// merge returns a deep merge of b over a; neither is modified.
func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	maps.Copy(out, a)
	for k, v := range b {
		am, ok1 := out[k].(map[string]any)
		bm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = merge(am, bm)
			continue
		}
		out[k] = v
	}
	return out
}

// logBuffer collects the output of Kratos; the process writes it from
// other goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
