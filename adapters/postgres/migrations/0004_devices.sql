-- Trusted devices: the devices an identity trusts, the one-time links an
-- admin makes to enroll one with WebAuthn, the server side of WebAuthn
-- ceremonies and the credentials devices registered. Tokens are stored
-- only as SHA-256. Nothing here references addresses or verifications, so
-- deleting those is unaffected; and a verification now records the Kratos
-- login flow it was started or reused for.

CREATE TABLE devices (
    id              text PRIMARY KEY,
    identity_id     text NOT NULL,
    name            text NOT NULL,
    kind            text NOT NULL,
    -- NULL until a device enrolled with WebAuthn first proves itself.
    token_hash      bytea,
    prev_token_hash bytea,
    user_agent      text NOT NULL,
    ip              text NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    trusted_until   timestamptz NOT NULL,
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    revoked_reason  text NOT NULL DEFAULT ''
);

-- FindDeviceByToken, by the current token or the one it replaced. Not
-- unique: the tokens are 256-bit random, and a replaced token must stay
-- findable, to be recognised when it is presented again.
CREATE INDEX devices_token_hash_idx ON devices (token_hash);
CREATE INDEX devices_prev_token_hash_idx ON devices (prev_token_hash);
-- ListDevices.
CREATE INDEX devices_identity_idx ON devices (identity_id, created_at DESC);

-- device_id is '' until the enrollment is used: no foreign key.
CREATE TABLE device_enrollments (
    id          text PRIMARY KEY,
    identity_id text NOT NULL,
    token_hash  bytea NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    device_id   text NOT NULL DEFAULT '',
    -- Also serves FindEnrollmentByToken.
    CONSTRAINT device_enrollments_token_hash_key UNIQUE (token_hash)
);

-- enrollment_id is '' for an assertion: no foreign key. Rows are
-- short-lived: InsertCeremony sweeps the ones long expired, by expires_at.
CREATE TABLE webauthn_ceremonies (
    id            text PRIMARY KEY,
    kind          text NOT NULL,
    enrollment_id text NOT NULL DEFAULT '',
    session       bytea,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE INDEX webauthn_ceremonies_expires_idx ON webauthn_ceremonies (expires_at);

CREATE TABLE webauthn_credentials (
    id            text PRIMARY KEY,
    device_id     text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    identity_id   text NOT NULL,
    -- Also serves FindCredential.
    credential_id bytea NOT NULL,
    sign_count    bigint NOT NULL,
    data          bytea,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    CONSTRAINT webauthn_credentials_credential_id_key UNIQUE (credential_id)
);

-- ListCredentials.
CREATE INDEX webauthn_credentials_identity_idx ON webauthn_credentials (identity_id, created_at);
-- The foreign key's cascade.
CREATE INDEX webauthn_credentials_device_idx ON webauthn_credentials (device_id);

ALTER TABLE verifications ADD COLUMN flow_id text NOT NULL DEFAULT '';

-- FindPassedForFlow. Only rows of a login flow: address verifications
-- (flow_id '') are most rows and never looked up by flow.
CREATE INDEX verifications_flow_idx ON verifications (identity_id, flow_id, verified_at DESC) WHERE flow_id <> '';
