-- Delivery reports and the SMS fraud watch: where an SMS went (country and
-- number prefix, never the number), the language it was written in, which
-- provider each attempt tried, and a lookup of a message by the id its
-- provider gave it (status callbacks name it so).
ALTER TABLE messages
    ADD COLUMN country text NOT NULL DEFAULT '',
    ADD COLUMN prefix  text NOT NULL DEFAULT '',
    ADD COLUMN locale  text NOT NULL DEFAULT '';

ALTER TABLE message_attempts ADD COLUMN provider text NOT NULL DEFAULT '';

CREATE INDEX messages_provider_idx ON messages (provider, provider_id) WHERE provider_id <> '';
