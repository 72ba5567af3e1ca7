// Package sqlite is Vigil's embedded store: vigil.Store, vigil.Migrator and
// a durable vigil.Queue over one SQLite file, through the pure-Go driver
// modernc.org/sqlite (no cgo). It is what `vigil serve` uses when no DSN is
// given (sqlite://vigil.db), so Vigil runs on a bare machine. It passes the
// same conformance suite as the PostgreSQL store (internal/storetest).
//
// # Connections
//
// The file is opened in WAL mode with foreign keys on, through two pools:
//
//   - one writer connection (SetMaxOpenConns(1)) for InTx and every write
//     method. SQLite allows one writer at a time anyway; queueing writers
//     in database/sql's pool, where they wait in order and respect their
//     context, is simpler and fairer than letting several connections race
//     for the file lock. Transactions begin IMMEDIATE (_txlock=immediate),
//     taking the write lock at BEGIN where busy_timeout can wait for it:
//     a deferred transaction that reads and then writes would instead fail
//     with SQLITE_BUSY when another process wrote in between. So concurrent
//     transactions queue up; none fail as busy.
//   - a small read-only pool (query_only) for the Store's own read methods
//     outside a transaction. Under WAL a reader sees the last commit and
//     never waits for the writer.
//
// The one writer is why fn in InTx must use only the Tx it is given: a
// call to the Store's write methods from inside fn would wait for the
// connection fn itself holds. The flows only ever use the Tx, so there is
// no self-deadlock. Since every transaction holds the database-wide write
// lock from BEGIN, GetVerificationForUpdate is a plain read, and
// AppendAudit's read of the chain head cannot race another append.
//
// # Data
//
// Migrations are embedded numbered SQL files (migrations/0001_init.sql,
// ...) recorded in vigil_migrations. Times are INTEGER unix microseconds,
// which round-trip vigil.SystemClock's values exactly and compare in SQL;
// they come back in UTC. Byte fields are BLOBs, AuditEvent.Data is JSON
// text. Tables are STRICT. A new file is created readable by its owner
// only (SQLite gives the -wal and -shm files the same mode): it holds
// sealed personal data and the blind indexes that find it.
//
// # Delivery and jobs
//
// There is no separate table of delivery jobs: the messages row is also
// its delivery job, so a verification, its message and the job always
// commit or roll back together. The job is three columns the Queue alone
// writes: job_run_at (when it is due; NULL once finished), lease_until
// and queue_errors. InsertMessage sets job_run_at to m.NextAttemptAt. A Queue
// claims due jobs (job_run_at passed, no live lease) by setting
// lease_until in one UPDATE ... RETURNING, and runs deliver for each on a
// small worker pool. deliver records the outcome on the message through
// the Store (status, attempts, next_attempt_at); the queue then only
// settles the job: a zero retryAt finishes it, a non-zero one makes it due
// again then, and an error makes it due again after an exponential
// backoff. So deliver and the queue never overwrite each other's columns.
//
// The jobs of InsertJob are rows of the jobs table, claimed, leased and
// settled the same way (run_at, lease_until, queue_errors), except that a
// finished job's row is deleted: it was nothing but the job. The queue
// works the two tables as two lanes, each with Workers of its own, so slow
// jobs cannot hold up deliveries; a Run without a JobFunc (or
// DeliverFunc) does not claim from that table at all.
//
// A process killed mid-delivery leaves a lease that expires, and the job
// runs again after restart: delivery is at least once, which is why
// Outbound.ID is stable across retries. A commit that inserted a message
// or a job wakes the queues of this process at once; a short poll finds
// scheduled retries, expired leases and jobs committed by other processes.
//
// # Imports
//
// The root package, the driver, github.com/google/uuid and the standard
// library. Never another adapter, flows, hooks, api or cmd.
package sqlite
