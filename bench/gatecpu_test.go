package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil/internal/pgtest"
)

// Where BenchmarkGate's CPU goes. The two cores are shared by the servers
// under test, the load generator, PostgreSQL and whatever else runs on the
// machine; each step reports the CPU time of each per answered request.

// cpuSpent is what a step cost: the servers' process, the load
// generator's, PostgreSQL's and the rest of the machine's; and, inside the
// servers' process, the garbage collector's share, its cycles, and how long
// goroutines waited to run once runnable (the runtime's scheduling latency,
// 99th percentile).
type cpuSpent struct {
	server, loadgen, pg, other time.Duration
	steal                      time.Duration // the hypervisor gave the machine's cores to someone else
	gc                         time.Duration
	gcCycles                   uint64
	schedP99                   time.Duration
}

// cpuSample is CPU time used so far by this process, by PostgreSQL's
// processes and by the whole machine, with this process's runtime metrics.
type cpuSample struct {
	server, all, steal time.Duration
	pgByPID            map[int]time.Duration
	rt                 []metrics.Sample
	ok                 bool
}

func (s cpuSample) sub(before cpuSample, loadgen time.Duration) cpuSpent {
	if !s.ok || !before.ok {
		return cpuSpent{loadgen: loadgen}
	}
	var pg time.Duration
	for pid, t := range s.pgByPID {
		pg += t - before.pgByPID[pid] // a backend opened during the step started at 0
	}
	server := s.server - before.server
	c := cpuSpent{server: server, loadgen: loadgen, pg: pg, other: max(0, s.all-before.all-server-loadgen-pg), steal: s.steal - before.steal}
	if s.rt[0].Value.Kind() == metrics.KindFloat64 {
		c.gc = time.Duration((s.rt[0].Value.Float64() - before.rt[0].Value.Float64()) * float64(time.Second))
	}
	if s.rt[1].Value.Kind() == metrics.KindUint64 {
		c.gcCycles = s.rt[1].Value.Uint64() - before.rt[1].Value.Uint64()
	}
	if s.rt[2].Value.Kind() == metrics.KindFloat64Histogram {
		c.schedP99 = histQuantile(before.rt[2].Value.Float64Histogram(), s.rt[2].Value.Float64Histogram(), 0.99)
	}
	return c
}

// runtimeMetrics are read with every sample, in this order.
var runtimeMetrics = []string{"/cpu/classes/gc/total:cpu-seconds", "/gc/cycles/total:gc-cycles", "/sched/latencies:seconds"}

// histQuantile is the q quantile of what a cumulative histogram counted
// between two readings, as the upper bound of its bucket.
func histQuantile(before, after *metrics.Float64Histogram, q float64) time.Duration {
	if len(before.Counts) != len(after.Counts) {
		return 0
	}
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	want := uint64(math.Ceil(float64(total) * q))
	var seen uint64
	for i := range after.Counts {
		seen += after.Counts[i] - before.Counts[i]
		if seen >= want && total > 0 {
			upper := after.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = after.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

// cpuMeter samples CPU time; pgPIDs lists the PostgreSQL processes that
// work for the benchmark.
type cpuMeter struct {
	pgPIDs func() ([]int, error)
}

// pgMeter counts as PostgreSQL's the benchmark's backends (those whose
// application_name is app) and the server's background processes (WAL
// writer, checkpointer, autovacuum...), listed from pg_stat_activity on a
// connection of its own.
func pgMeter(ctx context.Context, b *testing.B, app string) cpuMeter {
	b.Helper()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close(ctx) })
	return cpuMeter{pgPIDs: func() ([]int, error) {
		rows, err := conn.Query(ctx, `
			SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 OR backend_type <> 'client backend'`, app)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[int])
	}}
}

// sample reads getrusage for this process and /proc for PostgreSQL and the
// machine (Linux; elsewhere the CPU columns stay empty).
func (m cpuMeter) sample() cpuSample {
	all, steal, err := machineBusy()
	if err != nil {
		return cpuSample{}
	}
	s := cpuSample{server: selfCPU(), all: all, steal: steal, pgByPID: map[int]time.Duration{}, ok: true}
	s.rt = make([]metrics.Sample, len(runtimeMetrics))
	for i, name := range runtimeMetrics {
		s.rt[i].Name = name
	}
	metrics.Read(s.rt)
	pids, err := m.pgPIDs()
	if err != nil {
		return cpuSample{}
	}
	for _, pid := range pids {
		if t, err := processCPU(pid); err == nil {
			s.pgByPID[pid] = t
		}
	}
	return s
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// machineBusy is the machine's non-idle CPU time, and the time its
// virtual cores were ready but the hypervisor ran something else, from
// /proc/stat's first line: user nice system idle iowait irq softirq steal.
func machineBusy() (busy, steal time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat")
	}
	var ticks [8]int64
	for i, v := range f[1:9] {
		if ticks[i], err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	busyTicks := ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
	return time.Duration(busyTicks) * time.Second / clockTicks, time.Duration(ticks[7]) * time.Second / clockTicks, nil
}

// processCPU is a process's user and system time from /proc/<pid>/stat
// (fields 14 and 15, counted after the parenthesized command name).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/pid/stat")
	}
	var t int64
	for _, v := range f[11:13] { // utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		t += n
	}
	return time.Duration(t) * time.Second / clockTicks, nil
}
