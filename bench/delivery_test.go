package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/adapters/twilio"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

const (
	deliveryBacklog    = 5000             // challenges per drain and per mixed step
	deliveryRate       = 200              // Starts per second of the fixed-rate step
	deliveryStep       = 10 * time.Second // measured part of the fixed-rate step
	deliveryWarmup     = 2 * time.Second  // unrecorded, at the same rate, before it
	deliveryClients    = 16               // concurrent Start callers when committing as fast as possible
	deliveryMaxConns   = 10               // cmd/vigil's database.max_conns default
	deliveryApp        = "vigil-bench-delivery"
	deliveryFrom       = "+15005550006"
	deliveryWait       = 5 * time.Minute // longest wait for the fake to accept what was committed
	deliveryWaitsShown = 4               // wait states listed per step
)

// deliveryWorkers are the postgres.QueueOptions.Workers tried; 64 is the
// default, and what cmd/vigil runs unless delivery.queue.workers says
// otherwise.
var deliveryWorkers = []int{10, 32, 64}

// BenchmarkDelivery measures SMS deliveries from a committed challenge to
// the fake Twilio's acceptance, through flows.Service, the PostgreSQL
// store's River queue and the real Twilio adapter, for each of
// deliveryWorkers. Each takes about a minute, so it runs only with
// VIGIL_BENCH_DELIVERY=1 (`make bench-delivery`); `make bench` and
// `make test` skip it. docs/benchmarks.md records its figures.
func BenchmarkDelivery(b *testing.B) {
	if os.Getenv("VIGIL_BENCH_DELIVERY") != "1" {
		b.Skip("minutes long: run with VIGIL_BENCH_DELIVERY=1 (make bench-delivery)")
	}
	ctx := context.Background()
	keys, err := vigil.NewKeyring("benchmark-secret-benchmark-secret-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	meter := pgMeter(ctx, b, deliveryApp)
	results := make([]*deliveryResult, 0, len(deliveryWorkers))
	for _, w := range deliveryWorkers {
		results = append(results, runDelivery(ctx, b, keys, meter, w))
	}
	// b.Log would keep only the first lines of a benchmark's output.
	fmt.Print(deliveryTable(results))

	best := results[0]
	for _, r := range results {
		if r.drain > best.drain {
			best = r
		}
		b.ReportMetric(r.drain, fmt.Sprintf("w%d-drain-deliveries/s", r.workers))
		b.ReportMetric(r.mixed, fmt.Sprintf("w%d-mixed-deliveries/s", r.workers))
		b.ReportMetric(ms(deliveryQuantile(r.lats, 0.99)), fmt.Sprintf("w%d-p99-ms", r.workers))
	}
	b.ReportMetric(best.drain, "peak-deliveries/s")
	b.ReportMetric(float64(best.workers), "peak-workers")
}

// deliveryResult is what one Workers value gave.
type deliveryResult struct {
	workers int
	// Committing the backlog with the queue stopped: Starts per second.
	commit float64
	// Draining it: deliveries per second from the fake's first acceptance
	// to its last, and from the queue's start to the last.
	drain, drainCold float64
	drainCPU         cpuSpent
	drainTook        time.Duration // over which drainCPU was read
	drainWaits       string        // what the backends waited for meanwhile
	// Committing and delivering at once: deliveries per second from the
	// first Start to the last acceptance, and the Starts' own rate.
	mixed, mixedCommit float64
	mixedWaits         string
	// The fixed-rate step: commit-to-acceptance latencies (sorted), Start's
	// own latencies from each due time (sorted), Starts that failed, and
	// the step's CPU.
	lats, startLats []time.Duration
	failed          int
	stepCPU         cpuSpent
	stepTook        time.Duration
}

// deliveryRig is one Workers value's world: a fresh schema, a store, the
// service with the Twilio adapter in its SMS chain, and a fake Twilio.
type deliveryRig struct {
	dsn   string
	store *postgres.Store
	svc   *flows.Service
	fake  *twiliotest.Server
	queue vigil.Queue
	next  int // index of the next identity and phone number

	stopQueue func()
}

func newDeliveryRig(ctx context.Context, b *testing.B, keys *vigil.Keyring, workers int) *deliveryRig {
	b.Helper()
	// pgtest bounds its own statements, and drops the schema after ctx's
	// user is gone.
	r := &deliveryRig{dsn: deliveryDSN(b), fake: twiliotest.Start(b), stopQueue: func() {}} //nolint:contextcheck // see above
	var err error
	r.store, err = postgres.Open(ctx, r.dsn, postgres.Options{MaxConns: deliveryMaxConns, Logger: jsonDiscard()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.stopQueue(); r.store.Close() })
	if err := r.store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	// As cmd/vigil builds the twilio provider (no status callbacks).
	sender, err := twilio.New(twilio.Config{
		Credentials: twilio.Credentials{AccountSID: r.fake.AccountSID, AuthToken: r.fake.AuthToken},
		From:        deliveryFrom,
		BaseURL:     r.fake.URL(),
		Timeout:     10 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg := flows.Defaults()
	cfg.EnableSMS = true
	// Thousands of numbers under one prefix, none of whose codes is ever
	// entered: the fraud guards would rightly stop them.
	cfg.SMS.PrefixPerHour = 0
	cfg.SMS.Conversion.Threshold = 0
	r.svc, err = flows.New(cfg, flows.Deps{Store: r.store, Keys: keys, Logger: jsonDiscard(),
		Chains: map[vigil.Channel][]flows.Provider{vigil.ChannelSMS: {{Name: twilio.ProviderSMS, Sender: sender}}}})
	if err != nil {
		b.Fatal(err)
	}
	r.queue = r.store.Queue(postgres.QueueOptions{Workers: workers})
	return r
}

// deliveryDSN is a fresh pgtest schema with PostgreSQL's default
// synchronous_commit=on rather than pgtest's "off": a committed challenge
// is a durable one, as in production.
func deliveryDSN(b *testing.B) string {
	b.Helper()
	u, err := url.Parse(pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "on")
	q.Set("application_name", deliveryApp)
	u.RawQuery = q.Encode()
	return u.String()
}

// startQueue runs the store's queue as cmd/vigil does, until stopQueue,
// and returns when it started.
func (r *deliveryRig) startQueue(ctx context.Context, b *testing.B) time.Time {
	b.Helper()
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- r.queue.Run(qctx, vigil.Workers{Deliver: r.svc.Deliver, Job: r.svc.RunJob}) }()
	var once sync.Once
	r.stopQueue = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.Errorf("queue: %v", err)
			}
		})
	}
	return began
}

