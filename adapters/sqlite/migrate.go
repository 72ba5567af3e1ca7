package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/vigil-auth/vigil"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrations returns the embedded migrations in version order. A badly
// named or duplicated file is a programming error, caught by the tests.
func migrations() ([]migration, error) {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		m := migrationName.FindStringSubmatch(path.Base(f))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", f)
		}
		v, _ := strconv.Atoi(m[1])
		body, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: m[2], sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migration %04d: two files", out[i].version)
		}
	}
	return out, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS vigil_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// Migrate applies the pending migrations, each in its own transaction
// together with its vigil_migrations row, so a failed one leaves nothing
// behind and the next run starts again from it. Running it again is a
// no-op.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: create vigil_migrations: %w", err)
	}
	for _, m := range all {
		err := s.inTx(ctx, func(t *tx) error {
			// Checked inside the transaction: with the write lock held, two
			// processes migrating one file at once cannot both apply it.
			var one int
			err := t.q.QueryRowContext(ctx, `SELECT 1 FROM vigil_migrations WHERE version = ?`, m.version).Scan(&one)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := t.q.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = t.q.ExecContext(ctx, `INSERT INTO vigil_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, ts(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %04d_%s: %w", m.version, m.name, err)
		}
		s.log.DebugContext(ctx, "migration checked", "version", m.version, "name", m.name)
	}
	return nil
}

// MigrationStatus lists every embedded migration with when it was applied
// (nil while pending), then any applied version this binary does not know,
// which means the database was migrated by a newer Vigil.
func (s *Store) MigrationStatus(ctx context.Context) ([]vigil.Migration, error) {
	all, err := migrations()
	if err != nil {
		return nil, err
	}
	applied := map[int]vigil.Migration{}
	var exists int
	err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'vigil_migrations'`).Scan(&exists)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if exists > 0 {
		rows, err := s.r.QueryContext(ctx, `SELECT version, name, applied_at FROM vigil_migrations ORDER BY version`)
		if err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m  vigil.Migration
				at int64
			)
			if err := rows.Scan(&m.Version, &m.Name, &at); err != nil {
				return nil, fmt.Errorf("migration status: %w", err)
			}
			t := fromTS(at)
			m.AppliedAt = &t
			applied[m.Version] = m
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
	}
	out := make([]vigil.Migration, 0, len(all))
	for _, m := range all {
		st := vigil.Migration{Version: m.version, Name: m.name}
		if a, ok := applied[m.version]; ok {
			st.AppliedAt = a.AppliedAt
			delete(applied, m.version)
		}
		out = append(out, st)
	}
	var unknown []vigil.Migration
	for _, a := range applied {
		unknown = append(unknown, a)
	}
	slices.SortFunc(unknown, func(a, b vigil.Migration) int { return a.Version - b.Version })
	return append(out, unknown...), nil
}
