package vigil

import (
	"context"
	"time"
)

// Migration is one numbered schema change and whether it is applied.
type Migration struct {
	Version   int
	Name      string
	AppliedAt *time.Time
}

// Migrator applies a store's embedded migrations.
type Migrator interface {
	Migrate(ctx context.Context) error
	MigrationStatus(ctx context.Context) ([]Migration, error)
}
