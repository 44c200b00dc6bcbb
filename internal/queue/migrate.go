package queue

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/wxgate/wxgate/internal/db"
)

// migrateLockID is the PostgreSQL advisory lock held while River's schema
// is migrated ("wxgate" and 1 in its bytes), distinct from goose's.
const migrateLockID int64 = 0x7778_6761_7465_0001

// Migrate brings River's tables (river_job, river_leader, river_queue …)
// to the version this build needs. It is idempotent; New calls it.
func Migrate(ctx context.Context, d *db.DB, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch d.Dialect {
	case db.SQLite:
		return migrate(ctx, d, riversqlite.New(d.DB), logger)
	case db.Postgres:
		return migrate(ctx, d, riverdatabasesql.New(d.DB), logger)
	}
	return fmt.Errorf("queue: unsupported database dialect %q", d.Dialect)
}

func migrate(ctx context.Context, d *db.DB, driver riverdriver.Driver[*sql.Tx], logger *slog.Logger) error {
	if d.Dialect == db.Postgres {
		// rivermigrate takes no lock of its own: instances starting
		// together would race to create the same tables.
		unlock, err := advisoryLock(ctx, d.DB, migrateLockID)
		if err != nil {
			return err
		}
		defer unlock()
	}
	// One line for the whole migration instead of rivermigrate's one per
	// version (and one per start when there is nothing to do).
	quiet := slog.New(warnOnly{logger.Handler()})
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quiet})
	if err != nil {
		return fmt.Errorf("queue: River migrations: %w", err)
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("queue: migrating River's tables on %s: %w", d.Dialect, err)
	}
	if n := len(res.Versions); n > 0 {
		logger.Info("queue: River's tables migrated", "from_version", res.Versions[0].Version-1, "to_version", res.Versions[n-1].Version)
	}
	return nil
}

// warnOnly passes on warnings and errors only.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h warnOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnOnly{h.Handler.WithAttrs(attrs)}
}

func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }

// advisoryLock takes a session-level advisory lock on a connection of its
// own, waiting for another holder; unlock releases it and the connection.
func advisoryLock(ctx context.Context, pool *sql.DB, id int64) (unlock func(), err error) {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: migration lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", id); err != nil {
		conn.Close()
		return nil, fmt.Errorf("queue: taking the migration lock: %w", err)
	}
	return func() {
		// Unlock even when ctx has ended; closing the connection would
		// release the lock too, but a pooled connection may live on.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", id); err != nil {
			// Closing the session is the other way to release the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}
