-- Send limits shared by every instance (internal/push).
--
-- push_rate_buckets: one token bucket per account, used on PostgreSQL so
-- that the per-account send rate holds across all instances. Each send
-- takes a token with one atomic INSERT … ON CONFLICT DO UPDATE … RETURNING
-- that refills the bucket from the time elapsed (the database's clock) and
-- may leave it negative: the caller then waits for its turn. SQLite runs one
-- instance per file and keeps the limiter in the process; the table exists
-- there too so both dialects have the same schema.
--
-- push_quota_snoozes: WeChat's daily quota of an API is used up (45009) for
-- an account and channel until `until` (the next 00:00 Beijing time); every
-- instance's sends on that channel wait for it instead of calling WeChat.

-- +goose Up
CREATE TABLE push_rate_buckets (
    account     TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE push_quota_snoozes (
    account    TEXT NOT NULL,
    channel    TEXT NOT NULL,
    until      TIMESTAMPTZ NOT NULL,
    errmsg     TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, channel)
);

-- +goose Down
DROP TABLE push_quota_snoozes;
DROP TABLE push_rate_buckets;
