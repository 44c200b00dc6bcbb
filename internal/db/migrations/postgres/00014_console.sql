-- The admin console's own records.
--
-- admin_audit: one row for every change made in the console (who, what,
-- on which object, from where). Reads are not recorded.
--
-- admin_login_failures: failed sign-ins, counted per client IP and per
-- username over a sliding window to throttle password guessing on every
-- instance at once. Rows older than the window are deleted as new ones
-- arrive.
--
-- PostgreSQL version; sqlite/00014_console.sql is the same schema.

-- +goose Up
CREATE TABLE admin_audit (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    username   TEXT     NOT NULL,
    action     TEXT     NOT NULL,
    target     TEXT     NOT NULL DEFAULT '',
    detail     TEXT     NOT NULL DEFAULT '',
    client_ip  TEXT     NOT NULL DEFAULT ''
);
CREATE INDEX admin_audit_at ON admin_audit (at);

CREATE TABLE admin_login_failures (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    client_ip TEXT     NOT NULL,
    username  TEXT     NOT NULL
);
CREATE INDEX admin_login_failures_ip ON admin_login_failures (client_ip, at);
CREATE INDEX admin_login_failures_user ON admin_login_failures (username, at);

-- +goose Down
DROP TABLE admin_login_failures;
DROP TABLE admin_audit;
