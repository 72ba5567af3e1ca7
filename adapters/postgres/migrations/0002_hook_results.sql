-- The answer given to each Kratos web hook execution, by its trigger id,
-- so that Kratos' retries of one execution get the same answer and cause
-- nothing twice. Rows older than a day are swept by PutHookResult now and
-- then. (Tx.InsertJob needs no table here: its jobs are River's.)

CREATE TABLE hook_results (
    trigger_id text PRIMARY KEY,
    hook       text NOT NULL,
    status     integer NOT NULL,
    body       bytea,
    created_at timestamptz NOT NULL
);

-- The sweep of rows older than a day.
CREATE INDEX hook_results_created_idx ON hook_results (created_at);
