package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/hooks"
	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

const (
	gateIdentities = 1_000_000
	gateRate       = 2000             // requests per second of the fixed-rate step
	gateStep       = 10 * time.Second // measured part of the fixed-rate step
	gateWarmup     = 2 * time.Second  // unrecorded, at the same rate, before each step
	gatePeakStep   = 5 * time.Second  // per closed-loop level
	gateRounds     = 3                // of every step
	gateInFlight   = 64               // open loop: requests in flight at most
	gatePoolConns  = 16               // PostgreSQL pool of the gate and of the floor alike
	gateKey        = "bench-hook-key"
	goldenID       = "9ab7e622-dfe6-4e57-b6df-8a9eb1bc23d9"
)

// Closed-loop concurrency levels; the best of them, over all rounds, is
// the peak.
var gatePeakClients = []int{8, 16, 64}

// gateListSQL is ListAddresses' statement (adapters/postgres/address.go),
// copied so that the floor issues the very read the gate does.
const gateListSQL = `
		SELECT id, identity_id, channel, blind_index, sealed, masked, verified_at, created_at, updated_at FROM addresses
		WHERE identity_id = $1
		ORDER BY created_at, id`

// BenchmarkGate load-tests the login hook's allow path on 1,000,000
// identities against its floor. It takes minutes and a million rows, so it
// runs only with VIGIL_BENCH_GATE=1 (`make bench-gate`); `make bench` and
// `make test` skip it. docs/benchmarks.md records its figures.
func BenchmarkGate(b *testing.B) {
	if os.Getenv("VIGIL_BENCH_GATE") != "1" {
		b.Skip("minutes long and 1,000,000 rows: run with VIGIL_BENCH_GATE=1 (make bench-gate)")
	}
	ctx := context.Background()
	dsn, keys, store := gateStore(b)
	began := time.Now()
	ids := seedGate(ctx, b, dsn, keys)
	fmt.Printf("seeded %d identities, each with one verified email address, in %v\n", len(ids), time.Since(began).Round(time.Second))

	tmpl := newLoginTemplate(b)
	svc := gateService(b, store, keys)
	gateAddr := serveLoopback(b, adminMux(hooks.New(hooks.Config{APIKey: gateKey, Logger: jsonDiscard()}, svc)))
	floorDB := floorConns(ctx, b, dsn)
	floorAddr := serveLoopback(b, floorHandler(floorDB))
	bareAddr := serveLoopback(b, bareHandler())

	// What one allowed login costs in statements, seen by a pgx tracer.
	probeStatements(ctx, b, dsn, keys, tmpl, ids)

	// The bare server has no database: what the harness, HTTP and the
	// machine's scheduling cost by themselves. It runs in the open loop
	// only.
	targets := []loadPlan{
		{Name: "floor", Addr: floorAddr, Path: "/floor"},
		{Name: "gate", Addr: gateAddr, Path: "/hooks/kratos/login", Kratos: true},
	}
	openTargets := append([]loadPlan{{Name: "bare", Addr: bareAddr, Path: "/bare"}}, targets...)
	writtenBefore := rowsWritten(ctx, b, floorDB)
	fixed, peak := measureRounds(ctx, b, pgMeter(ctx, b, gateApp), openTargets, targets, len(ids))

	written := rowsWritten(ctx, b, floorDB) - writtenBefore
	if written != 0 {
		b.Errorf("the load wrote %d rows; the allow path must write none", written)
	}
	// b.Log would keep only the first lines of a benchmark's output.
	fmt.Print(gateTable(openTargets, fixed, targets, peak, written))

	floorPeak, gatePeak := peakOf(peak[0]).rate(), peakOf(peak[1]).rate()
	b.ReportMetric(ms(medianP99(fixed[0])), "bare-p99-ms")
	b.ReportMetric(ms(medianP99(fixed[1])), "floor-p99-ms")
	b.ReportMetric(ms(medianP99(fixed[2])), "gate-p99-ms")
	b.ReportMetric(floorPeak, "floor-peak-req/s")
	b.ReportMetric(gatePeak, "gate-peak-req/s")
	b.ReportMetric(gatePeak/floorPeak, "ratio")
}

