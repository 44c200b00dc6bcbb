-- retries counts WeChat's repeated deliveries of a logged push (its retries
-- after 5 s, or a second instance receiving the same push), each answered
-- from the log; the console's dashboard reports them as duplicates refused.

-- +goose Up
ALTER TABLE inbound_messages ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE inbound_messages DROP COLUMN retries;
