package follower

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// FollowerFilter selects followers for Search. Every field is optional.
type FollowerFilter struct {
	Account    string
	Subscribed *bool
	// Bound: whether the follower (or their person, by unionid) has an
	// active binding.
	Bound *bool
	// TagID: followers with this WeChat tag.
	TagID *int64
	// Text matches part of the openid, unionid, remark or a bound
	// external id, ignoring case.
	Text string
	// Cursor is the NextCursor of the previous page.
	Cursor string
	// Limit defaults to 50, at most 500.
	Limit int
}

// ErrBadCursor is returned for a cursor Search did not make.
var ErrBadCursor = problem.New(problem.Invalid, "invalid_cursor", "cursor", "the cursor is not one this API returned — cursor 无效")

const searchColumns = `f.account, f.openid, f.unionid, f.subscribed, f.subscribed_at, f.unsubscribed_at, f.subscribe_scene, f.qr_scene,
    f.qr_scene_str, f.last_event_key, f.last_ticket, f.language, f.remark, f.tag_ids, f.profile_fetched_at, f.created_at, f.updated_at`

// Search returns one page of followers ordered by account and openid, and
// the cursor of the next page ("" after the last).
func (s *Store) Search(ctx context.Context, f FollowerFilter) ([]Follower, string, error) {
	f.Limit = db.PageLimit(f.Limit, 50, 500)
	var where []string
	p := db.NewParams()
	arg := p.Add
	if f.Account != "" {
		where = append(where, "f.account = "+arg(f.Account))
	}
	if f.Subscribed != nil {
		where = append(where, "f.subscribed = "+arg(*f.Subscribed))
	}
	if f.Bound != nil {
		cond := `EXISTS (SELECT 1 FROM bindings b WHERE b.ended_at IS NULL AND ((b.account = f.account AND b.openid = f.openid)
    OR (f.unionid IS NOT NULL AND b.unionid = f.unionid)))`
		if !*f.Bound {
			cond = "NOT " + cond
		}
		where = append(where, cond)
	}
	if f.TagID != nil {
		if s.db.Dialect == db.Postgres {
			where = append(where, "f.tag_ids @> jsonb_build_array("+arg(*f.TagID)+"::bigint)")
		} else {
			where = append(where, "EXISTS (SELECT 1 FROM json_each(f.tag_ids) WHERE json_each.value = "+arg(*f.TagID)+")")
		}
	}
	if t := strings.TrimSpace(f.Text); t != "" {
		p := arg("%" + escapeLike(strings.ToLower(t)) + "%")
		where = append(where, `(LOWER(f.openid) LIKE `+p+` ESCAPE '\' OR LOWER(COALESCE(f.unionid, '')) LIKE `+p+` ESCAPE '\'
    OR LOWER(f.remark) LIKE `+p+` ESCAPE '\'
    OR EXISTS (SELECT 1 FROM bindings b WHERE b.ended_at IS NULL AND LOWER(b.external_id) LIKE `+p+` ESCAPE '\'
        AND ((b.account = f.account AND b.openid = f.openid) OR (f.unionid IS NOT NULL AND b.unionid = f.unionid))))`)
	}
	if f.Cursor != "" {
		account, openid, ok := decodeCursor(f.Cursor)
		if !ok {
			return nil, "", ErrBadCursor
		}
		a, o := arg(account), arg(openid)
		where = append(where, "(f.account > "+a+" OR (f.account = "+a+" AND f.openid > "+o+"))")
	}
	query := `SELECT ` + searchColumns + ` FROM followers f`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY f.account, f.openid LIMIT " + arg(f.Limit+1)
	rows, err := s.db.QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return nil, "", fmt.Errorf("follower: search: %w", err)
	}
	defer rows.Close()
	out := []Follower{}
	for rows.Next() {
		fl, err := scanFollower(rows)
		if err != nil {
			return nil, "", fmt.Errorf("follower: search: %w", err)
		}
		out = append(out, fl)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("follower: search: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(last.Account, last.OpenID)
	}
	return out, next, nil
}

func scanFollower(row interface{ Scan(...any) error }) (Follower, error) {
	var (
		f                                  Follower
		unionID                            sql.NullString
		subscribedAt, unsubscribedAt, prof sql.NullTime
		qrScene                            sql.NullInt64
		tags                               string
	)
	err := row.Scan(&f.Account, &f.OpenID, &unionID, &f.Subscribed, &subscribedAt, &unsubscribedAt, &f.SubscribeScene, &qrScene,
		&f.QRSceneStr, &f.LastEventKey, &f.LastTicket, &f.Language, &f.Remark, &tags, &prof, &f.CreatedAt, &f.UpdatedAt)
	if err != nil {
		return Follower{}, err
	}
	if err := json.Unmarshal([]byte(tags), &f.TagIDs); err != nil || f.TagIDs == nil {
		f.TagIDs = []int64{}
	}
	f.UnionID = unionID.String
	f.SubscribedAt = timePtr(subscribedAt)
	f.UnsubscribedAt = timePtr(unsubscribedAt)
	f.ProfileFetchedAt = timePtr(prof)
	if qrScene.Valid {
		v := qrScene.Int64
		f.QRScene = &v
	}
	f.CreatedAt = f.CreatedAt.UTC()
	f.UpdatedAt = f.UpdatedAt.UTC()
	return f, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func encodeCursor(account, openid string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(account + "\x00" + openid))
}

func decodeCursor(c string) (account, openid string, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", false
	}
	account, openid, ok = strings.Cut(string(raw), "\x00")
	return account, openid, ok
}
