package bench

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil/internal/pgtest"
)

// What the benchmark's PostgreSQL backends wait for while a backlog
// drains, sampled from pg_stat_activity: a lock queue shows up as backends
// in Lock waits on the statement that takes the lock.

const waitEvery = 10 * time.Millisecond

// waitSampler counts, per sample, the benchmark's backends that are in a
// transaction or running a statement, by what they wait for.
type waitSampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	counts  map[string]int
	err     error
}

// sampleWaits starts sampling on a connection of its own, under another
// application_name, so that its queries are not counted as the
// benchmark's.
func sampleWaits(ctx context.Context, b *testing.B) *waitSampler {
	b.Helper()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		b.Fatal(err)
	}
	s := &waitSampler{stop: make(chan struct{}), done: make(chan struct{}), counts: map[string]int{}}
	go func() {
		defer close(s.done)
		defer conn.Close(ctx)
		tick := time.NewTicker(waitEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			if s.err = s.sample(ctx, conn); s.err != nil {
				return
			}
		}
	}()
	return s
}

func (s *waitSampler) sample(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `
		SELECT state, coalesce(wait_event_type || ':' || wait_event, 'running'), left(query, 300)
		FROM pg_stat_activity
		WHERE application_name = $1 AND state IN ('active', 'idle in transaction')`, deliveryApp)
	if err != nil {
		return err
	}
	for rows.Next() {
		var state, wait, query string
		if err := rows.Scan(&state, &wait, &query); err != nil {
			return err
		}
		key := wait
		switch {
		case state == "idle in transaction":
			key = "in transaction, waiting for Vigil"
		case strings.HasPrefix(wait, "Lock:") && strings.Contains(query, "FROM audit_head"):
			key = wait + " on the audit head"
		case strings.HasPrefix(wait, "Lock:"):
			key = wait
		}
		s.counts[key]++
	}
	s.samples++
	return rows.Err()
}

// finish stops sampling and returns the mean number of backends in each
// state, most first, at most n of them.
func (s *waitSampler) finish(n int) string {
	close(s.stop)
	<-s.done
	if s.err != nil {
		return "wait sampling failed: " + s.err.Error()
	}
	if s.samples == 0 {
		return "no samples"
	}
	keys := slices.SortedFunc(maps.Keys(s.counts), func(a, b string) int {
		return cmp.Or(cmp.Compare(s.counts[b], s.counts[a]), cmp.Compare(a, b))
	})
	var parts []string
	total := 0
	for _, k := range keys {
		total += s.counts[k]
	}
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%.1f %s", float64(s.counts[k])/float64(s.samples), k))
	}
	return fmt.Sprintf("%.1f busy: %s", float64(total)/float64(s.samples), strings.Join(parts, ", "))
}