// measureRounds runs gateRounds rounds, interleaving the servers so that
// a burst of other work on the machine hits one round rather than one
// server: each of open at the fixed rate, then each of closed at every
// peak level. It returns fixed[server][round] and peak[server][level][round].
func measureRounds(ctx context.Context, b *testing.B, meter cpuMeter, open, closed []loadPlan, identities int) ([][]*loadResult, [][][]*loadResult) {
	b.Helper()
	fixed := make([][]*loadResult, len(open))
	peak := make([][][]*loadResult, len(closed))
	for i := range peak {
		peak[i] = make([][]*loadResult, len(gatePeakClients))
	}
	for range gateRounds {
		for i, p := range open {
			p.Rate, p.Clients, p.Warmup, p.Duration, p.Identities = gateRate, gateInFlight, gateWarmup, gateStep, identities
			r := runLoad(ctx, b, meter, p)
			if r.Failed > 0 {
				b.Errorf("%s: %d of %d requests failed, first: %s", p.Name, r.Failed, r.Sent, r.FirstErr)
			}
			fixed[i] = append(fixed[i], r)
		}
		for l, c := range gatePeakClients {
			for i, p := range closed {
				p.Clients, p.Warmup, p.Duration, p.Identities = c, time.Second, gatePeakStep, identities
				r := runLoad(ctx, b, meter, p)
				if r.Failed > 0 {
					b.Errorf("%s, %d clients: %d requests failed, first: %s", p.Name, c, r.Failed, r.FirstErr)
				}
				peak[i][l] = append(peak[i][l], r)
			}
		}
	}
	return fixed, peak
}

// gateStore opens a migrated PostgreSQL store on a fresh schema (see
// gateDSN), with the benchmarks' key ring.
func gateStore(b *testing.B) (string, *vigil.Keyring, *postgres.Store) {
	b.Helper()
	ctx := context.Background()
	dsn := gateDSN(b)
	keys, err := vigil.NewKeyring("benchmark-secret-benchmark-secret-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	store, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: gatePoolConns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return dsn, keys, store
}

// gateApp names the benchmark's PostgreSQL connections, so that their
// backends' CPU time can be told apart from other work on the server.
const gateApp = "vigil-bench-gate"

// gateDSN is a fresh pgtest schema, dropped when the benchmark ends, with
// PostgreSQL's default synchronous_commit rather than pgtest's "off": the
// allow path writes nothing, but should it ever write, it must pay for a
// durable commit as production does.
func gateDSN(b *testing.B) string {
	b.Helper()
	u, err := url.Parse(pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	q.Set("application_name", gateApp)
	u.RawQuery = q.Encode()
	return u.String()
}

// identities are the seeded identity ids, kept as bytes: a million
// strings would give the garbage collector a million pointers to trace in
// the very process whose latency is measured.
type identities []uuid.UUID

// newIdentities draws random-looking version 4 UUIDs, as Kratos makes
// them, the same on every run.
func newIdentities(n int) identities {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make(identities, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], r.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], r.Uint64())
		ids[i][6] = ids[i][6]&0x0f | 0x40
		ids[i][8] = ids[i][8]&0x3f | 0x80
	}
	return ids
}

func gateEmail(i int) string { return fmt.Sprintf("user%d@example.com", i) }

