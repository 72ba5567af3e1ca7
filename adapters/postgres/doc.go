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
//		// InsertVerification, InsertMessage, InsertJob, AppendAudit
//		// (last: it holds the audit lock until commit)
//	})
//	...
//	w := vigil.Workers{Deliver: svc.Deliver, Job: svc.RunJob}
//	err = s.Queue(postgres.QueueOptions{}).Run(ctx, w) // until ctx ends
//
// # Durable delivery
//
// InsertMessage writes the message row and its River job with InsertTx on
// the same transaction, so both commit or neither does: a process dying
// between the two cannot lose or orphan a delivery. InsertJob is the same
// without a row of ours: the vigil.Job (id, kind, JSON payload) is the
// River job's arguments, of a kind and River queue of its own, so slow
// jobs cannot hold up deliveries. Store.Queue returns the worker side; a
// job that was running when its process died is rescued and retried after
// QueueOptions.RescueAfter. A Run without a JobFunc (or DeliverFunc) does
// not work that River queue, so those jobs wait for one that does.
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
// CountAttempt, Consume, RotateDeviceToken, UseEnrollment and TakeCeremony
// are conditional UPDATEs, AddFailure and Hit are upserts. AppendAudit serializes on a row lock of the one-row audit_head
// table. Inserts use ON CONFLICT DO NOTHING and report vigil.ErrConflict,
// so a conflict does not abort the caller's transaction.
//
// # Imports
//
// The root package, pgx, River and github.com/google/uuid. Never another
// adapter, flows, hooks or
// api: the core depends on this package's interfaces, not the other way
// round.
package postgres
