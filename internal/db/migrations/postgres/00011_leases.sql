-- One lease for every "only one instance at a time" job (internal/db,
-- lease.go): the token broker's refresh of an app's token (name
-- 'token:<app_id>:<mode>') and the full follower sync of an account
-- ('follower-sync:<account>'). A row is a held lease: holder may do the
-- work until expires_at, and renews before then; a holder that crashed
-- stops renewing and anyone may take the lease once it expired. Release
-- deletes the row. Taking a lease is one INSERT … ON CONFLICT DO UPDATE …
-- WHERE expires_at <= now OR holder = me, atomic across instances.
--
-- The leases the tokens and follower_syncs rows held themselves
-- (lease_holder, lease_expires_at / lease_until) move here and the old
-- columns are dropped. A lease held
-- during the upgrade is carried over, so a running sync keeps its own.
--
-- PostgreSQL version; sqlite/00011_leases.sql is the same schema.

-- +goose Up
CREATE TABLE leases (
    name        TEXT        NOT NULL PRIMARY KEY,
    holder      TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,   -- when holder took it (renewals keep it)
    expires_at  TIMESTAMPTZ NOT NULL
);

INSERT INTO leases (name, holder, acquired_at, expires_at)
SELECT 'token:' || app_id || ':' || mode, lease_holder, updated_at, lease_expires_at
FROM tokens WHERE lease_holder <> '' AND lease_expires_at IS NOT NULL;

INSERT INTO leases (name, holder, acquired_at, expires_at)
SELECT 'follower-sync:' || account, lease_holder, updated_at, lease_until
FROM follower_syncs WHERE lease_holder <> '' AND lease_until IS NOT NULL;

ALTER TABLE tokens DROP COLUMN lease_holder, DROP COLUMN lease_expires_at;
ALTER TABLE follower_syncs DROP COLUMN lease_holder, DROP COLUMN lease_until;

-- +goose Down
ALTER TABLE tokens ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '', ADD COLUMN lease_expires_at TIMESTAMPTZ;
ALTER TABLE follower_syncs ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '', ADD COLUMN lease_until TIMESTAMPTZ;
DROP TABLE leases;
