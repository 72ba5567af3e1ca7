package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGate's load generator runs in a process of its own, as Kratos
// does: its garbage collector and scheduler then do not stall the servers
// under test, and its CPU time is counted apart. The benchmark runs its own
// test binary once per step with the step's plan in loadEnv; the child
// sends the load and reports on stdout, marking where the measured part
// starts and ends so that the parent can read CPU time over exactly that
// part.

const (
	loadEnv    = "VIGIL_BENCH_GATE_LOAD"
	loadPrefix = "gate-load: "
)

// loadPlan is one step of load.
type loadPlan struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // 127.0.0.1:port; nothing else is dialed
	Path string `json:"path"`
	// Kratos adds a fresh Ory-Webhook-Trigger-Id to every request, as
	// Kratos does to every hook execution.
	Kratos bool `json:"kratos"`
	// Rate > 0: open loop at Rate requests per second, at most Clients in
	// flight. Rate 0: closed loop of Clients.
	Rate       int           `json:"rate"`
	Clients    int           `json:"clients"`
	Warmup     time.Duration `json:"warmup"` // same load, not measured
	Duration   time.Duration `json:"duration"`
	Identities int           `json:"identities"` // the first Identities of newIdentities
	// Devices sends each identity's trusted-device token as Kratos
	// forwards a browser's cookie.
	Devices bool `json:"devices"`
}

// loadReport is what the generator saw over the measured part.
type loadReport struct {
	Sent     int             `json:"sent"`
	Failed   int             `json:"failed"`
	FirstErr string          `json:"first_err"`
	Elapsed  time.Duration   `json:"elapsed"`   // first due time to last answer
	Lats     []time.Duration `json:"latencies"` // successful requests, sorted
	CPU      time.Duration   `json:"cpu"`       // the generator's own CPU time
}

// TestGateLoad is the load generator's entry point; it does nothing unless
// BenchmarkGate started it.
func TestGateLoad(t *testing.T) {
	raw := os.Getenv(loadEnv)
	if raw == "" {
		t.Skip("the load generator of BenchmarkGate; started by it")
	}
	var p loadPlan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if host, _, err := net.SplitHostPort(p.Addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("load generator targets 127.0.0.1 only, not %q", p.Addr)
	}
	g := &generator{plan: p, tmpl: newLoginTemplate(t), ids: newIdentities(p.Identities), run: rand.Uint32()}
	ctx := context.Background()
	_ = g.step(ctx, p.Warmup)
	fmt.Println(loadPrefix + "start")
	cpu0 := selfCPU()
	r := g.step(ctx, p.Duration)
	r.CPU = selfCPU() - cpu0
	fmt.Println(loadPrefix + "end")
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(loadPrefix + "report " + string(out))
}

// runLoad runs one step in a child process and returns what it saw, with
// the machine's CPU time over the measured part.
func runLoad(ctx context.Context, b *testing.B, m cpuMeter, p loadPlan) *loadResult {
	b.Helper()
	plan, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.Warmup+p.Duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGateLoad$", "-test.count=1")
	cmd.Env = append(os.Environ(), loadEnv+"="+string(plan))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var before, after cpuSample
	var rep *loadReport
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == loadPrefix+"start":
			before = m.sample()
		case line == loadPrefix+"end":
			after = m.sample()
		case len(line) > len(loadPrefix+"report ") && line[:len(loadPrefix+"report ")] == loadPrefix+"report ":
			rep = &loadReport{}
			if err := json.Unmarshal([]byte(line[len(loadPrefix+"report "):]), rep); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err != nil || rep == nil {
		b.Fatalf("load generator for %s: %v (report: %v)", p.Name, err, rep != nil)
	}
	return &loadResult{loadReport: *rep, cpu: after.sub(before, rep.CPU)}
}

// loadResult is a report with the machine's CPU time.
type loadResult struct {
	loadReport
	cpu cpuSpent
}

func (r *loadResult) rate() float64 { return float64(len(r.Lats)) / r.Elapsed.Seconds() }

func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.Lats) == 0 {
		return 0
	}
	return r.Lats[min(len(r.Lats)-1, int(float64(len(r.Lats))*q))]
}

// cpuPerRequest is the CPU time spent per answered request.
func (r *loadResult) cpuPerRequest() cpuSpent {
	n := time.Duration(len(r.Lats))
	if n == 0 {
		return cpuSpent{}
	}
	return cpuSpent{server: r.cpu.server / n, loadgen: r.cpu.loadgen / n, pg: r.cpu.pg / n, other: r.cpu.other / n,
		gc: r.cpu.gc / n, gcCycles: r.cpu.gcCycles, schedP99: r.cpu.schedP99, steal: r.cpu.steal / n}
}

