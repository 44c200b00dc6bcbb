-- Schema for scheduled pushes (internal/schedule).
--
-- schedules: a recurring push. cron (5 fields or a descriptor such as
-- @daily) is read in timezone (IANA name). spec is the rest as JSON:
-- audience, channel, template, data templates, jump, data source, city
-- mapping and variables. next_due_at is the cursor of the periodic tick:
-- the next due time not handled yet (computed from "now" on create, on
-- resume and when cron or timezone change). A due time older than
-- misfire_grace_seconds when the tick sees it is recorded as a missed run
-- instead of being sent.
--
-- schedule_runs: one row per due time (kind cron) or per "run now" (kind
-- manual). UNIQUE (schedule_id, due_at) is the exactly-once guard: the
-- tick inserts the row and its River job in one transaction, and a second
-- tick (another instance, a restart) finds the row and inserts nothing.
-- status: queued → running → sending → done | failed, or missed.
--
-- schedule_run_recipients: the plan of a run, written in one transaction
-- before anything is sent: one row per recipient with the data rendered
-- for them (data, kept as exact text: rows with the same text are sent as
-- one message), pending → accepted (message_id of the push message) or
-- skipped with a reason (no_city, not_bound, source: …, data.…: …). The
-- delivery status of accepted rows is read from push_recipients.
--
-- follower_attributes: the business's own variables of a follower (city,
-- location, birthday …), string values, read by schedules as .Attr and
-- .City. Kept apart from followers: they may be set before the follower's
-- row exists (an import from a CRM) and survive syncs and unsubscribes.
--
-- SQLite version; postgres/00006_schedules.sql is the same schema.

-- +goose Up
CREATE TABLE schedules (
    id                    INTEGER  PRIMARY KEY AUTOINCREMENT,
    name                  TEXT     NOT NULL,
    account               TEXT     NOT NULL,
    cron                  TEXT     NOT NULL,
    timezone              TEXT     NOT NULL,
    spec                  TEXT     NOT NULL CHECK (json_valid(spec)),
    enabled               BOOLEAN  NOT NULL DEFAULT TRUE,
    misfire_grace_seconds BIGINT   NOT NULL DEFAULT 3600,
    next_due_at           DATETIME,
    created_at            DATETIME NOT NULL,
    updated_at            DATETIME NOT NULL
);
CREATE INDEX schedules_due ON schedules (enabled, next_due_at);
CREATE INDEX schedules_account ON schedules (account, id);

CREATE TABLE schedule_runs (
    id           INTEGER  PRIMARY KEY AUTOINCREMENT,
    schedule_id  BIGINT   NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    due_at       DATETIME NOT NULL,
    kind         TEXT     NOT NULL,                  -- cron | manual
    status       TEXT     NOT NULL,                  -- queued | running | sending | done | failed | missed
    reason       TEXT     NOT NULL DEFAULT '',
    recipients   INTEGER  NOT NULL DEFAULT 0,
    source_calls INTEGER  NOT NULL DEFAULT 0,        -- HTTP requests made to the data source, retries included
    created_at   DATETIME NOT NULL,
    started_at   DATETIME,
    finished_at  DATETIME,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, id);

CREATE TABLE schedule_run_recipients (
    id         INTEGER  PRIMARY KEY AUTOINCREMENT,
    run_id     BIGINT   NOT NULL REFERENCES schedule_runs (id) ON DELETE CASCADE,
    to_kind    TEXT     NOT NULL,                    -- openid | external_id
    to_value   TEXT     NOT NULL,
    openid     TEXT     NOT NULL DEFAULT '',
    data       TEXT     NOT NULL DEFAULT '{}',
    status     TEXT     NOT NULL,                    -- pending | accepted | skipped
    reason     TEXT     NOT NULL DEFAULT '',
    message_id TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX schedule_run_recipients_run ON schedule_run_recipients (run_id, status, id);

CREATE TABLE follower_attributes (
    account    TEXT     NOT NULL,
    openid     TEXT     NOT NULL,
    attributes TEXT     NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (account, openid)
);

-- +goose Down
DROP TABLE follower_attributes;
DROP TABLE schedule_run_recipients;
DROP TABLE schedule_runs;
DROP TABLE schedules;
