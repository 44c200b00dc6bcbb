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
	LeaseHolder string
	LeaseUntil  time.Time
	ForceDay    string
	ForceCount  int
	LastForceAt time.Time
	LastError   string
	LastErrcode int
	LastErrorAt time.Time
}

// leaseFree reports whether nobody holds the lease at now.
func (r *row) leaseFree(now time.Time) bool {
	return r.LeaseHolder == "" || r.LeaseUntil.IsZero() || !now.Before(r.LeaseUntil)
}

// store reads and writes the tokens row of one broker.
type store struct {
	db      *db.DB
	appID   string
	mode    Mode
	account string
}

// load returns the row, or an empty row when there is none yet.
func (s *store) load(ctx context.Context) (*row, error) {
	var r row
	var expires, fetched, lease, lastForce, lastErr sql.NullTime
	err := s.db.QueryRowContext(ctx, `
		SELECT access_token, expires_at, fetched_at, version, lease_holder, lease_expires_at,
		       force_day, force_count, last_force_at, last_error, last_errcode, last_error_at
		FROM tokens WHERE app_id = $1 AND mode = $2`, s.appID, string(s.mode)).
		Scan(&r.Token, &expires, &fetched, &r.Version, &r.LeaseHolder, &lease,
			&r.ForceDay, &r.ForceCount, &lastForce, &r.LastError, &r.LastErrcode, &lastErr)
	if errors.Is(err, sql.ErrNoRows) {
		return &row{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token: reading the token of %s: %w", s.appID, err)
	}
	r.ExpiresAt, r.FetchedAt, r.LeaseUntil = expires.Time, fetched.Time, lease.Time
	r.LastForceAt, r.LastErrorAt = lastForce.Time, lastErr.Time
	return &r, nil
}

// acquire takes the refresh lease for holder until now+ttl when it is free,
// expired or already holder's. It reports whether holder has it now.
func (s *store) acquire(ctx context.Context, holder string, now time.Time, ttl time.Duration) (bool, error) {
	var version int64
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO tokens (app_id, mode, account, lease_holder, lease_expires_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (app_id, mode) DO UPDATE
		SET lease_holder = excluded.lease_holder, lease_expires_at = excluded.lease_expires_at,
		    updated_at = excluded.updated_at
		WHERE tokens.lease_holder = '' OR tokens.lease_expires_at IS NULL
		   OR tokens.lease_expires_at <= $6 OR tokens.lease_holder = excluded.lease_holder
		RETURNING version`,
		s.appID, string(s.mode), s.account, holder, db.Timestamp(now.Add(ttl)), db.Timestamp(now)).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("token: taking the refresh lease of %s: %w", s.appID, err)
	}
	return true, nil
}

// saved is what a successful fetch writes.
type saved struct {
	Token       string
	ExpiresAt   time.Time
	FetchedAt   time.Time
	ForceDay    string
	ForceCount  int
	LastForceAt time.Time
}

// save stores a fetched token and releases the lease, if holder still has
// it. The version grows only when the token value changed (a stable_token
// asked for early comes back unchanged with a shorter expires_in). ok is
// false when the lease was lost meanwhile; nothing is written then.
func (s *store) save(ctx context.Context, holder string, v saved) (version int64, ok bool, err error) {
	var lastForce any
	if !v.LastForceAt.IsZero() {
		lastForce = db.Timestamp(v.LastForceAt)
	}
	err = s.db.QueryRowContext(ctx, `
		UPDATE tokens
		SET version = CASE WHEN access_token = $4 THEN version ELSE version + 1 END,
		    access_token = $4, expires_at = $5, fetched_at = $6,
		    force_day = $7, force_count = $8, last_force_at = $9,
		    lease_holder = '', lease_expires_at = NULL,
		    last_error = '', last_errcode = 0, last_error_at = NULL,
		    account = $10, updated_at = $6
		WHERE app_id = $1 AND mode = $2 AND lease_holder = $3
		RETURNING version`,
		s.appID, string(s.mode), holder, v.Token, db.Timestamp(v.ExpiresAt), db.Timestamp(v.FetchedAt),
		v.ForceDay, v.ForceCount, lastForce, s.account).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("token: saving the token of %s: %w", s.appID, err)
	}
	return version, true, nil
}

// release gives the lease up without a new token. A non-empty errText
// records why the refresh failed, for the instances waiting on it.
func (s *store) release(ctx context.Context, holder string, now time.Time, errText string, errcode int) error {
	var err error
	if errText == "" {
		_, err = s.db.ExecContext(ctx, `
			UPDATE tokens SET lease_holder = '', lease_expires_at = NULL, updated_at = $4
			WHERE app_id = $1 AND mode = $2 AND lease_holder = $3`,
			s.appID, string(s.mode), holder, db.Timestamp(now))
	} else {
		_, err = s.db.ExecContext(ctx, `
			UPDATE tokens SET lease_holder = '', lease_expires_at = NULL,
			       last_error = $4, last_errcode = $5, last_error_at = $6, updated_at = $6
			WHERE app_id = $1 AND mode = $2 AND lease_holder = $3`,
			s.appID, string(s.mode), holder, errText, errcode, db.Timestamp(now))
	}
	if err != nil {
		return fmt.Errorf("token: releasing the refresh lease of %s: %w", s.appID, err)
	}
	return nil
}
