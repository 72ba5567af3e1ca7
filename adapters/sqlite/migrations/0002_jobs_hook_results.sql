-- Background jobs other than deliveries (Tx.InsertJob), and the answers
-- given to Kratos web hook executions.

-- A jobs row is the job itself, so it commits and rolls back with the
-- transaction that inserted it, as a message's delivery job does. The
-- Queue claims rows as it claims messages (run_at passed, no live lease)
-- and deletes a row once its job finished; lease_until and queue_errors
-- mean what they mean on messages.
CREATE TABLE jobs (
    id           TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      BLOB,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    queue_errors INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX jobs_due ON jobs (run_at);

-- One row per hook trigger id. PutHookResult sweeps rows older than a day
-- now and then.
CREATE TABLE hook_results (
    trigger_id TEXT    NOT NULL PRIMARY KEY,
    hook       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    body       BLOB,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX hook_results_by_created ON hook_results (created_at);
