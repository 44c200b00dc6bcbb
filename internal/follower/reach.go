package follower

import (
	"context"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// The lookups a send makes to address people: unionids and external ids
// to the account's openids, and the follow state of openids.

// OpenIDsByUnionID returns the account's openid of each unionid it knows,
// as a follower or a mini-program user. When a unionid has several, a
// subscribed follower wins over the rest, then the most recently updated.
func (s *Store) OpenIDsByUnionID(ctx context.Context, account string, unionids []string) (map[string]string, error) {
	out := map[string]string{}
	err := db.InChunks(unionids, func(part []string) error {
		p := db.NewParams(account)
		in := p.In(part)
		rows, err := s.db.QueryContext(ctx, `SELECT unionid, openid, 1 AS k, subscribed, updated_at FROM followers WHERE account = $1 AND unionid IN (`+in+`)
UNION ALL
SELECT unionid, openid, 0, FALSE, last_login_at FROM miniprogram_users WHERE account = $1 AND unionid IN (`+in+`)
ORDER BY 3, 4, 5`, p.Args()...)
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
		return nil, fmt.Errorf("follower: resolving unionids: %w", err)
	}
	return out, nil
}

// OpenIDsByExternalID returns the openids each external id reaches on the
// account (ResolveExternalID); external ids that reach none are absent.
func (s *Store) OpenIDsByExternalID(ctx context.Context, account string, externalIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, id := range externalIDs {
		openids, err := s.ResolveExternalID(ctx, account, id)
		if err != nil {
			return nil, err
		}
		if len(openids) > 0 {
			out[id] = openids
		}
	}
	return out, nil
}

// Subscribed returns the follow state of the openids the account knows as
// followers; an openid never seen is absent.
func (s *Store) Subscribed(ctx context.Context, account string, openids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(openids))
	err := db.InChunks(openids, func(part []string) error {
		p := db.NewParams(account)
		rows, err := s.db.QueryContext(ctx, `SELECT openid, subscribed FROM followers WHERE account = $1 AND openid IN (`+p.In(part)+`)`, p.Args()...)
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
		return nil, fmt.Errorf("follower: follow state: %w", err)
	}
	return out, nil
}
