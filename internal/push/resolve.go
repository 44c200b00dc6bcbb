package push

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// Resolver finds the openids of people in an account's app.
type Resolver interface {
	// OpenIDsByUnionID returns the account's openid of each unionid it
	// knows.
	OpenIDsByUnionID(ctx context.Context, account string, unionids []string) (map[string]string, error)
	// OpenIDsByExternalID returns the openids bound to each external id in
	// the account (several when a business user bound several phones).
	OpenIDsByExternalID(ctx context.Context, account string, externalIDs []string) (map[string][]string, error)
	// Subscribed returns the follow state of the openids the account knows
	// as followers (absent: never seen).
	Subscribed(ctx context.Context, account string, openids []string) (map[string]bool, error)
}

// FollowerResolver resolves through the tables of internal/follower:
// unionids of followers and mini-program users, follow state, and, when
// Bindings is set (*follower.Store), external ids.
type FollowerResolver struct {
	DB       *db.DB
	Bindings ExternalIDResolver
}

// ExternalIDResolver returns the openids of an account an external id is
// bound to; *follower.Store is one.
type ExternalIDResolver interface {
	ResolveExternalID(ctx context.Context, account, externalID string) ([]string, error)
}

// chunk is how many values go in one IN (…) list.
const chunk = 500

// OpenIDsByUnionID implements Resolver.
func (r *FollowerResolver) OpenIDsByUnionID(ctx context.Context, account string, unionids []string) (map[string]string, error) {
	out := map[string]string{}
	err := inChunks(unionids, func(part []string) error {
		query, args := inQuery(`SELECT unionid, openid, 1 AS k, subscribed, updated_at FROM followers WHERE account = $1 AND unionid IN (%[1]s)
UNION ALL
SELECT unionid, openid, 0, FALSE, last_login_at FROM miniprogram_users WHERE account = $1 AND unionid IN (%[1]s)
ORDER BY 3, 4, 5`, []any{account}, part)
		rows, err := r.DB.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				u, o string
				k    int
				sub  bool
				at   time.Time
			)
			if err := rows.Scan(&u, &o, &k, &sub, &at); err != nil {
				return err
			}
			out[u] = o // the last row wins: subscribed, most recently updated
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("push: resolve unionids: %w", err)
	}
	return out, nil
}

// OpenIDsByExternalID implements Resolver.
func (r *FollowerResolver) OpenIDsByExternalID(ctx context.Context, account string, externalIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if r.Bindings == nil {
		return out, nil
	}
	for _, id := range externalIDs {
		openids, err := r.Bindings.ResolveExternalID(ctx, account, id)
		if err != nil {
			return nil, err
		}
		if len(openids) > 0 {
			out[id] = openids
		}
	}
	return out, nil
}

// Subscribed implements Resolver.
func (r *FollowerResolver) Subscribed(ctx context.Context, account string, openids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(openids))
	err := inChunks(openids, func(part []string) error {
		query, args := inQuery(`SELECT openid, subscribed FROM followers WHERE account = $1 AND openid IN (%s)`, []any{account}, part)
		rows, err := r.DB.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			var sub bool
			if err := rows.Scan(&o, &sub); err != nil {
				return err
			}
			out[o] = sub
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("push: follow state: %w", err)
	}
	return out, nil
}

// openWindows returns the openids whose customer-service window is open
// at now, from the inbound log: a user message within 48 hours, or a
// follow, QR scan or menu click within the last minute.
func (s *Service) openWindows(ctx context.Context, account string, openids []string) (map[string]bool, error) {
	now := s.now()
	msgSince := db.Timestamp(now.Add(-WindowMessage))
	evSince := db.Timestamp(now.Add(-WindowEvent))
	out := map[string]bool{}
	err := inChunks(openids, func(part []string) error {
		query, args := inQuery(`SELECT DISTINCT openid FROM inbound_messages WHERE account = $1 AND openid IN (%s)
AND ((msg_type <> 'event' AND received_at >= $2)
  OR (msg_type = 'event' AND event IN ('subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg') AND received_at >= $3))`,
			[]any{account, msgSince, evSince}, part)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				return err
			}
			out[o] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("push: customer-service windows: %w", err)
	}
	return out, nil
}

func inChunks(values []string, fn func([]string) error) error {
	for start := 0; start < len(values); start += chunk {
		if err := fn(values[start:min(start+chunk, len(values))]); err != nil {
			return err
		}
	}
	return nil
}

// inQuery fills the %s of format with placeholders for values, numbered
// after the fixed parameters ($1 …).
func inQuery(format string, fixed []any, values []string) (string, []any) {
	args := make([]any, 0, len(fixed)+len(values))
	args = append(args, fixed...)
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", len(args)+1)
		args = append(args, v)
	}
	return fmt.Sprintf(format, b.String()), args
}