func deliveryNumber(i int) string { return fmt.Sprintf("+49151%08d", i) }

// start commits the challenge of index i: a new identity verifying a new
// mobile number, from a client IP of its own.
func (r *deliveryRig) start(ctx context.Context, i int) error {
	_, err := r.svc.Start(ctx, flows.StartRequest{IdentityID: identityID(i), Address: deliveryNumber(i),
		Channel: vigil.ChannelSMS, ClientIP: clientIP(i), Actor: "user"})
	if err != nil {
		return fmt.Errorf("start %d: %w", i, err)
	}
	return nil
}

// commitAll commits n challenges from deliveryClients callers as fast as
// they go and returns the Starts per second.
func (r *deliveryRig) commitAll(ctx context.Context, b *testing.B, n int) float64 {
	b.Helper()
	first := r.next
	r.next += n
	var next atomic.Int64
	errs := make(chan error, deliveryClients)
	began := time.Now()
	var wg sync.WaitGroup
	for range deliveryClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := r.start(ctx, first+i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(began).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return rate
}

// accepted waits until the fake has accepted total messages in all and
// returns them.
func (r *deliveryRig) accepted(ctx context.Context, b *testing.B, total int) []twiliotest.Message {
	b.Helper()
	ctx, cancel := context.WithTimeout(ctx, deliveryWait)
	defer cancel()
	ms, err := r.fake.WaitForMessages(ctx, total)
	if err != nil {
		b.Fatalf("%v (%d accepted)", err, len(r.fake.Messages()))
	}
	return ms
}

// span is the earliest and the latest acceptance among ms.
func span(ms []twiliotest.Message) (first, last time.Time) {
	first, last = ms[0].Created, ms[0].Created
	for _, m := range ms[1:] {
		if m.Created.Before(first) {
			first = m.Created
		}
		if m.Created.After(last) {
			last = m.Created
		}
	}
	return first, last
}

func runDelivery(ctx context.Context, b *testing.B, keys *vigil.Keyring, meter cpuMeter, workers int) *deliveryResult {
	b.Helper()
	r := newDeliveryRig(ctx, b, keys, workers)
	res := &deliveryResult{workers: workers}

	// 1. Drain: commit a backlog with the queue stopped, then start it.
	res.commit = r.commitAll(ctx, b, deliveryBacklog)
	cpu0 := meter.sample()
	waits := sampleWaits(ctx, b)
	began := r.startQueue(ctx, b)
	drained := r.accepted(ctx, b, deliveryBacklog)
	res.drainCPU = meter.sample().sub(cpu0, 0)
	res.drainTook = time.Since(began)
	res.drainWaits = waits.finish(deliveryWaitsShown)
	first, last := span(drained)
	res.drain = float64(len(drained)-1) / last.Sub(first).Seconds()
	res.drainCold = float64(len(drained)) / last.Sub(began).Seconds()

	// 2. The fixed-rate step, the queue running and idle.
	r.fixedRate(ctx, b, meter, res)

	// 3. Mixed: commit as fast as possible while the queue delivers.
	before := len(r.fake.Messages())
	waits = sampleWaits(ctx, b)
	mixBegan := time.Now()
	res.mixedCommit = r.commitAll(ctx, b, deliveryBacklog)
	ms := r.accepted(ctx, b, before+deliveryBacklog)
	res.mixedWaits = waits.finish(deliveryWaitsShown)
	_, last = span(ms[before:])
	res.mixed = float64(deliveryBacklog) / last.Sub(mixBegan).Seconds()

	r.stopQueue()
	r.check(ctx, b)
	return res
}

// fixedRate starts challenges open-loop at deliveryRate per second: Start
// i is due at i/deliveryRate whether or not earlier ones returned. Each
// measured one's latency runs from the moment its Start returned (the
// commit) to the fake's acceptance of its message.
func (r *deliveryRig) fixedRate(ctx context.Context, b *testing.B, meter cpuMeter, res *deliveryResult) {
	b.Helper()
	warm := int(deliveryWarmup.Seconds() * deliveryRate)
	n := warm + int(deliveryStep.Seconds()*deliveryRate)
	first := r.next
	r.next += n
	before := len(r.fake.Messages())
	committed := make([]time.Time, n) // zero: the Start failed
	startLats := make([]time.Duration, 0, n-warm)
	var mu sync.Mutex
	var nFailed atomic.Int64
	var wg sync.WaitGroup
	var cpu0 cpuSample
	var measured time.Time
	began := time.Now()
	for i := range n {
		due := began.Add(time.Duration(i) * time.Second / deliveryRate)
		pause(time.Until(due))
		if i == warm {
			cpu0, measured = meter.sample(), time.Now()
		}
		wg.Go(func() {
			if err := r.start(ctx, first+i); err != nil {
				if nFailed.Add(1) == 1 {
					b.Errorf("fixed rate: %v", err)
				}
				return
			}
			now := time.Now()
			committed[i] = now
			if i >= warm {
				mu.Lock()
				startLats = append(startLats, now.Sub(due))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ms := r.accepted(ctx, b, before+n-int(nFailed.Load()))
	res.stepCPU, res.stepTook = meter.sample().sub(cpu0, 0), time.Since(measured)

	at := make(map[string]time.Time, n)
	for _, m := range ms[before:] {
		at[m.To] = m.Created
	}
	lats := make([]time.Duration, 0, n-warm)
	for i := warm; i < n; i++ {
		if committed[i].IsZero() {
			continue
		}
		got, ok := at[deliveryNumber(first+i)]
		if !ok {
			b.Errorf("fixed rate: no message to %s", deliveryNumber(first+i))
			continue
		}
		// The fake stamps wall-clock time (UTC strips the monotonic
		// reading); Sub then compares wall clocks, on one machine.
		lats = append(lats, got.Sub(committed[i]))
	}
	slices.Sort(lats)
	slices.Sort(startLats)
	res.lats, res.startLats, res.failed = lats, startLats, int(nFailed.Load())
}

// check confirms that every committed challenge was delivered once: one
// message per number at the fake, every message row sent.
func (r *deliveryRig) check(ctx context.Context, b *testing.B) {
	b.Helper()
	ms := r.fake.Messages()
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if seen[m.To] {
			b.Errorf("%s was sent twice", m.To)
		}
		seen[m.To] = true
	}
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT status, count(*) FROM messages GROUP BY status ORDER BY status`)
	if err != nil {
		b.Fatal(err)
	}
	var bad []string
	var sent int
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			b.Fatal(err)
		}
		if status == string(vigil.MessageSent) {
			sent = n
		} else {
			bad = append(bad, fmt.Sprintf("%d %s", n, status))
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(bad) > 0 || sent != len(ms) || len(ms) != r.next {
		b.Errorf("%d challenges, %d accepted by the fake, %d messages sent; others: %s", r.next, len(ms), sent, strings.Join(bad, ", "))
	}
}

// deliveryQuantile is the q quantile of sorted durations.
func deliveryQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*q))]
}

// perDelivery is CPU time per delivery: this process / PostgreSQL.
func perDelivery(c cpuSpent, n int) string {
	if n == 0 || c.server == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", (c.server / time.Duration(n)).Microseconds(), (c.pg / time.Duration(n)).Microseconds())
}

func deliveryTable(rs []*deliveryResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "SMS delivery on PostgreSQL (synchronous_commit=on, pool of %d), River queue, Twilio adapter to a fake Twilio on loopback\n", deliveryMaxConns)
	fmt.Fprintf(&sb, "\npeak: %d challenges committed by %d callers with the queue stopped, then drained; mixed: %d more committed while the queue runs\n", deliveryBacklog, deliveryClients, deliveryBacklog)
	fmt.Fprintf(&sb, "CPU µs per delivery: this process (Vigil, River, fake Twilio) / PostgreSQL; others' cores: the rest of the machine\n")
	fmt.Fprintf(&sb, "%7s %9s %10s %12s %14s %9s %16s %13s\n", "workers", "commit/s", "drained/s", "incl. start", "CPU µs", "mixed/s", "commits/s mixed", "others' cores")
	for _, r := range rs {
		fmt.Fprintf(&sb, "%7d %9.0f %10.0f %12.0f %14s %9.0f %16.0f %13.2f\n", r.workers, r.commit, r.drain, r.drainCold,
			perDelivery(r.drainCPU, deliveryBacklog), r.mixed, r.mixedCommit, r.drainCPU.other.Seconds()/r.drainTook.Seconds())
	}
	fmt.Fprintf(&sb, "\nPostgreSQL backends of the benchmark, mean number in each state (sampled every %v)\n", waitEvery)
	for _, r := range rs {
		fmt.Fprintf(&sb, "%7d drain: %s\n", r.workers, r.drainWaits)
		fmt.Fprintf(&sb, "%7s mixed: %s\n", "", r.mixedWaits)
	}
	fmt.Fprintf(&sb, "\nopen loop at %d Starts/s, %v after %v warm-up; latency from Start's return (commit) to the fake's acceptance;\nCPU µs per challenge (Start and delivery), as above; Start p99 from each Start's due time\n", deliveryRate, deliveryStep, deliveryWarmup)
	fmt.Fprintf(&sb, "%7s %8s %6s %9s %9s %9s %9s %9s %14s %15s %13s\n", "workers", "measured", "failed", "p50", "p90", "p99", "max", "over 1 s", "CPU µs", "Start p99 (due)", "others' cores")
	for _, r := range rs {
		fmt.Fprintf(&sb, "%7d %8d %6d %9s %9s %9s %9s %9d %14s %15s %13.2f\n", r.workers, len(r.lats), r.failed,
			fmtMS(deliveryQuantile(r.lats, 0.50)), fmtMS(deliveryQuantile(r.lats, 0.90)), fmtMS(deliveryQuantile(r.lats, 0.99)),
			fmtMS(deliveryQuantile(r.lats, 1)), overSecond(r.lats), perDelivery(r.stepCPU, len(r.lats)), fmtMS(deliveryQuantile(r.startLats, 0.99)), r.stepCPU.other.Seconds()/r.stepTook.Seconds())
	}
	return sb.String()
}

// overSecond counts the sorted latencies above one second.
func overSecond(sorted []time.Duration) int {
	i, _ := slices.BinarySearch(sorted, time.Second+1)
	return len(sorted) - i
}
