package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/vigil-auth/vigil"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded file, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrations reads the embedded files in version order. A malformed name
// or a repeated version is a build mistake, caught by the tests.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		if len(out) > 0 && out[len(out)-1].version == v {
			return nil, fmt.Errorf("migration version %d appears twice", v)
		}
		out = append(out, migration{version: v, name: m[2], sql: string(body)})
	}
	return out, nil
}

// migrateLockKey namespaces the advisory lock; the schema's hash is the
// second key, so that only migrations of the same schema wait.
const migrateLockKey = 0x5_6167 // "Vg"

// Migrate applies every pending migration, Vigil's and then River's,
// under an advisory lock, so that replicas starting together apply each
// change once. Vigil's run in one transaction: a failure leaves none of
// them applied. River's run one transaction each, as River requires (a
// later one uses an enum value an earlier one adds).
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	rm, err := rivermigrate.New(riverpgxv5.New(s.pool), &rivermigrate.Config{Schema: s.schema, Logger: s.log})
	if err != nil {
		return fmt.Errorf("postgres: river migrator: %w", err)
	}

	// A session lock, on a connection held for the whole run, since
	// River's migrations use connections of their own.
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer c.Release()
	// Waiting for another replica's migration is bounded by ctx, not by
	// statement_timeout.
	if _, err := c.Exec(ctx, `SELECT set_config('statement_timeout', '0', false), pg_advisory_lock($1, hashtext(current_schema()))`, migrateLockKey); err != nil {
		return fmt.Errorf("postgres: take migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := c.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrateLockKey); err != nil {
			// Closing the session is what frees the lock then.
			_ = c.Conn().Close(uctx)
		}
		// Back to the pool's default for this connection.
		_, _ = c.Exec(uctx, `RESET statement_timeout`)
	}()

	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			CREATE TABLE IF NOT EXISTS vigil_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
			return fmt.Errorf("create vigil_migrations: %w", err)
		}
		applied, err := appliedMigrations(ctx, tx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if _, ok := applied[m.version]; ok {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO vigil_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("record %04d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("postgres: migrate river: %w", err)
	}
	return nil
}

type appliedMigration struct {
	name string
	at   time.Time
}

func appliedMigrations(ctx context.Context, db dbtx) (map[int]appliedMigration, error) {
	rows, err := db.Query(ctx, `SELECT version, name, applied_at FROM vigil_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read vigil_migrations: %w", err)
	}
	out := map[int]appliedMigration{}
	var v int
	var a appliedMigration
	_, err = pgx.ForEachRow(rows, []any{&v, &a.name, &a.at}, func() error {
		out[v] = appliedMigration{name: a.name, at: a.at.UTC()}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read vigil_migrations: %w", err)
	}
	return out, nil
}

// MigrationStatus lists Vigil's migrations, embedded and applied, by
// version; AppliedAt is nil for pending ones. River's own migrations are
// applied by Migrate alongside and not listed.
func (s *Store) MigrationStatus(ctx context.Context) ([]vigil.Migration, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('vigil_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	applied := map[int]appliedMigration{}
	if exists {
		if applied, err = appliedMigrations(ctx, s.pool); err != nil {
			return nil, fmt.Errorf("postgres: migration status: %w", err)
		}
	}
	var out []vigil.Migration
	for _, m := range ms {
		st := vigil.Migration{Version: m.version, Name: m.name}
		if a, ok := applied[m.version]; ok {
			st.AppliedAt = &a.at
			delete(applied, m.version)
		}
		out = append(out, st)
	}
	// Applied by a newer Vigil than this one.
	for v, a := range applied {
		out = append(out, vigil.Migration{Version: v, Name: a.name, AppliedAt: &a.at})
	}
	slices.SortFunc(out, func(a, b vigil.Migration) int { return a.Version - b.Version })
	return out, nil
}
