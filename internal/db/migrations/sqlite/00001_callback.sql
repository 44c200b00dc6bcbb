-- Schema for the callback capability: the inbound message log (with the
-- de-duplication key and the reply given, so a retry gets the same answer),
-- followers, and auto-reply rules.
--
-- SQLite version; postgres/00001_callback.sql is the same schema. Times are
-- DATETIME columns holding "YYYY-MM-DD HH:MM:SS.fff+00:00" text in UTC, JSON
-- is TEXT checked with json_valid, booleans are BOOLEAN (stored as 0/1).

-- +goose Up
CREATE TABLE inbound_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account      TEXT     NOT NULL,
    dedup_key    TEXT     NOT NULL,                  -- MsgId, or FromUserName+CreateTime(+Event) for events
    openid       TEXT     NOT NULL DEFAULT '',
    msg_type     TEXT     NOT NULL DEFAULT '',
    event        TEXT     NOT NULL DEFAULT '',
    msg_id       BIGINT,                             -- MsgId or MsgID, when the message has one
    fields       TEXT     NOT NULL DEFAULT '{}' CHECK (json_valid(fields)),
    raw_xml      TEXT     NOT NULL DEFAULT '',
    received_at  DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    reply_status TEXT     NOT NULL DEFAULT 'pending', -- pending | replied | empty | deferred
    reply_body   TEXT     NOT NULL DEFAULT '',        -- plain reply XML, before encryption
    handled_at   DATETIME,
    UNIQUE (account, dedup_key)
);
CREATE INDEX inbound_messages_account_openid_received_at ON inbound_messages (account, openid, received_at);
CREATE INDEX inbound_messages_account_received_at ON inbound_messages (account, received_at);

CREATE TABLE followers (
    account            TEXT     NOT NULL,
    openid             TEXT     NOT NULL,
    unionid            TEXT,                         -- NULL without an Open Platform binding
    subscribed         BOOLEAN  NOT NULL,
    subscribed_at      DATETIME,
    unsubscribed_at    DATETIME,
    subscribe_scene    TEXT     NOT NULL DEFAULT '',
    qr_scene           BIGINT,
    qr_scene_str       TEXT     NOT NULL DEFAULT '',
    last_event_key     TEXT     NOT NULL DEFAULT '',
    last_ticket        TEXT     NOT NULL DEFAULT '',
    language           TEXT     NOT NULL DEFAULT '',
    remark             TEXT     NOT NULL DEFAULT '',
    tag_ids            TEXT     NOT NULL DEFAULT '[]' CHECK (json_valid(tag_ids)),
    profile_fetched_at DATETIME,
    created_at         DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    updated_at         DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    PRIMARY KEY (account, openid)
);
CREATE INDEX followers_account_unionid ON followers (account, unionid);

CREATE TABLE reply_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account    TEXT     NOT NULL,
    position   INTEGER  NOT NULL,
    match      TEXT     NOT NULL,                    -- keyword | msg_type | subscribe | click | default
    mode       TEXT     NOT NULL DEFAULT '',         -- exact | contains | regex
    pattern    TEXT     NOT NULL DEFAULT '',
    msg_type   TEXT     NOT NULL DEFAULT '',
    event_key  TEXT     NOT NULL DEFAULT '',
    reply      TEXT     NOT NULL CHECK (json_valid(reply)), -- {"type":"text","content":"…"}
    enabled    BOOLEAN  NOT NULL DEFAULT TRUE,
    source     TEXT     NOT NULL DEFAULT 'cli',      -- config | cli
    created_at DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
);
CREATE INDEX reply_rules_account_position ON reply_rules (account, position);

-- +goose Down
DROP TABLE reply_rules;
DROP TABLE followers;
DROP TABLE inbound_messages;
