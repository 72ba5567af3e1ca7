package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/kratos"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/adapters/sqlite"
	"github.com/vigil-auth/vigil/adapters/webauthn"
	"github.com/vigil-auth/vigil/api"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/hooks"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = "dev"
)

func main() {
	env := Env{Lookup: os.LookupEnv, Environ: os.Environ()}
	os.Exit(Run(context.Background(), os.Args[1:], env, os.Stdout, os.Stderr))
}

// Env is the process environment as the program sees it. Only main reads
// the real one; tests pass their own.
type Env struct {
	Lookup  func(string) (string, bool)
	Environ []string
}

// providerTimeout bounds one hand-over to an email or SMS provider.
const providerTimeout = 10 * time.Second

// Main is the program: it turns a Config into a running service and takes
// it down again. Only this package knows about configuration and wiring.
type Main struct {
	Config Config
	// Stdout receives what the console delivery provider prints; Stderr
	// receives logs.
	Stdout io.Writer
	Stderr io.Writer
	Logger *slog.Logger

	DB      *Database
	Keys    *vigil.Keyring
	Service *flows.Service

	registry *prometheus.Registry
	// callbacks read providers' delivery reports for the public listener.
	callbacks map[string]api.StatusCallback
	public    *http.Server
	admin     *http.Server
	// PublicAddr and AdminAddr are where the listeners are bound, once
	// Serve returned.
	PublicAddr net.Addr
	AdminAddr  net.Addr

	draining    atomic.Bool
	serveErr    chan error
	queueCancel context.CancelFunc
	queueDone   chan error
}

