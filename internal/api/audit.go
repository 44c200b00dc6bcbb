package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Every API call is audited (which key, what, when, with what answer), and
// each key is rate limited.

// Defaults of the per-key rate limit, for the gateway to use.
const (
	DefaultKeyRate  = 50.0 // requests per second per API key
	DefaultKeyBurst = 100
)

// AuditEntry is one API call.
type AuditEntry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	KeyID      int64     `json:"key_id,omitempty"`
	KeyPrefix  string    `json:"key_prefix,omitempty"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	DurationMS int64     `json:"duration_ms"`
	Remote     string    `json:"remote,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
}

// AuditLog keeps the audit entries (*AuditStore).
type AuditLog interface {
	Record(ctx context.Context, e AuditEntry) error
	List(ctx context.Context, keyID int64, limit int) ([]AuditEntry, error)
}

// AuditStore is the audit log in the api_audit table.
type AuditStore struct{ db *db.DB }

// NewAuditStore returns the audit log on d.
func NewAuditStore(d *db.DB) *AuditStore { return &AuditStore{db: d} }

// Record implements AuditLog.
func (s *AuditStore) Record(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_audit (at, key_id, key_prefix, method, path, status, duration_ms, remote, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, db.Timestamp(e.At), e.KeyID, e.KeyPrefix, e.Method, e.Path, e.Status, e.DurationMS, e.Remote, e.RequestID)
	if err != nil {
		return fmt.Errorf("api: audit: %w", err)
	}
	return nil
}

// List implements AuditLog: newest first, one key's (keyID > 0) or all.
func (s *AuditStore) List(ctx context.Context, keyID int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT id, at, key_id, key_prefix, method, path, status, duration_ms, remote, request_id FROM api_audit`
	args := []any{limit}
	if keyID > 0 {
		query += ` WHERE key_id = $2`
		args = append(args, keyID)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, fmt.Errorf("api: audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.KeyID, &e.KeyPrefix, &e.Method, &e.Path, &e.Status, &e.DurationMS, &e.Remote, &e.RequestID); err != nil {
			return nil, fmt.Errorf("api: audit: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditKey carries the key of a request from the scope check (inside the
// mux) to the audit (around it).
type auditKey struct{}

type auditHolder struct{ key auth.APIKey }

// statusRecorder remembers the status written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// audited records every request that reaches the API.
func (h *handler) audited(next http.Handler) http.Handler {
	if h.opts.Audit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := h.now()
		holder := &auditHolder{}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), auditKey{}, holder)))
		remote, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			remote = r.RemoteAddr
		}
		e := AuditEntry{At: start, KeyID: holder.key.ID, KeyPrefix: holder.key.Prefix, Method: r.Method, Path: r.URL.Path,
			Status: rec.status, DurationMS: h.now().Sub(start).Milliseconds(), Remote: remote, RequestID: w.Header().Get("X-Request-Id")}
		if e.Status == 0 {
			e.Status = http.StatusOK
		}
		// The answer is written; the audit must not depend on the client
		// staying.
		if err := h.opts.Audit.Record(context.WithoutCancel(r.Context()), e); err != nil {
			h.log.Warn("api: audit entry not recorded", "err", err, "path", e.Path)
		}
	})
}

// keyed runs after the scope check: it notes the key for the audit and
// applies the key's rate limit.
func (h *handler) keyed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := auth.KeyFrom(r.Context())
		if ok {
			if holder, _ := r.Context().Value(auditKey{}).(*auditHolder); holder != nil {
				holder.key = k
			}
			if wait, limited := h.limits.Allow(r.Context(), k.ID); limited {
				h.writeError(w, r, &problem.Error{Kind: problem.RateLimited, Code: "rate_limited", RetryAfter: wait,
					Message: fmt.Sprintf("API key %s made too many requests (limit %s/s) — 请求过于频繁，请稍后重试", k.Prefix,
						strconv.FormatFloat(h.limits.Rate(), 'f', -1, 64))})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// listAudit is GET /api/v1/audit?key_id=&limit= (scope admin).
func (h *handler) listAudit(w http.ResponseWriter, r *http.Request) {
	if h.opts.Audit == nil {
		h.writeError(w, r, &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
			Message: "the audit log is not available on this server — 此服务未启用审计日志"})
		return
	}
	q := r.URL.Query()
	keyID, err := intParam(q.Get("key_id"), "key_id")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list, err := h.opts.Audit.List(r.Context(), int64(keyID), limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": list})
}
