-- Delivery reports and the SMS fraud watch: where an SMS went (country and
-- number prefix, never the number), the language it was written in, which
-- provider each attempt tried, and a lookup of a message by the id its
-- provider gave it (status callbacks name it so).
ALTER TABLE messages ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN locale TEXT NOT NULL DEFAULT '';

ALTER TABLE message_attempts ADD COLUMN provider TEXT NOT NULL DEFAULT '';

CREATE INDEX messages_by_provider ON messages (provider, provider_id) WHERE provider_id <> '';
