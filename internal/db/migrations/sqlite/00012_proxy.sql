-- The WeChat API proxy (/wechat/{account}/…, internal/proxy).
--
-- proxy_audit: one row per proxied call. Never the access_token, never
-- the query string (it carries tokens and openids): the path only.
--
-- proxy_allow_paths: an optional allow-list per API key. A key with no
-- rows may call every path; a key with rows only paths starting with one
-- of them (e.g. cgi-bin/user/).
--
-- SQLite version; postgres/00012_proxy.sql is the same schema.

-- +goose Up
CREATE TABLE proxy_audit (
    id          INTEGER  PRIMARY KEY AUTOINCREMENT,
    key_id      INTEGER  NOT NULL,
    account     TEXT     NOT NULL,
    method      TEXT     NOT NULL,
    path        TEXT     NOT NULL,
    http_status INTEGER  NOT NULL,
    errcode     INTEGER,
    retried     BOOLEAN  NOT NULL DEFAULT FALSE,
    duration_ms INTEGER  NOT NULL,
    created_at  DATETIME NOT NULL
);
CREATE INDEX proxy_audit_key_time ON proxy_audit (key_id, created_at);

CREATE TABLE proxy_allow_paths (
    key_id      INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    path_prefix TEXT    NOT NULL,
    PRIMARY KEY (key_id, path_prefix)
);

-- +goose Down
DROP TABLE proxy_allow_paths;
DROP TABLE proxy_audit;
