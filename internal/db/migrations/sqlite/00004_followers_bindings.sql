-- Schema for followers sync, persons across apps, bindings and webhooks.
--
-- followers.listed_at: when a full sync last saw the openid in user/get;
-- the sync's final sweep marks subscribed followers it did not see as
-- unsubscribed.
--
-- follower_syncs: one row per account, the full sync in progress or the
-- last one. page_cursor is the next_openid that fetches the page being
-- worked on ('' = the first page): a rerun after a crash fetches that page
-- again and skips the followers already saved by this run (listed_at >=
-- started_at). The lease keeps two syncs of one account from running at
-- once, across processes.
--
-- miniprogram_users: openids of mini programs, recorded at login
-- (jscode2session). A person is the set of openids, one per app, that
-- share a unionid (followers.unionid, miniprogram_users.unionid); without
-- a unionid an openid stands alone ("not linked"). The session_key is not
-- stored.
--
-- bindings: a business's external id bound to a person, identified by the
-- openid of the app where the binding happened (plus the unionid when it
-- was known then). Active while ended_at is NULL; a replaced or deleted
-- binding keeps its row (history). exclusive marks bindings made in the
-- default one-to-one mode: the partial unique indexes then allow one
-- active exclusive binding per external id and per openid.
--
-- bind_tokens: the one-time tokens carried by binding QR codes
-- (scene_str = scene). poll_hash is the SHA-256 of the token a page uses
-- to poll the code's state without an API key.
--
-- webhooks, webhook_deliveries: outgoing event endpoints and every
-- delivery of every event to them, with its attempts (an outbox: the
-- delivery row is written in the transaction of the change it reports).
--
-- SQLite version; postgres/00004_followers_bindings.sql is the same schema.

-- +goose Up
ALTER TABLE followers ADD COLUMN listed_at DATETIME;
-- Persons are looked up by unionid across accounts: (unionid, account)
-- serves that and the per-account lookups of followers_account_unionid,
-- which it replaces (one random-order index less to write per follower).
DROP INDEX followers_account_unionid;
CREATE INDEX followers_unionid ON followers (unionid, account);

CREATE TABLE follower_syncs (
    account       TEXT     PRIMARY KEY,
    run           BIGINT   NOT NULL,                 -- grows with every new full sync
    status        TEXT     NOT NULL,                 -- running | interrupted | failed | completed
    started_at    DATETIME NOT NULL,
    finished_at   DATETIME,
    page_cursor   TEXT     NOT NULL DEFAULT '',
    pages         INTEGER  NOT NULL DEFAULT 0,       -- pages completed
    total         BIGINT   NOT NULL DEFAULT 0,       -- user/get's total
    listed        BIGINT   NOT NULL DEFAULT 0,       -- openids of the completed pages
    profiled      BIGINT   NOT NULL DEFAULT 0,       -- profiles saved by this run
    unsubscribed  BIGINT   NOT NULL DEFAULT 0,       -- marked unsubscribed by the final sweep
    list_calls    BIGINT   NOT NULL DEFAULT 0,       -- user/get calls of this run, resumes included
    batch_calls   BIGINT   NOT NULL DEFAULT 0,       -- user/info/batchget calls of this run
    resumes       INTEGER  NOT NULL DEFAULT 0,
    lease_holder  TEXT     NOT NULL DEFAULT '',
    lease_until   DATETIME,
    last_error    TEXT     NOT NULL DEFAULT '',
    updated_at    DATETIME NOT NULL
);

CREATE TABLE miniprogram_users (
    account        TEXT     NOT NULL,
    openid         TEXT     NOT NULL,
    unionid        TEXT,                             -- NULL without an Open Platform binding
    first_login_at DATETIME NOT NULL,
    last_login_at  DATETIME NOT NULL,
    logins         BIGINT   NOT NULL DEFAULT 1,
    PRIMARY KEY (account, openid)
);
CREATE INDEX miniprogram_users_unionid ON miniprogram_users (unionid);

CREATE TABLE bindings (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    external_id TEXT     NOT NULL,
    account     TEXT     NOT NULL,
    openid      TEXT     NOT NULL,
    unionid     TEXT,
    source      TEXT     NOT NULL,                   -- qrcode | miniprogram
    exclusive   BOOLEAN  NOT NULL,
    created_at  DATETIME NOT NULL,
    ended_at    DATETIME,
    end_reason  TEXT     NOT NULL DEFAULT '',        -- replaced | deleted
    replaced_by BIGINT
);
CREATE UNIQUE INDEX bindings_active ON bindings (external_id, account, openid) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX bindings_exclusive_external_id ON bindings (external_id) WHERE ended_at IS NULL AND exclusive;
CREATE UNIQUE INDEX bindings_exclusive_openid ON bindings (account, openid) WHERE ended_at IS NULL AND exclusive;
CREATE INDEX bindings_account_openid ON bindings (account, openid);
CREATE INDEX bindings_unionid ON bindings (unionid);

CREATE TABLE bind_tokens (
    id               INTEGER  PRIMARY KEY AUTOINCREMENT,
    account          TEXT     NOT NULL,
    external_id      TEXT     NOT NULL,
    scene            TEXT     NOT NULL UNIQUE,
    ticket           TEXT     NOT NULL UNIQUE,
    qr_url           TEXT     NOT NULL,
    poll_hash        TEXT     NOT NULL,
    expires_at       DATETIME NOT NULL,
    created_at       DATETIME NOT NULL,
    used_at          DATETIME,
    used_by          TEXT     NOT NULL DEFAULT '',   -- the openid that spent the token
    binding_id       BIGINT,
    rejection        TEXT     NOT NULL DEFAULT '',   -- why the last scan bound nothing: expired | used
    rejected_at      DATETIME,
    rejected_openid  TEXT     NOT NULL DEFAULT ''
);

CREATE TABLE webhooks (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    url         TEXT     NOT NULL,
    secret      TEXT     NOT NULL,
    events      TEXT     NOT NULL DEFAULT '*',       -- comma-separated event types, * = every event
    account     TEXT     NOT NULL DEFAULT '',        -- '' = every account
    description TEXT     NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER  PRIMARY KEY AUTOINCREMENT,
    webhook_id      BIGINT   NOT NULL,
    event_id        TEXT     NOT NULL,               -- the same for every endpoint of one event
    event_type      TEXT     NOT NULL,
    account         TEXT     NOT NULL DEFAULT '',
    payload         TEXT     NOT NULL,               -- the exact body posted and signed
    status          TEXT     NOT NULL DEFAULT 'pending', -- pending | delivered | failed | cancelled
    attempts        INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    lease_until     DATETIME,
    last_status     INTEGER  NOT NULL DEFAULT 0,     -- HTTP status of the last attempt, 0 when none came back
    last_error      TEXT     NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    delivered_at    DATETIME
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE bind_tokens;
DROP TABLE bindings;
DROP TABLE miniprogram_users;
DROP TABLE follower_syncs;
DROP INDEX followers_unionid;
CREATE INDEX followers_account_unionid ON followers (account, unionid);
ALTER TABLE followers DROP COLUMN listed_at;
