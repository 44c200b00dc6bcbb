package push

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// Stats sums up an account's sends over a stretch of time, for the
// console's dashboard.
type Stats struct {
	// Recipients counts the recipients of the messages accepted.
	Recipients int64
	// ByStatus counts them by their status now (queued, sent, delivered,
	// blocked, failed, skipped, unconfirmed).
	ByStatus map[string]int64
	// Failures counts the failed, blocked, skipped and unconfirmed
	// recipients by why, most first.
	Failures []FailureCount
	// PerStep counts the recipients accepted in each step of the buckets.
	PerStep []int64
}

// FailureCount is how many recipients ended one way for one reason.
type FailureCount struct {
	Status  string
	Reason  string
	ErrCode int
	Count   int64
}

// Stats counts an account's recipients of messages accepted from b.Since on.
func (s *Service) Stats(ctx context.Context, account string, b db.Buckets) (Stats, error) {
	st := Stats{ByStatus: map[string]int64{}}
	since := db.Timestamp(b.Since)
	rows, err := s.db.QueryContext(ctx, `
SELECT r.status, r.reason, r.errcode, COUNT(*)
FROM push_messages m JOIN push_recipients r ON r.message_id = m.id
WHERE m.account = $1 AND m.created_at >= $2
GROUP BY r.status, r.reason, r.errcode`, account, since)
	if err != nil {
		return Stats{}, fmt.Errorf("push: stats: %w", err)
	}
	for rows.Next() {
		var (
			status, reason string
			code           sql.NullInt64
			n              int64
		)
		if err := rows.Scan(&status, &reason, &code, &n); err != nil {
			rows.Close()
			return Stats{}, fmt.Errorf("push: stats: %w", err)
		}
		st.Recipients += n
		st.ByStatus[status] += n
		switch status {
		case StatusFailed, StatusBlocked, StatusSkipped, StatusUnconfirmed:
			st.Failures = append(st.Failures, FailureCount{Status: status, Reason: reason, ErrCode: int(code.Int64), Count: n})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("push: stats: %w", err)
	}
	sort.SliceStable(st.Failures, func(i, j int) bool { return st.Failures[i].Count > st.Failures[j].Count })

	bucket := b.BucketOf(s.db, "m.created_at")
	steps, err := s.db.QueryContext(ctx, `SELECT `+bucket+`, SUM(m.recipients) FROM push_messages m
WHERE m.account = $1 AND m.created_at >= $2 GROUP BY `+bucket, account, since)
	if err != nil {
		return Stats{}, fmt.Errorf("push: stats per step: %w", err)
	}
	if st.PerStep, err = b.Scan(steps); err != nil {
		return Stats{}, fmt.Errorf("push: stats per step: %w", err)
	}
	return st, nil
}

// APIError is a WeChat error answer to a send.
type APIError struct {
	At        time.Time
	ErrCode   int
	ErrMsg    string
	MessageID string
	Seq       int
}

// RecentErrors returns the latest WeChat errors answered to an account's
// sends (at most limit, default 10), newest first.
func (s *Service) RecentErrors(ctx context.Context, account string, limit int) ([]APIError, error) {
	limit = db.PageLimit(limit, 10, 100)
	rows, err := s.db.QueryContext(ctx, `SELECT updated_at, errcode, errmsg, message_id, seq FROM push_recipients
WHERE account = $1 AND errcode IS NOT NULL AND errcode <> 0 ORDER BY id DESC LIMIT $2`, account, limit)
	if err != nil {
		return nil, fmt.Errorf("push: recent errors: %w", err)
	}
	defer rows.Close()
	var out []APIError
	for rows.Next() {
		var e APIError
		if err := rows.Scan(&e.At, &e.ErrCode, &e.ErrMsg, &e.MessageID, &e.Seq); err != nil {
			return nil, fmt.Errorf("push: recent errors: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
