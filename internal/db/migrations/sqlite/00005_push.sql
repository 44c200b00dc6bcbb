-- Schema for sending: the template registry and aliases, send requests
-- and their recipients (one row per person, the unit of delivery),
-- delivery receipts, and subscription-message grants.
--
-- push_messages: one row per POST /api/v1/messages. payload is what the
-- worker sends (template id, data after alias mapping and validation,
-- jump); fallback_payload the template message used for recipients
-- without a subscription grant when the alias has a fallback. response is
-- the exact 202 body, replayed for a repeated Idempotency-Key of the same
-- API key (api_key_id 0: the CLI).
--
-- push_recipients: status queued → sent (msgid) → delivered | blocked |
-- failed, or skipped at once with a reason. client_msg_id is derived from
-- (message_id, seq), so a retried job never sends twice within WeChat's
-- 10-minute window.
--
-- push_receipts: every TEMPLATESENDJOBFINISH / subscribe_msg_sent_event,
-- kept so a receipt that arrives before the worker recorded the msgid is
-- applied when it does.
--
-- push_grants: one row per accepted one-time subscription (a long-term
-- grant is never spent). available → reserved (by a queued send) → used;
-- released back to available when the send fails for another reason;
-- revoked when the user turns the template off.
--
-- api_audit: who called which /api/v1 route, when, and the answer's status.
--
-- SQLite version; postgres/00005_push.sql is the same schema.

-- +goose Up
CREATE TABLE push_templates (
    account     TEXT     NOT NULL,
    template_id TEXT     NOT NULL,
    kind        TEXT     NOT NULL CHECK (kind IN ('template', 'subscribe')),
    title       TEXT     NOT NULL DEFAULT '',
    content     TEXT     NOT NULL DEFAULT '',
    example     TEXT     NOT NULL DEFAULT '',
    keywords    TEXT     NOT NULL DEFAULT '[]' CHECK (json_valid(keywords)), -- [{"key","type","label"}]
    source      TEXT     NOT NULL DEFAULT 'sync',   -- sync | manual
    synced_at   DATETIME,
    removed_at  DATETIME,                           -- no longer listed by WeChat
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    PRIMARY KEY (account, template_id)
);

CREATE TABLE push_aliases (
    account     TEXT     NOT NULL,
    alias       TEXT     NOT NULL,
    template_id TEXT     NOT NULL,
    fields      TEXT     NOT NULL DEFAULT '{}' CHECK (json_valid(fields)),   -- request field → keyword
    defaults    TEXT     NOT NULL DEFAULT '{}' CHECK (json_valid(defaults)), -- keyword → value
    truncate    BOOLEAN  NOT NULL DEFAULT FALSE,
    url         TEXT     NOT NULL DEFAULT '',
    miniprogram TEXT     NOT NULL DEFAULT '{}' CHECK (json_valid(miniprogram)),
    page        TEXT     NOT NULL DEFAULT '',
    fallback    TEXT     NOT NULL DEFAULT '',        -- alias used when a subscription grant is missing
    description TEXT     NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL,
    PRIMARY KEY (account, alias)
);

CREATE TABLE push_messages (
    id               TEXT     PRIMARY KEY,
    account          TEXT     NOT NULL,
    channel          TEXT     NOT NULL,
    template         TEXT     NOT NULL DEFAULT '',  -- alias or template id as requested
    payload          TEXT     NOT NULL CHECK (json_valid(payload)),
    fallback_payload TEXT     CHECK (fallback_payload IS NULL OR json_valid(fallback_payload)),
    idempotency_key  TEXT,
    request_hash     TEXT     NOT NULL DEFAULT '',
    api_key_id       BIGINT   NOT NULL DEFAULT 0,
    response         TEXT     NOT NULL DEFAULT '',
    recipients       INTEGER  NOT NULL DEFAULT 0,
    created_at       DATETIME NOT NULL
);
CREATE UNIQUE INDEX push_messages_idempotency ON push_messages (api_key_id, idempotency_key);
CREATE INDEX push_messages_account_created ON push_messages (account, created_at);
CREATE INDEX push_messages_created ON push_messages (created_at);

CREATE TABLE push_recipients (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    message_id TEXT     NOT NULL REFERENCES push_messages (id) ON DELETE CASCADE,
    seq        INTEGER  NOT NULL,
    account    TEXT     NOT NULL,
    to_kind    TEXT     NOT NULL,                    -- openid | unionid | external_id
    to_value   TEXT     NOT NULL,
    openid     TEXT     NOT NULL DEFAULT '',
    channel    TEXT     NOT NULL,
    fallback   BOOLEAN  NOT NULL DEFAULT FALSE,      -- sent with the fallback payload
    status     TEXT     NOT NULL,                    -- queued | sent | delivered | blocked | failed | skipped
    reason     TEXT     NOT NULL DEFAULT '',
    errcode    INTEGER,
    errmsg     TEXT     NOT NULL DEFAULT '',
    msgid      BIGINT,
    grant_id   BIGINT,
    attempts   INTEGER  NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL,
    sent_at    DATETIME,
    done_at    DATETIME,
    updated_at DATETIME NOT NULL,
    UNIQUE (message_id, seq)
);
CREATE INDEX push_recipients_account_msgid ON push_recipients (account, msgid);
CREATE INDEX push_recipients_message_status ON push_recipients (message_id, status);

CREATE TABLE push_receipts (
    account     TEXT     NOT NULL,
    msgid       BIGINT   NOT NULL,
    openid      TEXT     NOT NULL DEFAULT '',
    status      TEXT     NOT NULL,                   -- delivered | blocked | failed
    detail      TEXT     NOT NULL DEFAULT '',        -- WeChat's Status / ErrorStatus
    errcode     INTEGER,
    received_at DATETIME NOT NULL,
    PRIMARY KEY (account, msgid)
);

CREATE TABLE push_grants (
    id           INTEGER  PRIMARY KEY AUTOINCREMENT,
    account      TEXT     NOT NULL,
    openid       TEXT     NOT NULL,
    template_id  TEXT     NOT NULL,
    long_term    BOOLEAN  NOT NULL DEFAULT FALSE,
    status       TEXT     NOT NULL CHECK (status IN ('available', 'reserved', 'used', 'revoked')),
    source       TEXT     NOT NULL,                  -- event | api
    confirmed    BOOLEAN  NOT NULL DEFAULT FALSE,    -- reported by both the event and the API
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL
);
CREATE INDEX push_grants_lookup ON push_grants (account, openid, template_id, status);

-- api_audit: every /api/v1 call, with the API key that made it (key_id 0
-- and key_prefix '' when no valid key was given).
CREATE TABLE api_audit (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    at          DATETIME NOT NULL,
    key_id      BIGINT   NOT NULL DEFAULT 0,
    key_prefix  TEXT     NOT NULL DEFAULT '',
    method      TEXT     NOT NULL,
    path        TEXT     NOT NULL,
    status      INTEGER  NOT NULL,
    duration_ms INTEGER  NOT NULL DEFAULT 0,
    remote      TEXT     NOT NULL DEFAULT '',
    request_id  TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX api_audit_at ON api_audit (at);
CREATE INDEX api_audit_key_at ON api_audit (key_id, at);

-- +goose Down
DROP TABLE api_audit;
DROP TABLE push_grants;
DROP TABLE push_receipts;
DROP TABLE push_recipients;
DROP TABLE push_messages;
DROP TABLE push_aliases;
DROP TABLE push_templates;
