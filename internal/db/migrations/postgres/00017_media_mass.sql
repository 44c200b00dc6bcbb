-- media_files: what wxgate uploaded to WeChat, one row per account,
-- storage (temporary / permanent), type and content hash, so the same
-- bytes are uploaded once and a temporary file named by a reply rule is
-- uploaded again before WeChat's 3 days run out (source_path says where
-- it is read from).
-- media_downloads: files a follower sent (image, voice), fetched from
-- WeChat on request and kept with the message log.
-- mass_sends: mass sends (群发) and their MASSSENDJOBFINISH receipts;
-- client_msg_id makes a repeated request return the first send.
--
-- PostgreSQL version; sqlite/00017_media_mass.sql is the same schema.

-- +goose Up
CREATE TABLE media_files (
    id          BIGSERIAL   PRIMARY KEY,
    account     TEXT        NOT NULL,
    storage     TEXT        NOT NULL,
    type        TEXT        NOT NULL,
    sha256      TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    size        BIGINT      NOT NULL,
    source_path TEXT        NOT NULL DEFAULT '',
    media_id    TEXT        NOT NULL,
    url         TEXT        NOT NULL DEFAULT '',
    uploaded_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX media_files_content ON media_files (account, storage, type, sha256);
CREATE INDEX media_files_media_id ON media_files (account, media_id);
CREATE INDEX media_files_expires ON media_files (expires_at);

CREATE TABLE media_downloads (
    account      TEXT        NOT NULL,
    media_id     TEXT        NOT NULL,
    content_type TEXT        NOT NULL,
    file_name    TEXT        NOT NULL DEFAULT '',
    size         BIGINT      NOT NULL,
    data         BYTEA       NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account, media_id)
);

CREATE TABLE mass_sends (
    id            BIGSERIAL   PRIMARY KEY,
    account       TEXT        NOT NULL,
    client_msg_id TEXT        NOT NULL,
    msg_type      TEXT        NOT NULL,
    content       TEXT        NOT NULL,
    tag_id        BIGINT,
    to_all        BOOLEAN     NOT NULL DEFAULT FALSE,
    status        TEXT        NOT NULL,
    msg_id        BIGINT      NOT NULL DEFAULT 0,
    msg_data_id   BIGINT      NOT NULL DEFAULT 0,
    wechat_status TEXT        NOT NULL DEFAULT '',
    total_count   BIGINT      NOT NULL DEFAULT 0,
    filter_count  BIGINT      NOT NULL DEFAULT 0,
    sent_count    BIGINT      NOT NULL DEFAULT 0,
    error_count   BIGINT      NOT NULL DEFAULT 0,
    error         TEXT        NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    deleted_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX mass_sends_client_msg_id ON mass_sends (account, client_msg_id);
CREATE INDEX mass_sends_msg_id ON mass_sends (account, msg_id);
CREATE INDEX mass_sends_created ON mass_sends (account, created_at);

-- +goose Down
DROP TABLE mass_sends;
DROP TABLE media_downloads;
DROP TABLE media_files;
