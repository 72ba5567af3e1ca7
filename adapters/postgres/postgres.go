package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/vigil-auth/vigil"
)

// Options tune the connection pool. Zero values take the defaults.
type Options struct {
	// MaxConns caps the pool; default 16. A working Queue holds one more
	// connection for LISTEN.
	MaxConns int
	// ConnectTimeout bounds dialing a connection; default 5 s unless the
	// DSN sets connect_timeout.
	ConnectTimeout time.Duration
	// StatementTimeout is the server-side limit on one statement; default
	// 30 s unless the DSN sets statement_timeout.
	StatementTimeout time.Duration
	// Logger receives River's logs; default slog.Default().
	Logger *slog.Logger
	// Tracer, when set, sees every statement the store issues (benchmarks
	// use it to replay an operation's exact SQL).
	Tracer pgx.QueryTracer
}

const (
	defaultMaxConns         = 16
	defaultConnectTimeout   = 5 * time.Second
	defaultStatementTimeout = 30 * time.Second
	// A transaction idle this long is a crashed or stuck caller; the server
	// ends it so its row locks (the audit head above all) are freed.
	idleInTxTimeout = time.Minute
)

// Store is the PostgreSQL vigil.Store. The Tx methods on Store run on the
// pool, each on its own; InTx runs them in one transaction.
type Store struct {
	conn // the Tx methods, on the pool

	pool   *pgxpool.Pool
	river  *river.Client[pgx.Tx] // insert-only
	schema string
	log    *slog.Logger
	hits   atomic.Uint64 // Hit calls, to pace cleanup
	puts   atomic.Uint64 // PutHookResult calls, likewise
	cers   atomic.Uint64 // InsertCeremony calls, likewise
}

var (
	_ vigil.Store    = (*Store)(nil)
	_ vigil.Migrator = (*Store)(nil)
	_ vigil.Tx       = (*conn)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or
// key=value string; search_path in it picks the schema) and checks that
// it answers. It does not migrate: call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err) // pgx redacts the password
	}
	cfg.MaxConns = defaultMaxConns
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(min(opts.MaxConns, math.MaxInt32))
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = cmpOr(opts.ConnectTimeout, defaultConnectTimeout)
	}
	rp := cfg.ConnConfig.RuntimeParams
	setDefault(rp, "statement_timeout", millis(cmpOr(opts.StatementTimeout, defaultStatementTimeout)))
	setDefault(rp, "idle_in_transaction_session_timeout", millis(idleInTxTimeout))
	setDefault(rp, "application_name", "vigil")

	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	s := &Store{pool: pool, log: log}
	s.conn = conn{s: s, db: pool}
	if err := s.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	var schema *string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	if schema == nil {
		return errors.New("postgres: no schema of the search_path exists")
	}
	s.schema = *schema

	// River is told the schema outright rather than left to search_path,
	// so that its LISTEN/NOTIFY topics are per schema too.
	rc, err := river.NewClient(riverpgxv5.New(s.pool), &river.Config{
		Schema:     s.schema,
		Logger:     s.log,
		Middleware: []rivertype.Middleware{&promptInsert{}},
	})
	if err != nil {
		return fmt.Errorf("postgres: river client: %w", err)
	}
	s.river = rc
	return nil
}

// Schema is the schema the store's tables (and River's) live in.
func (s *Store) Schema() string { return s.schema }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to come back.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// InTx runs fn in one transaction: it commits when fn returns nil, and
// rolls back when fn returns an error (which InTx returns as is) or
// panics.
func (s *Store) InTx(ctx context.Context, fn func(vigil.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// Also on panic and runtime.Goexit. ctx may be the reason we are
		// here, so roll back on a context of our own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx) // a failed rollback closes the conn, which ends the tx too
	}()
	if err := fn(&conn{s: s, db: tx, tx: tx}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// dbtx is what pgxpool.Pool and pgx.Tx share.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// conn implements vigil.Tx on the pool (tx nil) or in a transaction.
type conn struct {
	s  *Store
	db dbtx
	tx pgx.Tx
}

// atomically runs fn in c's transaction, or in a short one of its own when
// c is the pool: for the methods that write more than one statement.
func (c *conn) atomically(ctx context.Context, fn func(c *conn) error) error {
	if c.tx != nil {
		return fn(c)
	}
	return pgx.BeginFunc(ctx, c.s.pool, func(tx pgx.Tx) error {
		return fn(&conn{s: c.s, db: tx, tx: tx})
	})
}

// dbErr adds context to err, translating pgx.ErrNoRows to vigil.ErrNotFound
// and a unique violation to vigil.ErrConflict.
func dbErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, vigil.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("%s: %w: %w", what, vigil.ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func setDefault(m map[string]string, k, v string) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}
