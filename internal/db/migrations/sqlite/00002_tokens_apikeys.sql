-- Schema for the token broker and API keys.
--
-- tokens: one row per app and token mode (stable_token and the classic
-- token are separate tokens at WeChat). The row holds the current
-- access_token, its expiry and a version that grows with every new token,
-- plus the refresh lease: the instance named in lease_holder is the only
-- one calling WeChat until lease_expires_at. force_* count force_refresh
-- calls against WeChat's 20-a-day budget, shared by every instance;
-- last_error lets an instance that lost the lease report the winner's
-- failure instead of calling WeChat itself.
--
-- api_keys: keys for /api/v1. Only the SHA-256 of a key is stored; prefix
-- is its first characters, to recognise it in lists.
--
-- SQLite version; postgres/00002_tokens_apikeys.sql is the same schema.

-- +goose Up
CREATE TABLE tokens (
    app_id           TEXT     NOT NULL,
    mode             TEXT     NOT NULL CHECK (mode IN ('stable', 'classic')),
    account          TEXT     NOT NULL DEFAULT '',
    access_token     TEXT     NOT NULL DEFAULT '',   -- '' until the first fetch
    expires_at       DATETIME,
    fetched_at       DATETIME,
    version          BIGINT   NOT NULL DEFAULT 0,
    lease_holder     TEXT     NOT NULL DEFAULT '',
    lease_expires_at DATETIME,
    force_day        TEXT     NOT NULL DEFAULT '',   -- Beijing date of force_count, YYYY-MM-DD
    force_count      INTEGER  NOT NULL DEFAULT 0,
    last_force_at    DATETIME,
    last_error       TEXT     NOT NULL DEFAULT '',   -- why the last refresh failed (no secrets), '' after a success
    last_errcode     INTEGER  NOT NULL DEFAULT 0,
    last_error_at    DATETIME,
    updated_at       DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    PRIMARY KEY (app_id, mode)
);

CREATE TABLE api_keys (
    id           INTEGER  PRIMARY KEY AUTOINCREMENT,
    name         TEXT     NOT NULL,
    prefix       TEXT     NOT NULL,                  -- e.g. wxg_AbC12345
    hash         TEXT     NOT NULL UNIQUE,           -- hex SHA-256 of the whole key
    scopes       TEXT     NOT NULL,                  -- comma-separated: send,read,token,admin
    created_at   DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    last_used_at DATETIME,
    revoked_at   DATETIME
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE tokens;
