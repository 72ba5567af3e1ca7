package vigiltest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/adapters/sqlite"
	"github.com/vigil-auth/vigil/internal/pgtest"
)

// Clock is a vigil.Clock that only moves when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sender records every message it is asked to send. Fail, when set,
// decides the error for a message.
type Sender struct {
	mu   sync.Mutex
	sent []vigil.Outbound
	Fail func(m vigil.Outbound) error
}

func (s *Sender) Send(_ context.Context, m vigil.Outbound) (vigil.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		if err := s.Fail(m); err != nil {
			return vigil.SendResult{}, err
		}
	}
	s.sent = append(s.sent, m)
	return vigil.SendResult{Provider: "test", ProviderID: fmt.Sprintf("t%d", len(s.sent))}, nil
}

// Sent returns a copy of what was sent.
func (s *Sender) Sent() []vigil.Outbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]vigil.Outbound(nil), s.sent...)
}

// Last returns the last message sent, failing the test if none was.
func (s *Sender) Last(t testing.TB) vigil.Outbound {
	t.Helper()
	sent := s.Sent()
	if len(sent) == 0 {
		t.Fatal("no message was sent")
	}
	return sent[len(sent)-1]
}

// To returns the last message sent to the address.
func (s *Sender) To(t testing.TB, to string) vigil.Outbound {
	t.Helper()
	sent := s.Sent()
	for _, m := range slices.Backward(sent) {
		if m.To == to {
			return m
		}
	}
	t.Fatalf("no message was sent to %s", to)
	return vigil.Outbound{}
}

// DB is a migrated store plus raw access to its database.
type DB struct {
	Name  string
	Store vigil.Store
	// Queue runs delivery jobs of Store.
	Queue vigil.Queue
	// Exec runs a raw statement (with ? placeholders rewritten for
	// PostgreSQL), for tests that tamper with rows.
	Exec func(t testing.TB, query string, args ...any)
	// Dump returns every value of every table, bytes as they are stored.
	Dump func(t testing.TB) []byte
	// Reopen opens a second store on the same database, as a restarted
	// process would.
	Reopen func(t testing.TB) (vigil.Store, vigil.Queue)
}

// Opener names a way to open a fresh database.
type Opener struct {
	Name string
	Open func(t testing.TB) *DB
}

// Stores returns an opener for each real store: SQLite always, PostgreSQL
// (VIGIL_TEST_DATABASE_URL, default the local server).
func Stores() []Opener {
	return []Opener{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}
}

// OpenSQLite opens a migrated SQLite store in a temporary file.
func OpenSQLite(t testing.TB) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	open := func(t testing.TB) (vigil.Store, vigil.Queue) {
		t.Helper()
		s, err := sqlite.Open(context.Background(), "sqlite://"+path, sqlite.Options{})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate sqlite: %v", err)
		}
		return s, s.Queue(sqlite.QueueOptions{})
	}
	st, q := open(t)
	raw := func(t testing.TB) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatalf("open raw sqlite: %v", err)
		}
		return db
	}
	return &DB{
		Name: "sqlite", Store: st, Queue: q, Reopen: open,
		Exec: func(t testing.TB, query string, args ...any) {
			t.Helper()
			db := raw(t)
			defer db.Close()
			if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
				t.Fatalf("exec %q: %v", query, err)
			}
		},
		Dump: func(t testing.TB) []byte {
			t.Helper()
			db := raw(t)
			defer func() { _ = db.Close() }()
			names := queryStrings(t, db, `SELECT name FROM sqlite_master WHERE type = 'table'`)
			var out bytes.Buffer
			for _, n := range names {
				dumpTable(t, db, n, &out)
			}
			return out.Bytes()
		},
	}
}

func dumpTable(t testing.TB, db *sql.DB, table string, out *bytes.Buffer) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM "`+table+`"`) //nolint:gosec // table names come from sqlite_master
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		writeValues(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
}

func queryStrings(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return out
}

func writeValues(out *bytes.Buffer, vals []any) {
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			out.Write(v)
		case string:
			out.WriteString(v)
		default:
			fmt.Fprint(out, v)
		}
		out.WriteByte('\n')
	}
}

// OpenPostgres opens a migrated PostgreSQL store in a schema of its own.
func OpenPostgres(t testing.TB) *DB {
	t.Helper()
	dsn := pgtest.DSN(t)
	open := func(t testing.TB) (vigil.Store, vigil.Queue) {
		t.Helper()
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate postgres: %v", err)
		}
		return s, s.Queue(postgres.QueueOptions{})
	}
	st, q := open(t)
	conn := func(t testing.TB) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		return c
	}
	return &DB{
		Name: "postgres", Store: st, Queue: q, Reopen: open,
		Exec: func(t testing.TB, query string, args ...any) {
			t.Helper()
			c := conn(t)
			defer c.Close(context.Background())
			if _, err := c.Exec(context.Background(), rebind(query), args...); err != nil {
				t.Fatalf("exec %q: %v", query, err)
			}
		},
		Dump: func(t testing.TB) []byte {
			t.Helper()
			ctx := context.Background()
			c := conn(t)
			defer c.Close(ctx)
			rows, err := c.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
			if err != nil {
				t.Fatalf("list tables: %v", err)
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("list tables: %v", err)
			}
			var out bytes.Buffer
			for _, n := range names {
				rows, err := c.Query(ctx, `SELECT * FROM "`+n+`"`)
				if err != nil {
					t.Fatalf("dump %s: %v", n, err)
				}
				for rows.Next() {
					vals, err := rows.Values()
					if err != nil {
						t.Fatalf("dump %s: %v", n, err)
					}
					writeValues(&out, vals)
				}
				rows.Close()
			}
			return out.Bytes()
		},
	}
}

// rebind turns ? placeholders into $1, $2, ...
func rebind(q string) string {
	var b bytes.Buffer
	n := 0
	for i := range len(q) {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
