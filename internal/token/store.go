package token

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// row is the tokens table row of one app and mode.
type row struct {
	Token       string
	ExpiresAt   time.Time
	FetchedAt   time.Time
	Version     int64
	ForceDay    string
	ForceCount  int
	LastForceAt time.Time
	LastError   string
	LastErrcode int
	LastErrorAt time.Time
}

// store reads and writes the tokens row of one broker; the refresh lease
// is the db lease named by leaseName.
type store struct {
	db      *db.DB
	appID   string
	mode    Mode
	account string
}

// leaseName names the refresh lease of the app and mode (one token at
// WeChat, whichever accounts share it).
func (s *store) leaseName() string { return "token:" + s.appID + ":" + string(s.mode) }

// leases judges the refresh lease by the time now of the caller.
func (s *store) leases(now time.Time) *db.Leases {
	return db.NewLeases(s.db, func() time.Time { return now })
}

// load returns the row, or an empty row when there is none yet.
func (s *store) load(ctx context.Context) (*row, error) {
	var r row
	var expires, fetched, lastForce, lastErr sql.NullTime
	err := s.db.QueryRowContext(ctx, `
		SELECT access_token, expires_at, fetched_at, version,
		       force_day, force_count, last_force_at, last_error, last_errcode, last_error_at
		FROM tokens WHERE app_id = $1 AND mode = $2`, s.appID, string(s.mode)).
		Scan(&r.Token, &expires, &fetched, &r.Version,
			&r.ForceDay, &r.ForceCount, &lastForce, &r.LastError, &r.LastErrcode, &lastErr)
	if errors.Is(err, sql.ErrNoRows) {
		return &row{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: reading the token of %s: %w", s.appID, err)
	}
	r.ExpiresAt, r.FetchedAt = expires.Time, fetched.Time
	r.LastForceAt, r.LastErrorAt = lastForce.Time, lastErr.Time
	return &r, nil
}

// leaseFree reports whether nobody holds the refresh lease at now.
func (s *store) leaseFree(ctx context.Context, now time.Time) (bool, error) {
	_, held, err := s.leases(now).Get(ctx, s.leaseName())
	if err != nil {
		return false, fmt.Errorf("token: reading the refresh lease of %s: %w", s.appID, err)
	}
	return !held, nil
}

// acquire takes the refresh lease for holder until now+ttl when it is free,
// expired or already holder's. It reports whether holder has it now.
func (s *store) acquire(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error) {
	_, ok, err := s.leases(now).Acquire(ctx, s.leaseName(), holder, ttl)
	if err != nil {
		return false, fmt.Errorf("token: taking the refresh lease of %s: %w", s.appID, err)
	}
	return ok, nil
}

// saved is what a successful fetch writes.
type saved struct {
	Token       string
	ExpiresAt   time.Time
	FetchedAt   time.Time
	ForceDay    string
	ForceCount  int
	LastForceAt time.Time
	Forced      bool // fetched with force_refresh
}

// save stores a fetched token and releases the lease, if holder still has
// it, in one transaction. The version grows only when the token value
// changed (a stable_token asked for early comes back unchanged with a
// shorter expires_in). ok is false when the lease was lost meanwhile;
// nothing is written then.
func (s *store) save(ctx context.Context, holder string, v saved) (version int64, ok bool, err error) {
	var lastForce any
	if !v.LastForceAt.IsZero() {
		lastForce = db.Timestamp(v.LastForceAt)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("token: saving the token of %s: %w", s.appID, err)
	}
	defer tx.Rollback()
	// Released first: on PostgreSQL the delete locks the lease row, so it
	// cannot be taken over before the token is stored.
	held, err := s.leases(v.FetchedAt).In(tx).Release(ctx, s.leaseName(), holder)
	if err != nil {
		return 0, false, fmt.Errorf("token: saving the token of %s: %w", s.appID, err)
	}
	if !held {
		return 0, false, nil
	}
	if err := s.logFetch(ctx, tx, v.FetchedAt, true, v.Forced, 0); err != nil {
		return 0, false, err
	}
	err = tx.QueryRowContext(ctx, `
		INSERT INTO tokens (app_id, mode, account, access_token, expires_at, fetched_at, version,
		                    force_day, force_count, last_force_at, updated_at)
		VALUES ($1, $2, $9, $3, $4, $5, 1, $6, $7, $8, $5)
		ON CONFLICT (app_id, mode) DO UPDATE
		SET version = CASE WHEN tokens.access_token = excluded.access_token THEN tokens.version ELSE tokens.version + 1 END,
		    access_token = excluded.access_token, expires_at = excluded.expires_at, fetched_at = excluded.fetched_at,
		    force_day = excluded.force_day, force_count = excluded.force_count, last_force_at = excluded.last_force_at,
		    last_error = '', last_errcode = 0, last_error_at = NULL,
		    account = excluded.account, updated_at = excluded.updated_at
		RETURNING version`,
		s.appID, string(s.mode), v.Token, db.Timestamp(v.ExpiresAt), db.Timestamp(v.FetchedAt),
		v.ForceDay, v.ForceCount, lastForce, s.account).Scan(&version)
	if err != nil {
		return 0, false, fmt.Errorf("token: saving the token of %s: %w", s.appID, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("token: saving the token of %s: %w", s.appID, err)
	}
	return version, true, nil
}

// release gives the lease up without a new token. A non-empty errText
// records why the refresh failed, for the instances waiting on it; it is
// written in the same transaction, so a waiter that finds the lease free
// finds the error too.
func (s *store) release(ctx context.Context, holder string, now time.Time, errText string, errcode int) error {
	if errText == "" {
		if _, err := s.leases(now).Release(ctx, s.leaseName(), holder); err != nil {
			return fmt.Errorf("token: releasing the refresh lease of %s: %w", s.appID, err)
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("token: releasing the refresh lease of %s: %w", s.appID, err)
	}
	defer tx.Rollback()
	held, err := s.leases(now).In(tx).Release(ctx, s.leaseName(), holder)
	if err != nil {
		return fmt.Errorf("token: releasing the refresh lease of %s: %w", s.appID, err)
	}
	if !held {
		return nil // taken over: the error is not ours to report any more
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO tokens (app_id, mode, account, last_error, last_errcode, last_error_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (app_id, mode) DO UPDATE
		SET last_error = excluded.last_error, last_errcode = excluded.last_errcode,
		    last_error_at = excluded.last_error_at, updated_at = excluded.updated_at`,
		s.appID, string(s.mode), s.account, errText, errcode, db.Timestamp(now)); err != nil {
		return fmt.Errorf("token: recording the failed refresh of %s: %w", s.appID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("token: releasing the refresh lease of %s: %w", s.appID, err)
	}
	return nil
}

// fetchLogKept is how long token_fetches rows are kept: the console's
// longest window is 7 days.
const fetchLogKept = 8 * 24 * time.Hour

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// logFetch records one call to WeChat's token endpoint and deletes the
// rows past fetchLogKept.
func (s *store) logFetch(ctx context.Context, ex execer, at time.Time, ok, forced bool, errcode int) error {
	if _, err := ex.ExecContext(ctx, `INSERT INTO token_fetches (app_id, mode, account, at, ok, forced, errcode)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.appID, string(s.mode), s.account, db.Timestamp(at), ok, forced, errcode); err != nil {
		return fmt.Errorf("token: logging a fetch of %s: %w", s.appID, err)
	}
	if _, err := ex.ExecContext(ctx, `DELETE FROM token_fetches WHERE at < $1`, db.Timestamp(at.Add(-fetchLogKept))); err != nil {
		return fmt.Errorf("token: pruning the fetch log: %w", err)
	}
	return nil
}

// FetchCounts are an account's calls to WeChat's token endpoint in a
// window, across every instance.
type FetchCounts struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
}

// fetchCounts counts the account's fetches since a time.
func (s *store) fetchCounts(ctx context.Context, since time.Time) (FetchCounts, error) {
	var c FetchCounts
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN ok THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN ok THEN 0 ELSE 1 END), 0)
		FROM token_fetches WHERE account = $1 AND at >= $2`, s.account, db.Timestamp(since)).Scan(&c.OK, &c.Failed)
	if err != nil {
		return FetchCounts{}, fmt.Errorf("token: counting the fetches of %s: %w", s.account, err)
	}
	return c, nil
}