// NewMain returns a Main for cfg, which must have been validated.
func NewMain(cfg Config, stdout, stderr io.Writer) *Main {
	return &Main{
		Config: cfg,
		Stdout: stdout,
		Stderr: stderr,
		Logger: newLogger(cfg.Log, stderr),
	}
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == formatText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Database is an opened store with the parts that differ per engine
// behind one face.
type Database struct {
	vigil.Store
	vigil.Migrator
	// Kind is "sqlite" or "postgres".
	Kind  string
	queue func() vigil.Queue
}

// Queue returns the store's queue of deliveries and jobs.
func (d *Database) Queue() vigil.Queue { return d.queue() }

// OpenDatabase opens the store the DSN names, by its scheme.
func OpenDatabase(ctx context.Context, c Config, logger *slog.Logger) (*Database, error) {
	switch scheme := dsnScheme(c.DSN); scheme {
	case schemeSQLite:
		s, err := sqlite.Open(ctx, c.DSN, sqlite.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return &Database{Store: s, Migrator: s, Kind: schemeSQLite, queue: func() vigil.Queue {
			return s.Queue(sqlite.QueueOptions{Workers: c.Delivery.Queue.Workers, Lease: c.Delivery.Queue.RescueAfter})
		}}, nil
	case schemePostgres, schemePostgreSQL:
		s, err := postgres.Open(ctx, c.DSN, postgres.Options{MaxConns: c.Database.MaxConns, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", redactDSN(c.DSN), err)
		}
		return &Database{Store: s, Migrator: s, Kind: schemePostgres, queue: func() vigil.Queue {
			return s.Queue(postgres.QueueOptions{Workers: c.Delivery.Queue.Workers, RescueAfter: c.Delivery.Queue.RescueAfter})
		}}, nil
	case "":
		return nil, fmt.Errorf("dsn %q has no scheme; use sqlite://FILE or postgres://USER@HOST/DB", redactDSN(c.DSN))
	default:
		return nil, fmt.Errorf("dsn scheme %q is not supported; use sqlite://FILE or postgres://USER@HOST/DB", scheme)
	}
}

// ErrPendingMigrations is what Open returns when the schema is behind.
var ErrPendingMigrations = errors.New("database schema is not up to date")

// PendingMigrations lists the migrations not applied yet.
func PendingMigrations(ctx context.Context, m vigil.Migrator) ([]vigil.Migration, error) {
	all, err := m.MigrationStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	var out []vigil.Migration
	for _, mg := range all {
		if mg.AppliedAt == nil {
			out = append(out, mg)
		}
	}
	return out, nil
}

// OpenOptions say how much of the program Open brings up.
type OpenOptions struct {
	// Migrate applies pending migrations; without it pending migrations
	// are an error that says how to apply them.
	Migrate bool
}

// Open opens the database, checks (or applies) migrations and builds the
// verification service. It is what serve and the admin commands share.
func (m *Main) Open(ctx context.Context, o OpenOptions) error {
	db, err := OpenDatabase(ctx, m.Config, m.Logger)
	if err != nil {
		return err
	}
	m.DB = db

	pending, err := PendingMigrations(ctx, db)
	if err != nil {
		return err
	}
	if o.Migrate && len(pending) > 0 {
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		m.Logger.Info("database migrated", "applied", len(pending), "database", db.Kind)
		if pending, err = PendingMigrations(ctx, db); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %d migration(s) pending (first: %04d %s); run `vigil migrate up` or pass --migrate to `vigil serve`",
			ErrPendingMigrations, len(pending), pending[0].Version, pending[0].Name)
	}

	if m.Keys, err = vigil.NewKeyring(m.Config.Secrets.System...); err != nil {
		return fmt.Errorf("secrets.system: %w", err)
	}
	d, found := m.Config.buildDelivery(m.Stdout, m.Logger)
	if err := found.err(); err != nil {
		return err
	}
	for _, w := range d.warnings {
		m.Logger.Warn("message templates", "warning", w)
	}
	m.callbacks = d.callbacks
	deps := flows.Deps{
		Store:     db,
		Keys:      m.Keys,
		Chains:    d.chains,
		Templates: d.templates,
		Captcha:   d.captcha,
		Logger:    m.Logger,
	}
	if m.registry != nil {
		deps.Observer = api.NewMetrics(m.registry)
	}
	if k := m.Config.Kratos; k.AdminURL != "" {
		ids, err := kratos.New(kratos.Config{AdminURL: k.AdminURL, PublicURL: k.PublicURL, Timeout: k.Timeout})
		if err != nil {
			return fmt.Errorf("kratos: %w", err)
		}
		deps.Identities = ids
	}
	if w := m.Config.Devices.WebAuthn; w.RPID != "" {
		rp, err := webauthn.New(m.Config.webauthnConfig())
		if err != nil {
			return fmt.Errorf("devices.webauthn: %w", err)
		}
		deps.WebAuthn = rp
	}
	if m.Service, err = flows.New(m.Config.Flows(), deps); err != nil {
		return fmt.Errorf("build verification service: %w", err)
	}
	return nil
}

// Serve opens everything, binds both listeners and starts the HTTP servers
// and the delivery queue. It returns once the service is up; Done reports
// a listener that failed later, Close takes everything down.
func (m *Main) Serve(ctx context.Context, o OpenOptions) error {
	// One registry for the engine's observer and the HTTP edge; api.New
	// adds the runtime collectors and serves it at /metrics.
	m.registry = prometheus.NewRegistry()
	if err := m.Open(ctx, o); err != nil {
		return err
	}

	srv := api.New(api.Config{
		AdminAPIKey:       m.Config.Admin.APIKey,
		Dev:               m.Config.Dev,
		Logger:            m.Logger,
		Ready:             m.ready,
		Registry:          m.registry,
		TrustProxyHeaders: m.Config.Serve.TrustProxyHeaders,
		Version:           version,
		Callbacks:         m.callbacks,
		Product:           m.Config.Templates.Product,
		DeviceCookie: api.DeviceCookie{
			Name: m.Config.Devices.Cookie.Name, Domain: m.Config.Devices.Cookie.Domain,
			Secure: m.Config.Devices.Cookie.Secure, SameSite: sameSiteModes[m.Config.Devices.Cookie.SameSite],
			MaxAge: m.Config.Devices.TrustFor,
		},
	}, m.Service)

	pubAddr := joinHostPort(m.Config.Serve.Public.Host, m.Config.Serve.Public.Port)
	admAddr := joinHostPort(m.Config.Serve.Admin.Host, m.Config.Serve.Admin.Port)
	var lc net.ListenConfig
	pubLn, err := lc.Listen(ctx, "tcp", pubAddr)
	if err != nil {
		return fmt.Errorf("serve.public: listen on %s: %w", pubAddr, err)
	}
	admLn, err := lc.Listen(ctx, "tcp", admAddr)
	if err != nil {
		_ = pubLn.Close()
		return fmt.Errorf("serve.admin: listen on %s: %w", admAddr, err)
	}
	m.PublicAddr, m.AdminAddr = pubLn.Addr(), admLn.Addr()
	m.public = m.httpServer(srv.Public(), "public")
	// Kratos' web hooks share the admin listener but not its key: they
	// authenticate with hooks.api_key.
	admin := http.NewServeMux()
	admin.Handle("/hooks/kratos/", hooks.New(hooks.Config{
		APIKey: m.Config.Hooks.APIKey, Logger: m.Logger, DeviceCookie: m.Config.Devices.Cookie.Name,
	}, m.Service))
	admin.Handle("/", srv.Admin())
	m.admin = m.httpServer(admin, "admin")

	// The queue outlives ctx: on shutdown it is stopped only after the
	// HTTP servers drained, because requests in flight may still queue
	// messages.
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.queueCancel = cancel
	m.queueDone = make(chan error, 1)
	queue := m.DB.Queue()
	workers := vigil.Workers{Deliver: m.Service.Deliver, Job: m.Service.RunJob}
	go func() { m.queueDone <- queue.Run(qctx, workers) }()

	m.serveErr = make(chan error, 2)
	for _, s := range []struct {
		srv  *http.Server
		ln   net.Listener
		name string
	}{{m.public, pubLn, "public"}, {m.admin, admLn, "admin"}} {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.serveErr <- fmt.Errorf("%s listener: %w", s.name, err)
			}
		}()
	}
	m.Logger.Info("vigil started",
		"version", version, "commit", commit, "dev", m.Config.Dev, "database", m.DB.Kind,
		"public", "http://"+m.PublicAddr.String(), "admin", "http://"+m.AdminAddr.String(),
		"public_base_url", m.Config.Serve.Public.BaseURL)
	return nil
}

