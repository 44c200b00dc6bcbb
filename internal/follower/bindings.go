package follower

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// A binding ties a business's own user id (the external id: a
// salesperson S-1024, a customer C-88) to a person. It is recorded on the
// openid of the app where it happened (the scan of a binding QR code on an
// official account, a mini-program login) with the unionid when known, so
// it reaches the person on every app of the same unionid.
//
// By default bindings are one-to-one: a new binding of an external id or
// of a person ends the older ones (end_reason "replaced", kept as
// history). An account configured many_to_many adds bindings without
// ending any. A deleted binding is kept too (end_reason "deleted").

// Binding sources.
const (
	SourceQRCode      = "qrcode"
	SourceMiniProgram = "miniprogram"
)

// End reasons of a binding.
const (
	EndReplaced = "replaced"
	EndDeleted  = "deleted"
)

// MaxExternalIDLength bounds an external id (in characters).
const MaxExternalIDLength = 128

// Binding is one binding, active (EndedAt nil) or past.
type Binding struct {
	ID         int64  `json:"id"`
	ExternalID string `json:"external_id"`
	Account    string `json:"account"`
	OpenID     string `json:"openid"`
	// UnionID is the person's unionid: recorded with the binding or known
	// since for its openid; "" when none is known.
	UnionID    string     `json:"unionid,omitempty"`
	Source     string     `json:"source"`
	Exclusive  bool       `json:"exclusive"`
	CreatedAt  time.Time  `json:"created_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	EndReason  string     `json:"end_reason,omitempty"`
	ReplacedBy *int64     `json:"replaced_by,omitempty"`
}

// Active reports whether the binding holds.
func (b Binding) Active() bool { return b.EndedAt == nil }

// ErrBindingNotFound is returned for a binding id that does not exist.
var ErrBindingNotFound = problem.New(problem.NotFound, "binding_not_found", "id", "no such binding — 绑定不存在")

// CheckExternalID validates an external id: 1..128 characters, no control
// characters.
func CheckExternalID(id string) error {
	n := len([]rune(id))
	if n == 0 || n > MaxExternalIDLength {
		return problem.Invalidf("invalid_external_id", "external_id", "external_id must be 1..%d characters, got %d — external_id 长度须为 1..%d", MaxExternalIDLength, n, MaxExternalIDLength)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return problem.Invalidf("invalid_external_id", "external_id", "external_id must not contain control characters — external_id 不能包含控制字符")
		}
	}
	return nil
}

// bindingSelect reads bindings with the unionid known for their openid.
const bindingSelect = `SELECT b.id, b.external_id, b.account, b.openid,
    COALESCE(b.unionid, (SELECT f.unionid FROM followers f WHERE f.account = b.account AND f.openid = b.openid),
        (SELECT m.unionid FROM miniprogram_users m WHERE m.account = b.account AND m.openid = b.openid), ''),
    b.source, b.exclusive, b.created_at, b.ended_at, b.end_reason, b.replaced_by
FROM bindings b`

// personUnionID is the unionid of a binding's person, as SQL over b.
const personUnionID = `COALESCE(b.unionid, (SELECT f.unionid FROM followers f WHERE f.account = b.account AND f.openid = b.openid),
        (SELECT m.unionid FROM miniprogram_users m WHERE m.account = b.account AND m.openid = b.openid))`

func scanBinding(row interface{ Scan(...any) error }) (Binding, error) {
	var (
		b          Binding
		ended      sql.NullTime
		replacedBy sql.NullInt64
	)
	if err := row.Scan(&b.ID, &b.ExternalID, &b.Account, &b.OpenID, &b.UnionID, &b.Source, &b.Exclusive, &b.CreatedAt,
		&ended, &b.EndReason, &replacedBy); err != nil {
		return Binding{}, err
	}
	b.CreatedAt = b.CreatedAt.UTC()
	b.EndedAt = timePtr(ended)
	if replacedBy.Valid {
		v := replacedBy.Int64
		b.ReplacedBy = &v
	}
	return b, nil
}

// BindingFilter selects bindings, newest first. The person filters
// (OpenID, UnionID) match bindings of the same person on any app.
type BindingFilter struct {
	ExternalID string
	// Account limits to bindings recorded on that account.
	Account string
	OpenID  string
	UnionID string
	// History includes replaced and deleted bindings.
	History bool
	// BeforeID pages backwards: only bindings with a smaller id.
	BeforeID int64
	// Limit defaults to 50, at most 500.
	Limit int
}

// ListBindings returns the bindings f selects, newest first.
func (s *Store) ListBindings(ctx context.Context, f BindingFilter) ([]Binding, error) {
	return listBindings(ctx, s.db, f)
}

func listBindings(ctx context.Context, q execQuerier, f BindingFilter) ([]Binding, error) {
	f.Limit = db.PageLimit(f.Limit, 50, 500)
	var where []string
	p := db.NewParams()
	arg := p.Add
	if !f.History {
		where = append(where, "b.ended_at IS NULL")
	}
	if f.ExternalID != "" {
		where = append(where, "b.external_id = "+arg(f.ExternalID))
	}
	if f.Account != "" {
		where = append(where, "b.account = "+arg(f.Account))
	}
	if f.OpenID != "" {
		// The openid's own bindings, and those of its person on other apps.
		o := arg(f.OpenID)
		where = append(where, "(b.openid = "+o+" OR "+personUnionID+` IN (
    SELECT unionid FROM followers WHERE openid = `+o+` AND unionid IS NOT NULL
    UNION SELECT unionid FROM miniprogram_users WHERE openid = `+o+` AND unionid IS NOT NULL))`)
	}
	if f.UnionID != "" {
		where = append(where, personUnionID+" = "+arg(f.UnionID))
	}
	if f.BeforeID > 0 {
		where = append(where, "b.id < "+arg(f.BeforeID))
	}
	query := bindingSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY b.id DESC LIMIT " + arg(f.Limit)
	rows, err := q.QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("follower: listing bindings: %w", err)
	}
	defer rows.Close()
	out := []Binding{}
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return nil, fmt.Errorf("follower: listing bindings: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("follower: listing bindings: %w", err)
	}
	return out, nil
}

// GetBinding returns one binding.
func (s *Store) GetBinding(ctx context.Context, id int64) (Binding, error) {
	return getBinding(ctx, s.db, id)
}

func getBinding(ctx context.Context, q execQuerier, id int64) (Binding, error) {
	b, err := scanBinding(q.QueryRowContext(ctx, bindingSelect+" WHERE b.id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Binding{}, ErrBindingNotFound
	}
	if err != nil {
		return Binding{}, fmt.Errorf("follower: binding %d: %w", id, err)
	}
	return b, nil
}

// ResolveExternalID returns the openids of account that an external id
// reaches: those it is bound to on account, and the account's openids of
// persons it is bound to on other apps (by unionid). Sends address
// external ids through it.
func (s *Store) ResolveExternalID(ctx context.Context, account, externalID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT b.openid FROM bindings b WHERE b.ended_at IS NULL AND b.external_id = $1 AND b.account = $2
UNION
SELECT f.openid FROM bindings b JOIN followers f ON f.account = $2 AND f.unionid = `+personUnionID+`
WHERE b.ended_at IS NULL AND b.external_id = $1 AND b.account <> $2
UNION
SELECT m.openid FROM bindings b JOIN miniprogram_users m ON m.account = $2 AND m.unionid = `+personUnionID+`
WHERE b.ended_at IS NULL AND b.external_id = $1 AND b.account <> $2
ORDER BY 1`, externalID, account)
	if err != nil {
		return nil, fmt.Errorf("follower: resolving external id %s: %w", externalID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("follower: resolving external id %s: %w", externalID, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// bindRequest is one binding to record.
type bindRequest struct {
	ExternalID string
	Account    string
	OpenID     string
	UnionID    string // "" to look it up
	Source     string
	ManyToMany bool
	Now        time.Time
}

// bindOutcome is what bindTx did.
type bindOutcome struct {
	Binding Binding
	// Existing: the same binding was active already; nothing changed.
	Existing bool
	// Replaced are the bindings this one ended (one-to-one mode).
	Replaced []int64
}

// bindTx records a binding in tx. In one-to-one mode it ends the active
// bindings of the same external id and of the same person first. A
// concurrent binding of the same external id or person makes the insert
// fail on a unique index: the caller retries the transaction (isUniqueViolation).
func bindTx(ctx context.Context, tx *sql.Tx, r bindRequest) (bindOutcome, error) {
	if r.UnionID == "" {
		u, err := unionIDOf(ctx, tx, r.Account, r.OpenID)
		if err != nil {
			return bindOutcome{}, err
		}
		r.UnionID = u
	}
	var existing int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM bindings WHERE external_id = $1 AND account = $2 AND openid = $3 AND ended_at IS NULL`,
		r.ExternalID, r.Account, r.OpenID).Scan(&existing)
	switch {
	case err == nil:
		b, err := getBinding(ctx, tx, existing)
		return bindOutcome{Binding: b, Existing: true}, err
	case !errors.Is(err, sql.ErrNoRows):
		return bindOutcome{}, fmt.Errorf("follower: binding %s: %w", r.ExternalID, err)
	}

	var out bindOutcome
	if !r.ManyToMany {
		rows, err := tx.QueryContext(ctx, `
UPDATE bindings SET ended_at = $5, end_reason = $6
WHERE ended_at IS NULL AND (external_id = $1 OR (account = $2 AND openid = $3) OR ($4 <> '' AND (unionid = $4
    OR EXISTS (SELECT 1 FROM followers f WHERE f.account = bindings.account AND f.openid = bindings.openid AND f.unionid = $4)
    OR EXISTS (SELECT 1 FROM miniprogram_users m WHERE m.account = bindings.account AND m.openid = bindings.openid AND m.unionid = $4))))
RETURNING id`, r.ExternalID, r.Account, r.OpenID, r.UnionID, r.Now, EndReplaced)
		if err != nil {
			return bindOutcome{}, fmt.Errorf("follower: replacing bindings of %s: %w", r.ExternalID, err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return bindOutcome{}, fmt.Errorf("follower: replacing bindings of %s: %w", r.ExternalID, err)
			}
			out.Replaced = append(out.Replaced, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return bindOutcome{}, fmt.Errorf("follower: replacing bindings of %s: %w", r.ExternalID, err)
		}
	}
	var id int64
	err = tx.QueryRowContext(ctx, `
INSERT INTO bindings (external_id, account, openid, unionid, source, exclusive, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		r.ExternalID, r.Account, r.OpenID, nullString(r.UnionID), r.Source, !r.ManyToMany, r.Now).Scan(&id)
	if err != nil {
		return bindOutcome{}, fmt.Errorf("follower: binding %s: %w", r.ExternalID, err)
	}
	if len(out.Replaced) > 0 {
		marks := make([]string, len(out.Replaced))
		args := []any{id}
		for i, old := range out.Replaced {
			args = append(args, old)
			marks[i] = "$" + strconv.Itoa(i+2)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bindings SET replaced_by = $1 WHERE id IN (`+strings.Join(marks, ", ")+`)`, args...); err != nil {
			return bindOutcome{}, fmt.Errorf("follower: binding %s: %w", r.ExternalID, err)
		}
	}
	out.Binding, err = getBinding(ctx, tx, id)
	return out, err
}

// endBindingTx ends an active binding as deleted.
func endBindingTx(ctx context.Context, tx *sql.Tx, id int64, now time.Time) (Binding, error) {
	b, err := getBinding(ctx, tx, id)
	if err != nil {
		return Binding{}, err
	}
	if !b.Active() {
		return b, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE bindings SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL`,
		id, now, EndDeleted); err != nil {
		return Binding{}, fmt.Errorf("follower: deleting binding %d: %w", id, err)
	}
	return getBinding(ctx, tx, id)
}

// isUniqueViolation reports whether err is a unique-index violation, on
// either dialect.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// inTx runs fn in a transaction, again (up to three times in all) when it
// fails on a unique index because a concurrent transaction won.
func inTx(ctx context.Context, d *db.DB, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = func() error {
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if !isUniqueViolation(err) {
			return err
		}
	}
	return err
}
