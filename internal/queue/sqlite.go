package queue

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wxgate/wxgate/internal/db"
)

// openRiverPool opens River's pool on the file of the main SQLite pool:
// one connection, as River's SQLite driver asks, with the main pool's
// connection options and its write gate, so that River's writes and
// wxgate's queue in one line.
func openRiverPool(ctx context.Context, d *db.DB) (*sql.DB, error) {
	pool, err := d.OpenSQLitePool(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("queue: opening River's SQLite pool: %w", err)
	}
	return pool, nil
}
