-- token_fetches: one row per call to WeChat's token endpoint by the broker
-- (ok, or the errcode/error of a failure), so that the console reports
-- the refreshes and failures of the last 24 hours and 7 days across every
-- instance. Rows older than 8 days are deleted as new ones arrive (an
-- account fetches about 12 a day).
--
-- PostgreSQL version; sqlite/00016_token_fetches.sql is the same schema.

-- +goose Up
CREATE TABLE token_fetches (
    id         BIGSERIAL   PRIMARY KEY,
    app_id     TEXT        NOT NULL,
    mode       TEXT        NOT NULL,
    account    TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    ok         BOOLEAN     NOT NULL,
    forced     BOOLEAN     NOT NULL DEFAULT FALSE,
    errcode    INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX token_fetches_account_at ON token_fetches (account, at);
CREATE INDEX token_fetches_at ON token_fetches (at);

-- +goose Down
DROP TABLE token_fetches;