// generator sends login bodies for random identities of the seeded ones.
type generator struct {
	plan  loadPlan
	tmpl  *loginTemplate
	ids   identities
	run   uint32
	calls atomic.Uint64
}

// step runs the plan's load for d.
func (g *generator) step(ctx context.Context, d time.Duration) *loadReport {
	if g.plan.Rate > 0 {
		return g.fixedRate(ctx, d)
	}
	return g.closedLoop(ctx, d)
}

// fixedRate is an open loop: request i is due at start + i/rate whether or
// not earlier ones were answered, and its latency runs from that due time,
// so time spent waiting for a free connection counts too (no coordinated
// omission). At most plan.Clients requests are in flight.
func (g *generator) fixedRate(ctx context.Context, d time.Duration) *loadReport {
	rate := g.plan.Rate
	n := int(float64(rate) * d.Seconds())
	lats := make([]time.Duration, n)
	ok := make([]bool, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now().Add(20 * time.Millisecond)
	due := func(i int) time.Time { return start.Add(time.Duration(i) * time.Second / time.Duration(rate)) }
	jobs := make(chan int, n)
	var last atomic.Int64 // latest answer, ns after start
	var wg sync.WaitGroup
	for range g.plan.Clients {
		wg.Go(func() {
			c := g.conn()
			defer c.close()
			for i := range jobs {
				if err := c.login(ctx); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				done := time.Since(start)
				lats[i], ok[i] = done-due(i).Sub(start), true
				storeMax(&last, int64(done))
			}
		})
	}
	// Release every request that is due, then sleep until the next one;
	// an oversleep releases a batch rather than shifting the schedule.
	for i := 0; i < n; {
		now := time.Now()
		for i < n && !due(i).After(now) {
			jobs <- i
			i++
		}
		if i < n {
			pause(time.Until(due(i)))
		}
	}
	close(jobs)
	wg.Wait()
	r := &loadReport{Sent: n, Failed: int(failed.Load()), Elapsed: time.Duration(last.Load())}
	r.FirstErr, _ = firstErr.Load().(string)
	for i, l := range lats {
		if ok[i] {
			r.Lats = append(r.Lats, l)
		}
	}
	slices.Sort(r.Lats)
	return r
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// closedLoop runs plan.Clients clients that each send the next request as
// soon as the previous one is answered: the server's throughput at that
// concurrency. Latency runs from send to answer.
func (g *generator) closedLoop(ctx context.Context, d time.Duration) *loadReport {
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	per := make([][]time.Duration, g.plan.Clients)
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for k := range per {
		wg.Go(func() {
			c := g.conn()
			defer c.close()
			for time.Now().Before(stop) {
				sent.Add(1)
				t0 := time.Now()
				if err := c.login(ctx); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				per[k] = append(per[k], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := &loadReport{Sent: int(sent.Load()), Failed: int(failed.Load()), Elapsed: time.Since(start)}
	r.FirstErr, _ = firstErr.Load().(string)
	for _, l := range per {
		r.Lats = append(r.Lats, l...)
	}
	slices.Sort(r.Lats)
	return r
}

// loadConn is one keep-alive HTTP/1.1 connection that writes requests by
// hand: net/http's client costs several times more CPU per request, and
// on two shared cores the generator's CPU is taken from the servers.
type loadConn struct {
	g    *generator
	c    net.Conn
	r    *bufio.Reader
	body []byte
	req  []byte
}

func (g *generator) conn() *loadConn { return &loadConn{g: g} }

func (c *loadConn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// login posts the login body of a random identity and wants a 204.
func (c *loadConn) login(ctx context.Context) error {
	g := c.g
	if c.c == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", g.plan.Addr)
		if err != nil {
			return err
		}
		c.c, c.r = conn, bufio.NewReader(conn)
	}
	n := rand.IntN(len(g.ids))
	c.body = g.tmpl.appendTo(c.body[:0], g.ids[n].String(), gateEmail(n))
	if g.plan.Devices {
		c.body = appendDeviceCookie(c.body, g.ids[n])
	}
	c.req = append(c.req[:0], "POST "+g.plan.Path+" HTTP/1.1\r\nHost: "+g.plan.Addr+
		"\r\nContent-Type: application/json\r\n"+"X-Vigil-Key: "+gateKey+"\r\n"...)
	if g.plan.Kratos {
		c.req = fmt.Appendf(c.req, "Ory-Webhook-Trigger-Id: %08x-0000-4000-8000-%012x\r\n", g.run, g.calls.Add(1))
	}
	c.req = append(c.req, "Content-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(c.body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, c.body...)
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(c.req); err != nil {
		c.close()
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.close()
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("answer %d, want 204", resp.StatusCode)
	}
	return err
}
