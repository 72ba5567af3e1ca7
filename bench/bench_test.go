package bench

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

// parallelism × GOMAXPROCS client goroutines drive each benchmark.
const parallelism = 8

type env struct {
	dsn    string
	store  *postgres.Store
	svc    *flows.Service
	sender *vigiltest.Sender
}

func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := context.Background()
	e := &env{dsn: pgtest.DSN(b), sender: &vigiltest.Sender{}}
	var err error
	e.store, err = postgres.Open(ctx, e.dsn, postgres.Options{MaxConns: 2 * parallelism, Tracer: tracer{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.store.Close() })
	if err := e.store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	keys, err := vigil.NewKeyring("benchmark-secret-benchmark-secret-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	cfg := flows.Defaults()
	cfg.ResendFloor = 0
	e.svc, err = flows.New(cfg, flows.Deps{Store: e.store, Keys: keys,
		Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: e.sender}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// floorPool opens a pool on a fresh, migrated schema for the raw replay.
func floorPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	s.Close()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 2 * parallelism
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// timing collects per-operation latencies from parallel clients.
type timing struct {
	mu   sync.Mutex
	lats []time.Duration
}

func (t *timing) add(d time.Duration) {
	t.mu.Lock()
	t.lats = append(t.lats, d)
	t.mu.Unlock()
}

func (t *timing) p99() time.Duration {
	slices.Sort(t.lats)
	if len(t.lats) == 0 {
		return 0
	}
	return t.lats[(len(t.lats)*99)/100]
}

// run executes n operations from parallel clients and returns the
// throughput and p99 latency.
func run(n int, do func(i int) error) (opsPerSec float64, p99 time.Duration, err error) {
	var next atomic.Int64
	var firstErr atomic.Value
	tm := &timing{lats: make([]time.Duration, 0, n)}
	clients := parallelism * 2
	var wg sync.WaitGroup
	began := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				tm.add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	if e, ok := firstErr.Load().(error); ok {
		return 0, 0, e
	}
	return float64(n) / elapsed.Seconds(), tm.p99(), nil
}

// replay issues each recorded operation's statements raw on one connection.
func replay(ctx context.Context, pool *pgxpool.Pool, o op) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for _, s := range o {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			conn.Exec(ctx, "rollback")
			return fmt.Errorf("replay %q: %w", s.sql, err)
		}
	}
	return nil
}

func report(b *testing.B, name string, vigilOps, floorOps float64, vigilP99, floorP99 time.Duration) {
	b.ReportMetric(vigilOps, "vigil-ops/s")
	b.ReportMetric(float64(vigilP99.Microseconds())/1000, "vigil-p99-ms")
	b.ReportMetric(floorOps, "floor-ops/s")
	b.ReportMetric(float64(floorP99.Microseconds())/1000, "floor-p99-ms")
	b.ReportMetric(vigilOps/floorOps, "ratio")
	b.Logf("%s: vigil %.0f ops/s (p99 %v), floor %.0f ops/s (p99 %v), ratio %.2f", name, vigilOps, vigilP99, floorOps, floorP99, vigilOps/floorOps)
}

// startOps starts n verifications for fresh identities, recording each
// operation's SQL.
func startOps(ctx context.Context, e *env, n int, tag string) ([]op, []string, float64, time.Duration, error) {
	ops := make([]op, n)
	ids := make([]string, n)
	rate, p99, err := run(n, func(i int) error {
		r := &recorder{}
		st, err := e.svc.Start(withRecorder(ctx, r), flows.StartRequest{
			IdentityID: identityID(i),
			Address:    fmt.Sprintf("user%d.%s@example.com", i, tag),
			Channel:    vigil.ChannelEmail,
			ClientIP:   clientIP(i),
		})
		if err != nil {
			return err
		}
		ops[i], ids[i] = r.stmts, st.ID
		return nil
	})
	return ops, ids, rate, p99, err
}

func identityID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func clientIP(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// BenchmarkStartVerification: a challenge row and its delivery job in one
// transaction, against the same statements replayed raw.
func BenchmarkStartVerification(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	pool := floorPool(b)
	b.ResetTimer()
	ops, _, vigilOps, vigilP99, err := startOps(ctx, e, b.N, "start")
	if err != nil {
		b.Fatal(err)
	}
	floorOps, floorP99, err := run(b.N, func(i int) error { return replay(ctx, pool, ops[i]) })
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	report(b, "start", vigilOps, floorOps, vigilP99, floorP99)
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// BenchmarkCheckCode: a correct code checked and consumed (attempt counted,
// verification consumed, address verified, audit appended), against the
// same statements replayed raw.
func BenchmarkCheckCode(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	pool := floorPool(b)
	starts, ids, _, _, err := startOps(ctx, e, b.N, "check")
	if err != nil {
		b.Fatal(err)
	}
	// Deliver every code, untimed, to learn it.
	codes := make([]string, b.N)
	for i := range b.N {
		ms, err := e.store.ListMessages(ctx, vigil.MessageFilter{IdentityID: identityID(i), Limit: 1})
		if err != nil || len(ms) != 1 {
			b.Fatalf("message of %d: %v", i, err)
		}
		if _, err := e.svc.Deliver(ctx, ms[0].ID); err != nil {
			b.Fatal(err)
		}
		codes[i] = codeRE.FindString(e.sender.Last(b).Text)
	}
	// Replay the starts raw so the floor's rows exist, untimed.
	if _, _, err := run(b.N, func(i int) error { return replay(ctx, pool, starts[i]) }); err != nil {
		b.Fatal(err)
	}

	checks := make([]op, b.N)
	b.ResetTimer()
	vigilOps, vigilP99, err := run(b.N, func(i int) error {
		r := &recorder{}
		if _, err := e.svc.CheckCode(withRecorder(ctx, r), ids[i], codes[i], clientIP(i)); err != nil {
			return fmt.Errorf("check %d: %w", i, err)
		}
		checks[i] = r.stmts
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	floorOps, floorP99, err := run(b.N, func(i int) error { return replay(ctx, pool, checks[i]) })
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	report(b, "check", vigilOps, floorOps, vigilP99, floorP99)
}
