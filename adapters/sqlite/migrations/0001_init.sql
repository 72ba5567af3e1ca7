-- Vigil's schema for SQLite. It mirrors the PostgreSQL schema table for
-- table. Times are INTEGER unix microseconds (UTC): they round-trip exactly
-- at the precision vigil.SystemClock produces and compare correctly in SQL.
-- Byte fields are BLOBs. Tables are STRICT so a wrongly typed bind fails
-- loudly instead of being stored as something else.

CREATE TABLE addresses (
    id          TEXT    NOT NULL PRIMARY KEY,
    identity_id TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    index_hash  BLOB    NOT NULL,
    sealed      BLOB,
    masked      TEXT    NOT NULL DEFAULT '',
    verified_at INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (identity_id, channel, index_hash)
) STRICT;

CREATE INDEX addresses_by_index ON addresses (channel, index_hash);

CREATE TABLE verifications (
    id           TEXT    NOT NULL PRIMARY KEY,
    identity_id  TEXT    NOT NULL,
    address_id   TEXT    NOT NULL REFERENCES addresses (id) ON DELETE CASCADE,
    channel      TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    purpose      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    secret_hash  BLOB,
    generation   INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL,
    last_sent_at INTEGER,
    send_count   INTEGER NOT NULL DEFAULT 0,
    verified_at  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX verifications_open ON verifications (address_id, purpose, created_at);
CREATE INDEX verifications_by_identity ON verifications (identity_id, created_at);
CREATE INDEX verifications_by_secret ON verifications (secret_hash);

-- A messages row is also its own delivery job, so a message and its job
-- commit and roll back together. The job columns belong to the Queue alone
-- (deliver records the message's own status, attempts and next_attempt_at
-- through UpdateMessage, and the queue never writes those):
--   job_run_at    when the job is due; NULL once deliver finished it.
--   lease_until   set while a queue works the job; a dead queue's lease
--                 expires and the job is claimed again.
--   queue_errors  consecutive internal errors of deliver, for the backoff.
CREATE TABLE messages (
    id               TEXT    NOT NULL PRIMARY KEY,
    verification_id  TEXT    NOT NULL REFERENCES verifications (id) ON DELETE CASCADE,
    identity_id      TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 0,
    recipient_index  BLOB,
    recipient_sealed BLOB,
    recipient_masked TEXT    NOT NULL DEFAULT '',
    secret_sealed    BLOB,
    body_sealed      BLOB,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    provider         TEXT    NOT NULL DEFAULT '',
    provider_id      TEXT    NOT NULL DEFAULT '',
    next_attempt_at  INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    job_run_at       INTEGER,
    lease_until      INTEGER,
    queue_errors     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX messages_jobs ON messages (job_run_at) WHERE job_run_at IS NOT NULL;
CREATE INDEX messages_by_identity ON messages (identity_id, created_at);
CREATE INDEX messages_by_recipient ON messages (recipient_index, created_at);
CREATE INDEX messages_by_verification ON messages (verification_id);

CREATE TABLE message_attempts (
    message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    error       TEXT    NOT NULL DEFAULT '',
    duration_ns INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, attempt)
) STRICT;

CREATE TABLE lockouts (
    identity_id  TEXT    NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    level        INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    hard_locked  INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
) STRICT;

-- One fixed-window counter per key and window start. Hit sweeps the rows
-- whose window started before the caller's cutoff now and then.
CREATE TABLE rate_counters (
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) STRICT;

CREATE INDEX rate_counters_by_window ON rate_counters (window_start);

CREATE TABLE audit_events (
    seq             INTEGER NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    at              INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    identity_id     TEXT    NOT NULL DEFAULT '',
    verification_id TEXT    NOT NULL DEFAULT '',
    actor           TEXT    NOT NULL DEFAULT '',
    data            TEXT    NOT NULL,
    prev_hash       BLOB,
    hash            BLOB    NOT NULL
) STRICT;

CREATE INDEX audit_events_by_identity ON audit_events (identity_id, seq);

-- The chain's head: the last appended row as the writer saw it. Kept apart
-- from audit_events so that deleting the tail of the trail is detectable.
CREATE TABLE audit_head (
    one  INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
    seq  INTEGER NOT NULL,
    hash BLOB
) STRICT;

INSERT INTO audit_head (one, seq, hash) VALUES (1, 0, NULL);
