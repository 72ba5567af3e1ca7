-- Vigil's tables. Personal data is stored only sealed (bytea) and found by
-- blind index; the core does all cryptography. Times are timestamptz.

CREATE TABLE addresses (
    id          text PRIMARY KEY,
    identity_id text NOT NULL,
    channel     text NOT NULL,
    blind_index bytea NOT NULL,
    sealed      bytea NOT NULL,
    masked      text NOT NULL,
    verified_at timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- Also serves ListAddresses and FindAddress (identity_id prefix).
    CONSTRAINT addresses_identity_channel_index_key UNIQUE (identity_id, channel, blind_index)
);

-- FindAddressesByIndex: one address, any identity.
CREATE INDEX addresses_channel_index_idx ON addresses (channel, blind_index);

CREATE TABLE verifications (
    id           text PRIMARY KEY,
    identity_id  text NOT NULL,
    address_id   text NOT NULL REFERENCES addresses (id) ON DELETE CASCADE,
    channel      text NOT NULL,
    method       text NOT NULL,
    purpose      text NOT NULL,
    state        text NOT NULL,
    secret_hash  bytea,
    generation   integer NOT NULL,
    attempts     integer NOT NULL,
    max_attempts integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_sent_at timestamptz,
    send_count   integer NOT NULL,
    verified_at  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- FindVerificationBySecret (links).
CREATE INDEX verifications_secret_hash_idx ON verifications (secret_hash);
-- FindOpenVerification: newest of an address for a purpose; also the
-- foreign key's cascade.
CREATE INDEX verifications_address_purpose_idx ON verifications (address_id, purpose, created_at DESC);
-- ListVerifications.
CREATE INDEX verifications_identity_idx ON verifications (identity_id, created_at DESC);

CREATE TABLE messages (
    id               text PRIMARY KEY,
    verification_id  text NOT NULL REFERENCES verifications (id) ON DELETE CASCADE,
    identity_id      text NOT NULL,
    channel          text NOT NULL,
    generation       integer NOT NULL,
    recipient_index  bytea,
    recipient_sealed bytea,
    recipient_masked text NOT NULL,
    secret_sealed    bytea,
    body_sealed      bytea,
    status           text NOT NULL,
    attempts         integer NOT NULL,
    last_error       text NOT NULL,
    provider         text NOT NULL,
    provider_id      text NOT NULL,
    next_attempt_at  timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- ListMessages by identity, by recipient, and unfiltered; newest first.
CREATE INDEX messages_identity_idx ON messages (identity_id, created_at DESC);
CREATE INDEX messages_recipient_idx ON messages (recipient_index, created_at DESC);
CREATE INDEX messages_created_idx ON messages (created_at DESC);
-- The foreign key's cascade.
CREATE INDEX messages_verification_idx ON messages (verification_id);

-- No unique (message_id, attempt): a delivery that crashed after recording
-- its attempt records the same number again on retry, and that must not
-- wedge the job.
CREATE TABLE message_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text NOT NULL,
    error       text NOT NULL,
    duration_ns bigint NOT NULL
);

CREATE INDEX message_attempts_message_idx ON message_attempts (message_id, attempt, id);

CREATE TABLE lockouts (
    identity_id  text PRIMARY KEY,
    failures     integer NOT NULL,
    level        integer NOT NULL,
    locked_until timestamptz,
    hard_locked  boolean NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE rate_counters (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- Cleanup of windows before the cutoff.
CREATE INDEX rate_counters_window_idx ON rate_counters (window_start);

CREATE TABLE audit_events (
    seq             bigint PRIMARY KEY,
    id              text NOT NULL UNIQUE,
    at              timestamptz NOT NULL,
    type            text NOT NULL,
    identity_id     text NOT NULL,
    verification_id text NOT NULL,
    actor           text NOT NULL,
    data            jsonb NOT NULL,
    prev_hash       bytea,
    hash            bytea NOT NULL
);

-- ListAudit by identity.
CREATE INDEX audit_events_identity_idx ON audit_events (identity_id, seq);

-- The chain's head: one row, locked by every append so that concurrent
-- appends form one chain, and kept apart from the rows so that a deleted
-- tail is detected.
CREATE TABLE audit_head (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq  bigint NOT NULL,
    hash bytea
);

INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, NULL);