// Done reports an HTTP server that stopped on its own.
func (m *Main) Done() <-chan error { return m.serveErr }

func (m *Main) httpServer(h http.Handler, name string) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// No WriteTimeout: server-sent event streams stay open for as long
		// as a step-up waits. Handlers set their own deadlines.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(m.Logger.With("listener", name).Handler(), slog.LevelWarn),
	}
}

// ready answers /health/ready: the database answers and no shutdown has
// begun, so load balancers stop sending work to a draining process.
func (m *Main) ready(ctx context.Context) error {
	if m.draining.Load() {
		return errors.New("shutting down")
	}
	return m.DB.Ping(ctx)
}

// Close takes the service down in order: stop accepting and finish the
// requests in flight, then stop the queue and wait for the jobs in flight,
// then close the database. Each wait is bounded by serve.shutdown_timeout.
// ctx must not be the one a signal cancelled: pass
// context.WithoutCancel(ctx).
func (m *Main) Close(ctx context.Context) error {
	m.draining.Store(true)
	var errs []error
	timeout := m.Config.Serve.ShutdownTimeout
	if m.public != nil {
		hctx, cancel := context.WithTimeout(ctx, timeout)
		done := make(chan error, 2)
		for _, s := range []*http.Server{m.public, m.admin} {
			go func() { done <- s.Shutdown(hctx) }()
		}
		for range 2 {
			if err := <-done; err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		cancel()
	}
	if m.queueCancel != nil {
		m.queueCancel()
		qctx, cancel := context.WithTimeout(ctx, timeout)
		select {
		case err := <-m.queueDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("delivery queue: %w", err))
			}
		case <-qctx.Done():
			errs = append(errs, fmt.Errorf("delivery queue did not stop within %s; unfinished jobs run again after restart", timeout))
		}
		cancel()
	}
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CloseDB closes only the database: for commands that never served.
func (m *Main) CloseDB() {
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			m.Logger.Warn("close database", "err", err)
		}
	}
}

// oneLine flattens an error for the terminal.
func oneLine(err error) string {
	if _, ok := errors.AsType[*ConfigError](err); ok {
		return err.Error() // a list, one problem a line, reads best as it is
	}
	if ve, ok := errors.AsType[*vigil.Error](err); ok {
		s := fmt.Sprintf("%s (%s", strings.TrimSpace(ve.Message), ve.Code)
		if ve.AttemptsLeft != nil {
			s += fmt.Sprintf(", %d attempts left", *ve.AttemptsLeft)
		}
		if ve.RetryAfter > 0 {
			s += fmt.Sprintf(", retry after %s", ve.RetryAfter.Round(time.Second))
		}
		return s + ")"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
