package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// inChunk is how many values go in one IN (…) list.
const inChunk = 500

// audience lists a schedule's recipients: one target per openid (external
// ids that are not bound get a skipped target of their own).
func (s *Service) audience(ctx context.Context, sc *Schedule) ([]*target, error) {
	a := sc.Audience
	switch a.Kind {
	case AudienceAll:
		return s.followerTargets(ctx, `f.account = $1 AND f.subscribed`, sc.Account)
	case AudienceTag:
		cond := `EXISTS (SELECT 1 FROM json_each(f.tag_ids) WHERE json_each.value = $2)`
		if s.db.Dialect == db.Postgres {
			cond = `f.tag_ids @> jsonb_build_array($2::bigint)`
		}
		return s.followerTargets(ctx, `f.account = $1 AND f.subscribed AND `+cond, sc.Account, a.TagID)
	case AudienceOpenIDs:
		known, err := s.followersByOpenID(ctx, sc.Account, a.OpenIDs)
		if err != nil {
			return nil, err
		}
		out := make([]*target, 0, len(a.OpenIDs))
		for _, o := range a.OpenIDs {
			out = append(out, &target{toKind: "openid", toValue: o, rc: Recipient{OpenID: o, Follower: known[o].FollowerInfo, UnionID: known[o].unionID}})
		}
		return out, nil
	case AudienceExternalIDs:
		var out []*target
		type bound struct{ external, openid string }
		var list []bound
		for _, ext := range a.ExternalIDs {
			var openids []string
			if s.opts.Bindings != nil {
				var err error
				if openids, err = s.opts.Bindings.ResolveExternalID(ctx, sc.Account, ext); err != nil {
					return nil, fmt.Errorf("schedule: resolve external id %s: %w", ext, err)
				}
			}
			if len(openids) == 0 {
				out = append(out, &target{toKind: "external_id", toValue: ext, status: rowSkipped, reason: ReasonNotBound})
				continue
			}
			for _, o := range openids {
				list = append(list, bound{ext, o})
			}
		}
		openids := make([]string, len(list))
		for i, b := range list {
			openids[i] = b.openid
		}
		known, err := s.followersByOpenID(ctx, sc.Account, openids)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, b := range list {
			t := &target{toKind: "external_id", toValue: b.external,
				rc: Recipient{OpenID: b.openid, ExternalID: b.external, Follower: known[b.openid].FollowerInfo, UnionID: known[b.openid].unionID}}
			if seen[b.openid] {
				t.status, t.reason = rowSkipped, ReasonDuplicate
			}
			seen[b.openid] = true
			out = append(out, t)
		}
		return out, nil
	}
	return nil, problem.Invalidf("invalid_audience", "audience.kind", "unknown audience kind %q — audience.kind 无效", a.Kind)
}

// followerRow is a followers row as a schedule reads it.
type followerRow struct {
	FollowerInfo
	unionID string
}

const followerCols = `f.openid, f.unionid, f.subscribed, f.subscribed_at, f.remark, f.language, f.tag_ids`

func scanFollower(rows *sql.Rows) (string, followerRow, error) {
	var (
		openid string
		f      followerRow
		union  sql.NullString
		at     sql.NullTime
		tags   string
	)
	if err := rows.Scan(&openid, &union, &f.Subscribed, &at, &f.Remark, &f.Language, &tags); err != nil {
		return "", f, err
	}
	f.Known = true
	f.unionID = union.String
	if at.Valid {
		f.SubscribedAt = at.Time.UTC()
	}
	if err := json.Unmarshal([]byte(tags), &f.TagIDs); err != nil {
		return "", f, fmt.Errorf("tag_ids of %s: %w", openid, err)
	}
	return openid, f, nil
}

// followerTargets lists the followers matching a condition on f.
func (s *Service) followerTargets(ctx context.Context, where string, args ...any) ([]*target, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+followerCols+` FROM followers f WHERE `+where+` ORDER BY f.openid`, args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: audience: %w", err)
	}
	defer rows.Close()
	var out []*target
	for rows.Next() {
		openid, f, err := scanFollower(rows)
		if err != nil {
			return nil, fmt.Errorf("schedule: audience: %w", err)
		}
		out = append(out, &target{toKind: "openid", toValue: openid, rc: Recipient{OpenID: openid, UnionID: f.unionID, Follower: f.FollowerInfo}})
	}
	return out, rows.Err()
}

// followersByOpenID reads the followers rows of some openids.
func (s *Service) followersByOpenID(ctx context.Context, account string, openids []string) (map[string]followerRow, error) {
	out := make(map[string]followerRow, len(openids))
	for start := 0; start < len(openids); start += inChunk {
		part := openids[start:min(start+inChunk, len(openids))]
		query, args := inQuery(s.db.Dialect, `SELECT `+followerCols+` FROM followers f WHERE f.account = $1 AND f.openid IN (%s)`, []any{account}, part)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("schedule: followers: %w", err)
		}
		for rows.Next() {
			openid, f, err := scanFollower(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("schedule: followers: %w", err)
			}
			out[openid] = f
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("schedule: followers: %w", err)
		}
	}
	return out, nil
}

// inQuery fills the %s of format with placeholders for values, numbered
// after the fixed parameters; ?NNN on SQLite, which looks $NNN up by name.
func inQuery[T any](dialect db.Dialect, format string, fixed []any, values []T) (string, []any) {
	args := make([]any, 0, len(fixed)+len(values))
	args = append(args, fixed...)
	for i := len(fixed); i >= 1; i-- {
		format = strings.ReplaceAll(format, "$"+strconv.Itoa(i), placeholder(dialect, i))
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(placeholder(dialect, len(args)+1))
		args = append(args, v)
	}
	return fmt.Sprintf(format, b.String()), args
}

func placeholder(dialect db.Dialect, n int) string {
	if dialect == db.SQLite {
		return "?" + strconv.Itoa(n)
	}
	return "$" + strconv.Itoa(n)
}