// seedGate copies in one verified email address per identity, every row
// built as the service builds it: blind index and AES-GCM seal from the
// same key ring, masked form from flows.Normalize.
func seedGate(ctx context.Context, b *testing.B, dsn string, keys *vigil.Keyring) identities {
	b.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	ids := newIdentities(gateIdentities)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	i := 0
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"addresses"},
		[]string{"id", "identity_id", "channel", "blind_index", "sealed", "masked", "verified_at", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == gateIdentities {
				return nil, nil
			}
			value, masked, err := flows.Normalize(vigil.ChannelEmail, gateEmail(i))
			if err != nil {
				return nil, err
			}
			i++
			return []any{uuid.Must(uuid.NewV7()).String(), ids[i-1].String(), string(vigil.ChannelEmail),
				keys.Index(value), keys.Seal([]byte(value)), masked, at, at, at}, nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	if n != gateIdentities {
		b.Fatalf("copied %d rows, want %d", n, gateIdentities)
	}
	// Start from a settled table, as a long-lived one is: hint bits and
	// visibility map set, statistics fresh, the copy's WAL checkpointed, so
	// that neither autovacuum nor a checkpoint lands inside a measurement.
	for _, stmt := range []string{"VACUUM (ANALYZE) addresses", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	return ids
}

func gateService(b *testing.B, store vigil.Store, keys *vigil.Keyring) *flows.Service {
	b.Helper()
	svc, err := flows.New(flows.Defaults(), flows.Deps{Store: store, Keys: keys, Logger: jsonDiscard(),
		Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: &vigiltest.Sender{}}})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// jsonDiscard logs as cmd/vigil does by default (JSON, info), to nowhere.
// Not slog.DiscardHandler: the hook's Logger.With per request costs what
// the JSON handler makes it cost, and that is part of what is measured.
//
//nolint:sloglint // see above
func jsonDiscard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// adminMux mounts the hooks as cmd/vigil mounts them on the admin listener.
func adminMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/hooks/kratos/", h)
	return mux
}

