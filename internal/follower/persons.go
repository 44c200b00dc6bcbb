package follower

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// A person is one WeChat user across the apps of a business: the openids,
// one per app (official accounts and mini programs), that share a unionid.
// WeChat gives a unionid only when the app is bound to an Open Platform
// account; without one an openid stands alone, and that "not linked" state
// is shown as such rather than treated as an error. There is no persons
// table: followers.unionid and miniprogram_users.unionid are the links.

// Identity kinds: the table an openid comes from.
const (
	KindOfficialAccount = "official_account"
	KindMiniProgram     = "mini_program"
)

// Link states of a mini-program user (LoginResult.Link).
const (
	// LinkLinked: a unionid, and at least one follower of an official
	// account with it.
	LinkLinked = "linked"
	// LinkNoFollower: a unionid, but no follower known with it (yet: the
	// person may not follow, or the follower's profile was not fetched).
	LinkNoFollower = "no_follower"
	// LinkNotLinked: no unionid (the mini program is not bound to an Open
	// Platform account, or WeChat did not give one): nothing to link by.
	LinkNotLinked = "not_linked"
)

// Identity is one openid of a person.
type Identity struct {
	Account string `json:"account"`
	Kind    string `json:"kind"`
	OpenID  string `json:"openid"`
	// Subscribed is set for official-account followers.
	Subscribed *bool `json:"subscribed,omitempty"`
}

// Person is a unionid and its openids.
type Person struct {
	UnionID    string     `json:"unionid"`
	Identities []Identity `json:"identities"`
}

// MiniProgramUser is a mini-program openid seen at login.
type MiniProgramUser struct {
	Account      string    `json:"account"`
	OpenID       string    `json:"openid"`
	UnionID      string    `json:"unionid,omitempty"`
	FirstLoginAt time.Time `json:"first_login_at"`
	LastLoginAt  time.Time `json:"last_login_at"`
	Logins       int64     `json:"logins"`
}

// RecordMiniProgramLogin upserts the mini-program user of a login; a
// unionid once known is kept when a later login comes without one.
func (s *Store) RecordMiniProgramLogin(ctx context.Context, account, openid, unionid string) (MiniProgramUser, error) {
	return recordMiniProgramLogin(ctx, s.db, account, openid, unionid, db.Timestamp(s.now()))
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func recordMiniProgramLogin(ctx context.Context, q execQuerier, account, openid, unionid string, now time.Time) (MiniProgramUser, error) {
	var (
		u     MiniProgramUser
		union sql.NullString
	)
	err := q.QueryRowContext(ctx, `
INSERT INTO miniprogram_users (account, openid, unionid, first_login_at, last_login_at, logins)
VALUES ($1, $2, $3, $4, $4, 1)
ON CONFLICT (account, openid) DO UPDATE SET
    unionid = COALESCE(excluded.unionid, miniprogram_users.unionid),
    last_login_at = excluded.last_login_at,
    logins = miniprogram_users.logins + 1
RETURNING account, openid, unionid, first_login_at, last_login_at, logins`,
		account, openid, nullString(unionid), now).Scan(&u.Account, &u.OpenID, &union, &u.FirstLoginAt, &u.LastLoginAt, &u.Logins)
	if err != nil {
		return MiniProgramUser{}, fmt.Errorf("follower: recording the login of %s: %w", openid, err)
	}
	u.UnionID = union.String
	u.FirstLoginAt, u.LastLoginAt = u.FirstLoginAt.UTC(), u.LastLoginAt.UTC()
	return u, nil
}

// MiniProgramUser returns a mini-program user; ErrNotFound when the openid
// never logged in.
func (s *Store) MiniProgramUser(ctx context.Context, account, openid string) (MiniProgramUser, error) {
	var (
		u     MiniProgramUser
		union sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT account, openid, unionid, first_login_at, last_login_at, logins
FROM miniprogram_users WHERE account = $1 AND openid = $2`, account, openid).Scan(
		&u.Account, &u.OpenID, &union, &u.FirstLoginAt, &u.LastLoginAt, &u.Logins)
	if errors.Is(err, sql.ErrNoRows) {
		return MiniProgramUser{}, ErrNotFound
	}
	if err != nil {
		return MiniProgramUser{}, fmt.Errorf("follower: mini-program user %s: %w", openid, err)
	}
	u.UnionID = union.String
	u.FirstLoginAt, u.LastLoginAt = u.FirstLoginAt.UTC(), u.LastLoginAt.UTC()
	return u, nil
}

// Person returns every openid known with unionid, followers first, each
// group ordered by account. A unionid nobody has gives an empty person.
func (s *Store) Person(ctx context.Context, unionid string) (Person, error) {
	return person(ctx, s.db, unionid)
}

func person(ctx context.Context, q execQuerier, unionid string) (Person, error) {
	p := Person{UnionID: unionid, Identities: []Identity{}}
	if unionid == "" {
		return p, nil
	}
	rows, err := q.QueryContext(ctx, `
SELECT account, openid, subscribed, 0 AS mp FROM followers WHERE unionid = $1
UNION ALL
SELECT account, openid, FALSE, 1 FROM miniprogram_users WHERE unionid = $1
ORDER BY 4, 1, 2`, unionid)
	if err != nil {
		return p, fmt.Errorf("follower: person %s: %w", unionid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id         Identity
			subscribed bool
			mp         int
		)
		if err := rows.Scan(&id.Account, &id.OpenID, &subscribed, &mp); err != nil {
			return p, fmt.Errorf("follower: person %s: %w", unionid, err)
		}
		if mp == 1 {
			id.Kind = KindMiniProgram
		} else {
			id.Kind = KindOfficialAccount
			id.Subscribed = &subscribed
		}
		p.Identities = append(p.Identities, id)
	}
	if err := rows.Err(); err != nil {
		return p, fmt.Errorf("follower: person %s: %w", unionid, err)
	}
	return p, nil
}

// UnionIDOf returns the unionid known for an openid of an account
// (follower or mini-program user), "" when none is known.
func (s *Store) UnionIDOf(ctx context.Context, account, openid string) (string, error) {
	return unionIDOf(ctx, s.db, account, openid)
}

func unionIDOf(ctx context.Context, q execQuerier, account, openid string) (string, error) {
	var u sql.NullString
	err := q.QueryRowContext(ctx, `
SELECT unionid FROM followers WHERE account = $1 AND openid = $2 AND unionid IS NOT NULL
UNION ALL
SELECT unionid FROM miniprogram_users WHERE account = $1 AND openid = $2 AND unionid IS NOT NULL`, account, openid).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("follower: unionid of %s: %w", openid, err)
	}
	return u.String, nil
}
