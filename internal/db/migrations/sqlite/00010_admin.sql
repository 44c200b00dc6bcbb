-- Admin console users and their sign-ins.
--
-- admin_users: people who may use /admin/. password_hash is an argon2id
-- hash in the PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
--
-- admin_sessions: one row per signed-in browser, shared by every
-- instance. Only the SHA-256 of the session cookie is stored; csrf_token
-- is the token the session's forms carry.
--
-- admin_login_tokens: one-time sign-in links (wxgate demo prints one).
-- Only the SHA-256 of the token is stored; used_at marks it spent.
--
-- SQLite version; postgres/00010_admin.sql is the same schema.

-- +goose Up
CREATE TABLE admin_users (
    id            INTEGER  PRIMARY KEY AUTOINCREMENT,
    username      TEXT     NOT NULL UNIQUE,
    password_hash TEXT     NOT NULL,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

CREATE TABLE admin_sessions (
    token_hash   TEXT     PRIMARY KEY,
    user_id      INTEGER  NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    csrf_token   TEXT     NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);

CREATE TABLE admin_login_tokens (
    token_hash TEXT     PRIMARY KEY,
    user_id    INTEGER  NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    used_at    DATETIME
);

-- +goose Down
DROP TABLE admin_login_tokens;
DROP TABLE admin_sessions;
DROP TABLE admin_users;
