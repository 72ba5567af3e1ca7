// Package postgres is Vigil's production store: vigil.Store, vigil.Tx and
// vigil.Migrator on PostgreSQL through pgx/v5, with a River job queue
// (vigil.Queue) in the same database.
//
// # Use
//
//	s, err := postgres.Open(ctx, "postgres://vigil@db/vigil?search_path=vigil", postgres.Options{})
//	...
//	defer s.Close()
//	err = s.Migrate(ctx) // at start; safe with many replicas
//	...
//	err = s.InTx(ctx, func(tx vigil.Tx) error {
//		// InsertVerification, InsertMessage, AppendAudit (last: it holds
//		// the audit lock until commit)
//	})
//	...
//	err = s.Queue(postgres.QueueOptions{}).Run(ctx, svc.Deliver) // until ctx ends
//
// # Durable delivery
//
// InsertMessage writes the message row and its River job with InsertTx on
// the same transaction, so both commit or neither does: a process dying
// between the two cannot lose or orphan a delivery. Store.Queue returns
// the worker side; a job that was running when its process died is
// rescued and retried after QueueOptions.RescueAfter.
//
// # Schema
//
// Tables live in the first schema of the connection's search_path (set it
// in the DSN, e.g. ?search_path=vigil); River's tables go in the same
// schema. Migrate applies the embedded migrations/NNNN_name.sql files,
// tracked in vigil_migrations, and River's own migrations, in one
// transaction under an advisory lock, so replicas may all migrate at
// start.
//
// # Concurrency
//
// Counters that must hold across replicas are single statements:
// CountAttempt and Consume are conditional UPDATEs, AddFailure and Hit are
// upserts. AppendAudit serializes on a row lock of the one-row audit_head
// table. Inserts use ON CONFLICT DO NOTHING and report vigil.ErrConflict,
// so a conflict does not abort the caller's transaction.
//
// # Imports
//
// The root package, pgx and River. Never another adapter, flows, hooks or
// api: the core depends on this package's interfaces, not the other way
// round.
package postgres
