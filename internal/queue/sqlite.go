package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wxgate/wxgate/internal/db"
)

// riverSQLiteParams are the connection options of River's own pool. They
// are those of the main pool (see internal/db), for the same reasons:
//   - busy_timeout: River's connection and the main pool's take turns on
//     the write lock; without it the loser fails at once with SQLITE_BUSY.
//   - _txlock=immediate: River's transactions write, so they take the lock
//     at BEGIN instead of failing when a read lock cannot be upgraded.
//   - _time_format=sqlite, _timezone=UTC: River formats the times it
//     writes itself, but times it reads back (and any time.Time bound as a
//     parameter) then behave as in the main pool.
const riverSQLiteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate&_time_format=sqlite&_timezone=UTC"

// openRiverPool opens River's pool on the file of the main SQLite pool:
// one connection, as River's SQLite driver asks.
func openRiverPool(ctx context.Context, d *db.DB) (*sql.DB, error) {
	path, err := sqliteFile(ctx, d.DB)
	if err != nil {
		return nil, err
	}
	pool, err := sql.Open("sqlite", path+"?"+riverSQLiteParams)
	if err != nil {
		return nil, fmt.Errorf("queue: opening River's SQLite pool: %w", err)
	}
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(1)
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: opening River's SQLite pool on %s: %w", path, err)
	}
	return pool, nil
}

// sqliteFile returns the path of the main database file of an open SQLite
// pool.
func sqliteFile(ctx context.Context, pool *sql.DB) (string, error) {
	rows, err := pool.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", fmt.Errorf("queue: finding the SQLite database file: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq        int
			name, file string
		)
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", fmt.Errorf("queue: finding the SQLite database file: %w", err)
		}
		if name == "main" {
			if file == "" {
				return "", errors.New("queue: the SQLite database has no file (in memory?); River needs a file shared by two pools")
			}
			return file, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("queue: finding the SQLite database file: %w", err)
	}
	return "", errors.New("queue: the SQLite database has no main schema")
}
