package postgres_test

import (
	"context"
	"flag"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/postgres"
	"github.com/vigil-auth/vigil/internal/pgtest"
	"github.com/vigil-auth/vigil/internal/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// TestMain runs more tests at once than -parallel's default (GOMAXPROCS)
// unless -parallel is given: they wait on PostgreSQL, not on the CPU, and
// each sets up a schema of its own. testConns keeps the sum of their pools
// well below max_connections (100 by default).
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(testParallel)) // the flag exists: testing defines it
	}
	m.Run()
}

const (
	testParallel = 6
	testConns    = 6
)

// openStore opens a store on dsn, closed in t.Cleanup.
func openStore(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: testConns, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// freshStore opens a migrated store on a schema of its own.
func freshStore(t *testing.T) *postgres.Store {
	t.Helper()
	s := openStore(t, pgtest.DSN(t))
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) vigil.Store {
		t.Helper()
		return freshStore(t)
	})
}

func TestQueue(t *testing.T) {
	t.Parallel()
	storetest.RunQueue(t, func(t *testing.T) (vigil.Store, vigil.Queue) {
		t.Helper()
		s := freshStore(t)
		return s, s.Queue(postgres.QueueOptions{PollInterval: 100 * time.Millisecond, StopTimeout: 10 * time.Second})
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("Status", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := openStore(t, pgtest.DSN(t))

		before, err := s.MigrationStatus(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, before)
		for i, m := range before {
			require.Equal(t, i+1, m.Version, "versions are 1..n without gaps")
			require.NotEmpty(t, m.Name)
			require.Nil(t, m.AppliedAt, "pending before Migrate")
		}

		require.NoError(t, s.Migrate(ctx))
		after, err := s.MigrationStatus(ctx)
		require.NoError(t, err)
		require.Len(t, after, len(before))
		for _, m := range after {
			require.NotNil(t, m.AppliedAt, "migration %d applied", m.Version)
		}

		// Again: nothing to do, nothing changes.
		require.NoError(t, s.Migrate(ctx))
		again, err := s.MigrationStatus(ctx)
		require.NoError(t, err)
		require.Equal(t, after, again)
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		// Replicas starting at once: each migrates, none fails.
		dsn := pgtest.DSN(t)
		const n = 4
		stores := make([]*postgres.Store, n)
		for i := range stores {
			stores[i] = openStore(t, dsn)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		st, err := stores[0].MigrationStatus(t.Context())
		require.NoError(t, err)
		for _, m := range st {
			require.NotNil(t, m.AppliedAt)
		}
	})

	t.Run("SchemaFromSearchPath", func(t *testing.T) {
		t.Parallel()
		s := freshStore(t)
		require.Regexp(t, `^test_[0-9a-f]+$`, s.Schema())
	})
}

func TestOpenBadSchema(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, pgtest.URL()+"&search_path=no_such_schema_here", postgres.Options{Logger: quiet})
	require.ErrorContains(t, err, "search_path")
}

// Hook results older than a day are swept by a later Put, now and then
// (one Put in 64).
func TestHookResultSweep(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := freshStore(t)
	now := vigil.SystemClock{}.Now()
	old := &vigil.HookResult{TriggerID: "old", Hook: "registration_after", Status: 200, CreatedAt: now.Add(-25 * time.Hour)}
	require.NoError(t, s.PutHookResult(ctx, old))
	require.NoError(t, s.InTx(ctx, func(tx vigil.Tx) error {
		for i := range 100 {
			r := &vigil.HookResult{TriggerID: "new-" + strconv.Itoa(i), Hook: "registration_after", Status: 200, CreatedAt: now}
			if err := tx.PutHookResult(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := s.GetHookResult(ctx, old.TriggerID)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	_, err = s.GetHookResult(ctx, "new-0")
	require.NoError(t, err)
}