// serveLoopback serves h on 127.0.0.1 at a random port, with cmd/vigil's
// server timeouts, until the benchmark ends, and returns its address.
func serveLoopback(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// floorConns is the floor's pool, as large as the store's.
func floorConns(ctx context.Context, b *testing.B, dsn string) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = gatePoolConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// floorHandler is the least a login hook can do: read the body, decode the
// identity id from the same payload, make one indexed read of its
// addresses (the gate's very statement), answer 204.
func floorHandler(pool *pgxpool.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, hooks.MaxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var p struct {
			Identity struct {
				ID string `json:"id"`
			} `json:"identity"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rows, err := pool.Query(r.Context(), gateListSQL, p.Identity.ID)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var a vigil.Address
		found := 0
		for rows.Next() {
			if err := rows.Scan(&a.ID, &a.IdentityID, &a.Channel, &a.Index, &a.Sealed, &a.Masked, &a.VerifiedAt, &a.CreatedAt, &a.UpdatedAt); err != nil {
				break
			}
			found++
		}
		if err := rows.Err(); err != nil || found == 0 {
			http.Error(w, fmt.Sprintf("read %d addresses: %v", found, err), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// bareHandler reads the body and answers 204.
func bareHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, hooks.MaxBody)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// loginTemplate is the golden login body, whose verified flags are all
// false, so the gate must read Vigil's addresses (Kratos has not synced
// yet), cut where the identity's id and address go.
type loginTemplate struct {
	parts []string // text, hole, text, hole, ..., text
	holes []string // goldenID or goldenEmail, per hole
}

const goldenEmail = "alice@example.com"

func newLoginTemplate(tb testing.TB) *loginTemplate {
	tb.Helper()
	golden, err := os.ReadFile(filepath.Join("..", "hooks", "testdata", "login.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if bytes.Contains(golden, []byte(`"verified": true`)) || !bytes.Contains(golden, []byte(goldenID)) {
		tb.Fatal("hooks/testdata/login.json changed: want the identity " + goldenID + " with no verified address")
	}
	// The traits spell the address with capitals; one spelling suffices.
	rest := strings.ReplaceAll(string(golden), "Alice@Example.com", goldenEmail)
	t := &loginTemplate{}
	for {
		i, j := strings.Index(rest, goldenID), strings.Index(rest, goldenEmail)
		if i < 0 && j < 0 {
			break
		}
		hole := goldenID
		if i < 0 || (j >= 0 && j < i) {
			i, hole = j, goldenEmail
		}
		t.parts = append(t.parts, rest[:i])
		t.holes = append(t.holes, hole)
		rest = rest[i+len(hole):]
	}
	t.parts = append(t.parts, rest)
	return t
}

// appendTo appends the golden body for one identity: its id in place of
// the golden one, its address in place of alice's.
func (t *loginTemplate) appendTo(out []byte, id, email string) []byte {
	for i, p := range t.parts {
		out = append(out, p...)
		if i < len(t.holes) {
			if t.holes[i] == goldenID {
				out = append(out, id...)
			} else {
				out = append(out, email...)
			}
		}
	}
	return out
}

// probeStatements sends an allowed login, with and without Kratos' trigger
// id, through the real handler over a store with a pgx tracer, and prints
// the statements it issued. The spec allows one read and no write; any
// other count fails the benchmark (after measuring what there is).
func probeStatements(ctx context.Context, b *testing.B, dsn string, keys *vigil.Keyring, tmpl *loginTemplate, ids identities) {
	b.Helper()
	store, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2, Tracer: tracer{}})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := hooks.New(hooks.Config{APIKey: gateKey, Logger: jsonDiscard()}, gateService(b, store, keys))
	for _, trigger := range []string{"", "probe-trigger-id"} {
		rec := &recorder{}
		req := httptest.NewRequestWithContext(withRecorder(ctx, rec), http.MethodPost, "/hooks/kratos/login",
			bytes.NewReader(tmpl.appendTo(nil, ids[7].String(), gateEmail(7))))
		req.Header.Set(hooks.KeyHeader, gateKey)
		if trigger != "" {
			req.Header.Set("Ory-Webhook-Trigger-Id", trigger)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatalf("probe login (trigger id %q): answer %d %s, want 204", trigger, w.Code, w.Body)
		}
		var lines []string
		for _, s := range rec.stmts {
			lines = append(lines, "    "+oneLine(s.sql))
		}
		fmt.Printf("allowed login, trigger id %q: %d statements\n%s\n", trigger, len(rec.stmts), strings.Join(lines, "\n"))
		if len(rec.stmts) != 1 || !strings.HasPrefix(oneLine(rec.stmts[0].sql), "SELECT") || !strings.Contains(rec.stmts[0].sql, "FROM addresses") {
			b.Errorf("the allow path (trigger id %q) is not one read of addresses: %d statements", trigger, len(rec.stmts))
		}
	}
}

func oneLine(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

func fmtCPU(r *loadResult) string {
	c := r.cpuPerRequest()
	return fmt.Sprintf("%d/%d/%d/%d", c.server.Microseconds(), c.loadgen.Microseconds(), c.pg.Microseconds(), c.other.Microseconds())
}

// best is the result with the highest throughput: other work on the
// machine only ever lowers it.
func best(rs []*loadResult) *loadResult {
	top := rs[0]
	for _, r := range rs[1:] {
		if r.rate() > top.rate() {
			top = r
		}
	}
	return top
}

// peakOf is the best closed-loop result of a server over levels and
// rounds.
func peakOf(levels [][]*loadResult) *loadResult {
	var all []*loadResult
	for _, rs := range levels {
		all = append(all, rs...)
	}
	return best(all)
}

// medianP99 is the median over rounds of each round's p99.
func medianP99(rounds []*loadResult) time.Duration {
	p := make([]time.Duration, len(rounds))
	for i, r := range rounds {
		p[i] = r.quantile(0.99)
	}
	slices.Sort(p)
	return p[len(p)/2]
}

// rowsWritten is the rows inserted, updated or deleted so far in the
// benchmark's schema, by PostgreSQL's statistics (which backends report
// within a second or so of their transactions).
func rowsWritten(ctx context.Context, b *testing.B, db *pgxpool.Pool) int64 {
	b.Helper()
	var n int64
	err := db.QueryRow(ctx, `
		SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
		FROM pg_stat_user_tables WHERE schemaname = current_schema()`).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// othersCores is how many cores the rest of the machine kept busy during
// the step (work that is neither the benchmark nor its PostgreSQL), and
// how many the hypervisor took for other machines.
func othersCores(r *loadResult) string {
	return fmt.Sprintf("%.2f / %.2f", r.cpu.other.Seconds()/r.Elapsed.Seconds(), r.cpu.steal.Seconds()/r.Elapsed.Seconds())
}

// serverCost is the CPU time per request of the server under test and its
// PostgreSQL backends: what bounds throughput with the load generator on
// another machine.
func serverCost(r *loadResult) time.Duration {
	c := r.cpuPerRequest()
	return c.server + c.pg
}

// gateTable is the benchmark's report.
func gateTable(openTargets []loadPlan, fixed [][]*loadResult, targets []loadPlan, peak [][][]*loadResult, written int64) string {
	var sb strings.Builder
	sb.WriteString(loadTable(openTargets, fixed, targets, peak))
	floorPeak, gatePeak := peakOf(peak[0]), peakOf(peak[1])
	fmt.Fprintf(&sb, "p99 at %d req/s, median of rounds: gate %s (target <= 3 ms), floor %s, bare %s\n", gateRate,
		fmtMS(medianP99(fixed[2])), fmtMS(medianP99(fixed[1])), fmtMS(medianP99(fixed[0])))
	fmt.Fprintf(&sb, "peak: gate %.0f req/s = %.2f of the floor's %.0f (target >= 0.70); server+PostgreSQL CPU per request at peak: gate %.2f × the floor's\n",
		gatePeak.rate(), gatePeak.rate()/floorPeak.rate(), floorPeak.rate(), float64(serverCost(gatePeak))/float64(serverCost(floorPeak)))
	fmt.Fprintf(&sb, "rows inserted, updated or deleted in the schema during the load: %d\n", written)
	return sb.String()
}

// loadTable prints every round of the open and closed loops.
func loadTable(openTargets []loadPlan, fixed [][]*loadResult, targets []loadPlan, peak [][][]*loadResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nopen loop at %d req/s, %d rounds of %v (each after %v warm-up), at most %d in flight; latency from each request's due time\n",
		gateRate, gateRounds, gateStep, gateWarmup, gateInFlight)
	fmt.Fprintf(&sb, "%-6s %5s %8s %6s %6s %8s %8s %8s %8s %8s  %-16s %6s %5s %9s %s\n", "server", "round", "answered", "failed", "req/s",
		"p50", "p90", "p99", "p99.9", "max", "CPU µs/req", "GC µs", "GCs", "sched p99", "others / stolen cores")
	for i, p := range openTargets {
		for round, r := range fixed[i] {
			c := r.cpuPerRequest()
			fmt.Fprintf(&sb, "%-6s %5d %8d %6d %6.0f %8s %8s %8s %8s %8s  %-16s %6d %5d %9s %s\n", p.Name, round+1, len(r.Lats), r.Failed, r.rate(),
				fmtMS(r.quantile(0.5)), fmtMS(r.quantile(0.9)), fmtMS(r.quantile(0.99)), fmtMS(r.quantile(0.999)), fmtMS(r.quantile(1)),
				fmtCPU(r), c.gc.Microseconds(), c.gcCycles, fmtMS(c.schedP99), othersCores(r))
		}
	}
	fmt.Fprintf(&sb, "\nclosed loop, %v per level and round (after 1s warm-up): best round's req/s (p99)\n%-6s", gatePeakStep, "server")
	for _, c := range gatePeakClients {
		fmt.Fprintf(&sb, " %19s", fmt.Sprintf("%d clients", c))
	}
	fmt.Fprintf(&sb, "  %-16s %6s %s\n", "CPU µs/req", "GC µs", "others / stolen cores (at peak)")
	for i, p := range targets {
		fmt.Fprintf(&sb, "%-6s", p.Name)
		for _, rs := range peak[i] {
			r := best(rs)
			fmt.Fprintf(&sb, " %19s", fmt.Sprintf("%.0f (%s)", r.rate(), fmtMS(r.quantile(0.99))))
		}
		top := peakOf(peak[i])
		fmt.Fprintf(&sb, "  %-16s %6d %s\n", fmtCPU(top), top.cpuPerRequest().gc.Microseconds(), othersCores(top))
	}
	fmt.Fprintf(&sb, "\nCPU µs/req: servers' process / load generator / PostgreSQL (benchmark's backends, background processes) / rest of the machine;\n"+
		"GC µs: of the servers' process's, its garbage collector's per request; GCs: its collections during the step;\n"+
		"sched p99: how long its goroutines waited to run once runnable (runtime/metrics /sched/latencies), 99th percentile;\n"+
		"others / stolen cores: CPU the rest of the machine used meanwhile, and CPU the hypervisor gave to other machines (steal);\n"+
		"the machine has %d cores, and figures taken while either is well above 0 are disturbed\n\n", runtime.NumCPU())
	return sb.String()
}
