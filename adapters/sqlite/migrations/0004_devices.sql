-- Trusted devices: the devices an identity trusts, the one-time links an
-- admin makes to enroll one with WebAuthn, the server side of WebAuthn
-- ceremonies and the credentials devices registered. Tokens are stored
-- only as SHA-256. Nothing here references addresses or verifications, so
-- deleting those is unaffected; and a verification now records the Kratos
-- login flow it was started or reused for.

CREATE TABLE devices (
    id              TEXT    NOT NULL PRIMARY KEY,
    identity_id     TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    kind            TEXT    NOT NULL,
    -- NULL until a device enrolled with WebAuthn first proves itself.
    token_hash      BLOB,
    prev_token_hash BLOB,
    user_agent      TEXT    NOT NULL DEFAULT '',
    ip              TEXT    NOT NULL DEFAULT '',
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    trusted_until   INTEGER NOT NULL,
    rotated_at      INTEGER,
    revoked_at      INTEGER,
    revoked_reason  TEXT    NOT NULL DEFAULT ''
) STRICT;

-- FindDeviceByToken, by the current token or the one it replaced. Not
-- unique: the tokens are 256-bit random, and a replaced token must stay
-- findable, to be recognised when it is presented again.
CREATE INDEX devices_by_token ON devices (token_hash);
CREATE INDEX devices_by_prev_token ON devices (prev_token_hash);
CREATE INDEX devices_by_identity ON devices (identity_id, created_at);

-- device_id is '' until the enrollment is used: no foreign key.
CREATE TABLE device_enrollments (
    id          TEXT    NOT NULL PRIMARY KEY,
    identity_id TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL UNIQUE,
    name        TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT    NOT NULL DEFAULT ''
) STRICT;

-- enrollment_id is '' for an assertion: no foreign key. Rows are
-- short-lived: InsertCeremony sweeps the ones long expired, by expires_at.
CREATE TABLE webauthn_ceremonies (
    id            TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    enrollment_id TEXT    NOT NULL DEFAULT '',
    session       BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
) STRICT;
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies (expires_at);

CREATE TABLE webauthn_credentials (
    id            TEXT    NOT NULL PRIMARY KEY,
    device_id     TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    identity_id   TEXT    NOT NULL,
    credential_id BLOB    NOT NULL UNIQUE,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    data          BLOB,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
) STRICT;

CREATE INDEX webauthn_credentials_by_identity ON webauthn_credentials (identity_id, created_at);
CREATE INDEX webauthn_credentials_by_device ON webauthn_credentials (device_id);

ALTER TABLE verifications ADD COLUMN flow_id TEXT NOT NULL DEFAULT '';

-- FindPassedForFlow. Only rows of a login flow: address verifications
-- (flow_id '') are most rows and never looked up by flow.
CREATE INDEX verifications_by_flow ON verifications (identity_id, flow_id, verified_at) WHERE flow_id <> '';
