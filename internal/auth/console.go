package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// AuditEntry is one change made in the admin console.
type AuditEntry struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Username string    `json:"username"`
	// Action names the change, e.g. "send", "schedule.pause".
	Action string `json:"action"`
	// Target is the object changed, e.g. a message id or "main/welcome".
	Target   string `json:"target,omitempty"`
	Detail   string `json:"detail,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
}

// Audit records a change made in the console.
func (s *AdminStore) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO admin_audit (at, username, action, target, detail, client_ip) VALUES ($1, $2, $3, $4, $5, $6)`,
		db.Timestamp(s.now()), e.Username, e.Action, e.Target, truncate(e.Detail, 2000), e.ClientIP)
	if err != nil {
		return fmt.Errorf("auth: recording console audit %q: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns the latest console changes, newest first.
func (s *AdminStore) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, username, action, target, detail, client_ip FROM admin_audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("auth: reading console audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.Username, &e.Action, &e.Target, &e.Detail, &e.ClientIP); err != nil {
			return nil, fmt.Errorf("auth: reading console audit: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Sign-in throttling: at most this many failures in LoginWindow, per
// client IP and per username, on every instance together.
const (
	LoginWindow          = 15 * time.Minute
	MaxFailuresPerIP     = 20
	MaxFailuresPerUser   = 8
	loginFailuresTrimAge = 2 * LoginWindow
)

// ErrLoginThrottled is returned while a client IP or a username has too
// many recent failed sign-ins.
var ErrLoginThrottled = problem.New(problem.RateLimited, "login_throttled", "",
	"too many failed sign-ins; wait a few minutes and try again — 登录失败次数过多，请几分钟后再试")

// CheckLoginThrottle returns ErrLoginThrottled (with RetryAfter) when ip
// or username has reached its failure limit.
func (s *AdminStore) CheckLoginThrottle(ctx context.Context, ip, username string) error {
	since := db.Timestamp(s.now().Add(-LoginWindow))
	var byIP, byUser int
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM admin_login_failures WHERE client_ip = $1 AND at > $3),
		(SELECT COUNT(*) FROM admin_login_failures WHERE username = $2 AND at > $3)`,
		ip, normalUsername(username), since).Scan(&byIP, &byUser)
	if err != nil {
		return fmt.Errorf("auth: checking sign-in throttle: %w", err)
	}
	if byIP < MaxFailuresPerIP && byUser < MaxFailuresPerUser {
		return nil
	}
	// The window slides, so the oldest counted failure leaves it within
	// LoginWindow; telling the whole window is the honest upper bound.
	e := *ErrLoginThrottled
	e.RetryAfter = LoginWindow
	return &e
}

// RecordLoginFailure counts a failed sign-in and trims old failures.
func (s *AdminStore) RecordLoginFailure(ctx context.Context, ip, username string) error {
	now := db.Timestamp(s.now())
	if _, err := s.db.ExecContext(ctx, `INSERT INTO admin_login_failures (at, client_ip, username) VALUES ($1, $2, $3)`,
		now, ip, normalUsername(username)); err != nil {
		return fmt.Errorf("auth: recording a failed sign-in: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM admin_login_failures WHERE at < $1`, now.Add(-loginFailuresTrimAge)); err != nil {
		return fmt.Errorf("auth: trimming failed sign-ins: %w", err)
	}
	return nil
}

func normalUsername(u string) string { return truncate(strings.TrimSpace(u), maxUsernameLen) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
