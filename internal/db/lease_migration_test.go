package db_test

import (
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// Migration 00011 carries the leases held in the old columns of tokens and
// follower_syncs over to the leases table and drops those columns; down
// puts the columns back.
func TestLeasesMigration(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		files, err := db.Migrations(d.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		dialect := goose.DialectSQLite3
		if d.Dialect == db.Postgres {
			dialect = goose.DialectPostgres
		}
		provider, err := goose.NewProvider(dialect, d.DB, files, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := provider.DownTo(ctx, 10); err != nil {
			t.Fatalf("down to 10: %v", err)
		}
		now := db.Timestamp(time.Now())
		until := db.Timestamp(now.Add(time.Minute))
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO tokens (app_id, mode, lease_holder, lease_expires_at, updated_at) VALUES ('wxapp', 'stable', 'host-1-aa', $1, $2)`, []any{until, now}},
			{`INSERT INTO tokens (app_id, mode, updated_at) VALUES ('wxapp', 'classic', $1)`, []any{now}},
			{`INSERT INTO follower_syncs (account, run, status, started_at, lease_holder, lease_until, updated_at) VALUES ('main', 1, 'running', $2, 'host-2-bb', $1, $2)`, []any{until, now}},
			{`INSERT INTO follower_syncs (account, run, status, started_at, updated_at) VALUES ('idle', 1, 'completed', $1, $1)`, []any{now}},
		} {
			if _, err := d.ExecContext(ctx, q.sql, q.args...); err != nil {
				t.Fatalf("%s: %v", q.sql, err)
			}
		}
		if _, err := provider.Up(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		l := db.NewLeases(d, func() time.Time { return now })
		for name, holder := range map[string]string{"token:wxapp:stable": "host-1-aa", "follower-sync:main": "host-2-bb"} {
			cur, held, err := l.Get(ctx, name)
			if err != nil || !held || cur.Holder != holder || !cur.ExpiresAt.Equal(until) {
				t.Errorf("lease %s after the migration: %+v held=%v %v", name, cur, held, err)
			}
		}
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM leases`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d leases (%v), want 2", n, err)
		}
		for _, q := range []string{`SELECT lease_holder FROM tokens`, `SELECT lease_expires_at FROM tokens`,
			`SELECT lease_holder FROM follower_syncs`, `SELECT lease_until FROM follower_syncs`} {
			if _, err := d.ExecContext(ctx, q); err == nil {
				t.Errorf("%s: the column is still there", q)
			}
		}
		if _, err := provider.DownTo(ctx, 10); err != nil {
			t.Fatalf("down again: %v", err)
		}
		if _, err := d.ExecContext(ctx, `SELECT lease_holder, lease_expires_at FROM tokens`); err != nil {
			t.Errorf("down did not restore the tokens columns: %v", err)
		}
		if _, err := provider.Up(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
	})
}
