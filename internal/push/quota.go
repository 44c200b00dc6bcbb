package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// WeChat's daily quota of an API (45009) is the account's, whichever
// instance used it up: the first instance to see 45009 records when the
// quota resets in push_quota_snoozes, and every instance's sends on that
// channel of that account wait for it without calling WeChat.

// quotaSnoozedUntil is when the daily quota of the account's channel
// resets, or the zero time when it is not used up.
func (s *Service) quotaSnoozedUntil(ctx context.Context, account, channel string) (time.Time, error) {
	var until time.Time
	err := s.db.QueryRowContext(ctx, `SELECT until FROM push_quota_snoozes WHERE account = $1 AND channel = $2 AND until > $3`,
		account, channel, s.stamp()).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("push: daily quota of account %q: %w", account, err)
	}
	return until, nil
}

// snoozeQuota records that the account's daily quota of the channel is
// used up until the given time, for every instance.
func (s *Service) snoozeQuota(ctx context.Context, account, channel string, until time.Time, errmsg string) error {
	_, err := s.db.ExecContext(ctx, `
INSERT INTO push_quota_snoozes (account, channel, until, errmsg, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account, channel) DO UPDATE SET until = excluded.until, errmsg = excluded.errmsg, updated_at = excluded.updated_at`,
		account, channel, db.Timestamp(until), errmsg, s.stamp())
	if err != nil {
		return fmt.Errorf("push: record the daily quota of account %q: %w", account, err)
	}
	return nil
}

// quotaJitter spreads the instances' first calls after the reset.
func quotaJitter() time.Duration {
	return time.Second + time.Duration(rand.IntN(2000))*time.Millisecond
}

// noteQuotaWait records on the recipient that it waits for the quota
// reset; no call was made, so attempts stay as they are.
func (s *Service) noteQuotaWait(ctx context.Context, r *recipientRow, code int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE push_recipients SET errcode = $1, errmsg = $2, updated_at = $3
    WHERE id = $4 AND status = $5`, code, quotaWaitMsg, s.stamp(), r.id, StatusQueued)
	if err != nil {
		return fmt.Errorf("push: record the quota wait of recipient %d: %w", r.id, err)
	}
	return nil
}

const quotaWaitMsg = "quota: waiting for the daily quota reset (00:00 Beijing time)"
