package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A lease is a named lock with an expiry, shared by every instance on the
// database (the leases table): the token broker's refresh lease, the
// follower sync of an account. It says nothing about processes: a holder
// that crashed keeps its lease until it expires, then anyone may take it;
// a holder that is alive renews it before then. Taking a lease is one
// conditional upsert, atomic on both dialects, so of any number of
// instances racing for a free lease exactly one gets it.
//
// Expiry is judged by the caller's clock (Leases.Now), not the database's:
// the instances sharing a lease must have their clocks in step, as they
// must for token expiry anyway.

// Lease is the current state of a named lease.
type Lease struct {
	Name       string
	Holder     string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

// leaseQuerier is a *DB or a *sql.Tx.
type leaseQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Leases takes, renews and gives back leases.
type Leases struct {
	q   leaseQuerier
	now func() time.Time
}

// NewLeases returns the leases of d judged by the clock now (time.Now
// when nil).
func NewLeases(d *DB, now func() time.Time) *Leases {
	if now == nil {
		now = time.Now
	}
	return &Leases{q: d, now: now}
}

// In returns the same leases working inside tx, so that a write is made
// only while the lease is held: renew (or release) first, and roll back
// when that reports the lease lost. On PostgreSQL the renewal locks the
// lease row until tx ends, so nobody takes the lease over meanwhile; on
// SQLite the transaction holds the write lock.
func (l *Leases) In(tx *sql.Tx) *Leases {
	return &Leases{q: tx, now: l.now}
}

// Acquire takes the lease name for holder until now+ttl when it is free,
// expired or already holder's (then it is extended). ok reports whether
// holder has it now; either way cur is the lease as it stands (another
// holder's when ok is false; zero if it went away in between).
func (l *Leases) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (cur Lease, ok bool, err error) {
	return l.take(ctx, name, holder, "", ttl)
}

// TakeOver takes the lease name for holder until now+ttl even though from
// still holds it (from crashed and its lease has not expired yet). It
// fails (ok false) when the lease was meanwhile taken by someone other than
// from, so that of two take-overs of one holder only one wins. A free or
// expired lease is simply taken.
func (l *Leases) TakeOver(ctx context.Context, name, from, holder string, ttl time.Duration) (cur Lease, ok bool, err error) {
	if from == "" {
		return l.Acquire(ctx, name, holder, ttl)
	}
	return l.take(ctx, name, holder, from, ttl)
}

// take is the one upsert of Acquire and TakeOver: insert the row, or
// update it when it is expired, holder's own, or from's (when from is
// set). RETURNING yields no row when the WHERE refused the update.
func (l *Leases) take(ctx context.Context, name, holder, from string, ttl time.Duration) (Lease, bool, error) {
	if name == "" || holder == "" {
		return Lease{}, false, errors.New("db: a lease needs a name and a holder")
	}
	now := Timestamp(l.now())
	cur := Lease{Name: name}
	err := l.q.QueryRowContext(ctx, `
INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at,
    acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END
WHERE leases.expires_at <= $3 OR leases.holder = excluded.holder OR ($5 <> '' AND leases.holder = $5)
RETURNING holder, acquired_at, expires_at`,
		name, holder, now, Timestamp(now.Add(ttl)), from).Scan(&cur.Holder, &cur.AcquiredAt, &cur.ExpiresAt)
	if err == nil {
		return cur, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, fmt.Errorf("db: taking lease %s: %w", name, err)
	}
	// Refused: say who holds it.
	cur, _, err = l.Get(ctx, name)
	return cur, false, err
}

// Renew extends holder's lease name to now+ttl. It reports false when the
// lease is not holder's any more (released, or taken over by another
// holder after it expired); a lease that expired but that nobody took is
// still holder's and is renewed.
func (l *Leases) Renew(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := Timestamp(l.now())
	res, err := l.q.ExecContext(ctx, `UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2`,
		name, holder, Timestamp(now.Add(ttl)))
	if err != nil {
		return false, fmt.Errorf("db: renewing lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("db: renewing lease %s: %w", name, err)
	}
	return n == 1, nil
}

// Release gives holder's lease name back, so that the next Acquire gets
// it at once. It reports false when holder did not have it (nothing
// changes then).
func (l *Leases) Release(ctx context.Context, name, holder string) (bool, error) {
	res, err := l.q.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	if err != nil {
		return false, fmt.Errorf("db: releasing lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("db: releasing lease %s: %w", name, err)
	}
	return n == 1, nil
}

// Get returns the lease name; held is false when nobody holds it or its
// holder's time is up.
func (l *Leases) Get(ctx context.Context, name string) (Lease, bool, error) {
	cur := Lease{Name: name}
	err := l.q.QueryRowContext(ctx, `SELECT holder, acquired_at, expires_at FROM leases WHERE name = $1`, name).
		Scan(&cur.Holder, &cur.AcquiredAt, &cur.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{Name: name}, false, nil
	}
	if err != nil {
		return Lease{Name: name}, false, fmt.Errorf("db: reading lease %s: %w", name, err)
	}
	if !l.now().Before(cur.ExpiresAt) {
		return cur, false, nil
	}
	return cur, true, nil
}
