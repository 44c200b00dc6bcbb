package db

import (
	"context"
	"fmt"
)

// A shared token bucket lives in a row of push_rate_buckets (named for
// the send limits, its first user), so that a rate holds across every
// instance on a PostgreSQL database. One statement refills the bucket from
// the time elapsed (the database's clock, so the instances' clocks do not
// matter) and takes a token; the row lock serialises the takers of one
// bucket for the length of that statement only.
const takeTokenSQL = `
INSERT INTO push_rate_buckets AS b (account, tokens, refilled_at) VALUES ($1, $3::float8 - 1, clock_timestamp())
ON CONFLICT (account) DO UPDATE SET
    tokens = LEAST($3::float8, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.refilled_at)::float8 * $2::float8) - 1,
    refilled_at = clock_timestamp()
RETURNING tokens`

// TakeToken takes a token from the shared bucket name (refilled at rate
// per second up to burst) and returns the balance left. A negative balance
// is a reservation: the caller's turn comes when -balance/rate seconds
// have passed, or it gives the token back. PostgreSQL only.
func (d *DB) TakeToken(ctx context.Context, name string, rate, burst float64) (float64, error) {
	if d.Dialect != Postgres {
		return 0, fmt.Errorf("shared token buckets need PostgreSQL (got %s)", d.Dialect)
	}
	var tokens float64
	if err := d.QueryRowContext(ctx, takeTokenSQL, name, rate, burst).Scan(&tokens); err != nil {
		return 0, fmt.Errorf("take a token of bucket %q: %w", name, err)
	}
	return tokens, nil
}

// GiveBackToken returns a token taken but not used.
func (d *DB) GiveBackToken(ctx context.Context, name string) error {
	if _, err := d.ExecContext(ctx, `UPDATE push_rate_buckets SET tokens = tokens + 1 WHERE account = $1`, name); err != nil {
		return fmt.Errorf("give back a token of bucket %q: %w", name, err)
	}
	return nil
}
