package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-auth/vigil"
)

var (
	_ vigil.Store    = (*Store)(nil)
	_ vigil.Migrator = (*Store)(nil)
	_ vigil.Tx       = (*tx)(nil)
	_ vigil.Queue    = (*Queue)(nil)
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's and its queues' logs; nil discards them.
	Logger *slog.Logger
	// Clock is the store's notion of now: defaults for unset timestamps and
	// the queue's due and lease times. Defaults to vigil.SystemClock.
	Clock vigil.Clock
	// BusyTimeout bounds how long a statement waits for a lock held by
	// another process on the same file. Defaults to 10s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read-only connection pool that serves
	// the Store's own read methods. Defaults to 4.
	ReadConns int
}

// Store is Vigil's embedded SQLite store.
type Store struct {
	w      *sql.DB // the single writer connection: InTx and every write
	r      *sql.DB // read-only pool: the Store's autocommit reads
	log    *slog.Logger
	clock  vigil.Clock
	path   string
	hits   atomic.Uint64 // Hit calls, to sweep expired counters now and then
	puts   atomic.Uint64 // PutHookResult calls, to sweep old results likewise
	cers   atomic.Uint64 // InsertCeremony calls, to sweep old ceremonies likewise
	wakeMu sync.Mutex
	wakes  map[chan struct{}]struct{}
}

// Open opens (creating if needed) the database file named by dsn, one of
// sqlite://relative/path.db, sqlite:///absolute/path.db or
// sqlite:relative/path.db. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	path, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if err := createPrivate(path); err != nil {
		return nil, err
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())

	// The writer: WAL so readers never block it; synchronous(FULL) so a
	// committed verification and its message survive a power cut, not only
	// a crash; _txlock=immediate so every transaction takes the write lock
	// at BEGIN, where busy_timeout can wait for it, instead of upgrading a
	// read lock mid-transaction, which fails with SQLITE_BUSY at once.
	w, err := sql.Open("sqlite", path+"?"+busy+
		"&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Open the writer first: it switches the file to WAL, which the
	// readers rely on.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", path+"?"+busy+"&_pragma=foreign_keys(1)&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	return &Store{
		w:     w,
		r:     r,
		log:   opts.Logger,
		clock: opts.Clock,
		path:  path,
		wakes: map[chan struct{}]struct{}{},
	}, nil
}

// ParseDSN returns the file path a sqlite DSN names. The scheme is
// sqlite:; what follows "sqlite://" (or "sqlite:") is the path, so
// sqlite://vigil.db is relative to the working directory and
// sqlite:///var/lib/vigil/vigil.db is absolute. Percent escapes are
// decoded. In-memory databases and query parameters are refused: the
// store needs a file that its writer and readers share, and sets its own
// connection parameters.
func ParseDSN(dsn string) (string, error) {
	rest, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return "", fmt.Errorf("sqlite dsn %q: want sqlite://path/to/file.db", dsn)
	}
	rest = strings.TrimPrefix(rest, "//")
	if strings.ContainsRune(rest, '?') {
		return "", fmt.Errorf("sqlite dsn %q: query parameters are not supported", dsn)
	}
	path, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("sqlite dsn %q: %w", dsn, err)
	}
	switch {
	case path == "":
		return "", fmt.Errorf("sqlite dsn %q: no file path", dsn)
	case path == ":memory:" || strings.HasPrefix(path, "file:") || strings.Contains(path, "mode=memory"):
		return "", fmt.Errorf("sqlite dsn %q: in-memory and URI databases are not supported, name a file", dsn)
	case strings.HasSuffix(path, "/"):
		return "", fmt.Errorf("sqlite dsn %q: path names a directory, not a file", dsn)
	}
	return path, nil
}

// createPrivate creates the database file, if it does not exist yet, with
// mode 0600, before SQLite would create it with the umask's default.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return f.Close()
}

// Path is the database file the store opened.
func (s *Store) Path() string { return s.path }

// InTx runs fn in one transaction on the single writer connection. It
// holds the database's write lock from BEGIN to COMMIT, so every read in fn
// sees the state it then writes over. fn must use only the Tx it is given:
// calling the Store's write methods or InTx from inside fn waits for the
// connection fn itself holds.
func (s *Store) InTx(ctx context.Context, fn func(vigil.Tx) error) error {
	return s.inTx(ctx, func(t *tx) error { return fn(t) })
}

func (s *Store) inTx(ctx context.Context, fn func(*tx) error) (err error) {
	stx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{q: stx, s: s}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if t.queued {
		s.wake()
	}
	return nil
}

// Ping checks that both the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes the database. Queues must have returned first.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// wake tells every running Queue that a message or job was committed.
func (s *Store) wake() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	for c := range s.wakes {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (s *Store) subscribe() chan struct{} {
	c := make(chan struct{}, 1)
	s.wakeMu.Lock()
	s.wakes[c] = struct{}{}
	s.wakeMu.Unlock()
	return c
}

func (s *Store) unsubscribe(c chan struct{}) {
	s.wakeMu.Lock()
	delete(s.wakes, c)
	s.wakeMu.Unlock()
}

func (s *Store) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// read returns a Tx over the read-only pool, for the Store's autocommit
// reads.
func (s *Store) read() *tx { return &tx{q: s.r, s: s} }

// write runs one write method in its own transaction, so a method of
// several statements (AppendAudit, Hit) stays atomic outside InTx too.
func (s *Store) write(ctx context.Context, fn func(*tx) error) error {
	return s.inTx(ctx, fn)
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx implements vigil.Tx over a transaction (InTx) or the read pool.
type tx struct {
	q queryer
	s *Store
	// queued is set when the transaction inserted a message or a job, so
	// the queues are woken once it commits.
	queued bool
}

// dbErr translates driver errors at the edge: no rows becomes
// vigil.ErrNotFound and a unique violation vigil.ErrConflict, both wrapped
// with what was being done.
func dbErr(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, vigil.ErrNotFound)
	case isUnique(err):
		return fmt.Errorf("%s: %w (%w)", what, vigil.ErrConflict, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

func isUnique(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// Times are stored as INTEGER unix microseconds.

func ts(t time.Time) int64 { return t.UnixMicro() }

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromTS(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullTS(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromTS(us.Int64)
	return &t
}
