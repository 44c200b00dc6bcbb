package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/problem"
)

// Follower attributes are the business's own variables of a follower:
// city, location (a QWeather LocationID), birthday, anniversary … Schedules
// read them as .Attr.name, and the attribute city as .City. They live in
// follower_attributes, apart from the followers synced from WeChat, so they
// can be set before the follower is known and survive syncs.

// Limits of attributes.
const (
	maxAttributes  = 50
	maxAttrValue   = 1000
	attrNameFormat = `^[A-Za-z_][A-Za-z0-9_]{0,63}$`
)

var attrName = regexp.MustCompile(attrNameFormat)

// Attributes returns a follower's attributes (empty when none are set).
func (s *Service) Attributes(ctx context.Context, account, openid string) (map[string]string, error) {
	if err := s.checkFollowerRef(account, openid); err != nil {
		return nil, err
	}
	out, err := s.attributesOf(ctx, account, []string{openid})
	if err != nil {
		return nil, err
	}
	if m := out[openid]; m != nil {
		return m, nil
	}
	return map[string]string{}, nil
}

// SetAttributes replaces a follower's attributes, or with merge changes
// only the given names (a nil value removes one). It returns the result.
func (s *Service) SetAttributes(ctx context.Context, account, openid string, attrs map[string]*string, merge bool) (map[string]string, error) {
	if err := s.checkFollowerRef(account, openid); err != nil {
		return nil, err
	}
	for name, v := range attrs {
		if !attrName.MatchString(name) {
			return nil, problem.Invalidf("invalid_attribute", "attributes."+name,
				"attribute name %q must start with a letter or _ and use letters, digits and _ (at most 64) — 属性名只能包含字母、数字和下划线", name)
		}
		if v != nil && utf8.RuneCountInString(*v) > maxAttrValue {
			return nil, problem.Invalidf("invalid_attribute", "attributes."+name, "attribute %s is longer than %d characters — 属性 %s 过长", name, maxAttrValue, name)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("schedule: attributes: %w", err)
	}
	defer tx.Rollback()
	result := map[string]string{}
	if merge {
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT attributes FROM follower_attributes WHERE account = $1 AND openid = $2`, account, openid).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("schedule: attributes: %w", err)
		default:
			if err := json.Unmarshal([]byte(raw), &result); err != nil {
				return nil, fmt.Errorf("schedule: attributes of %s: %w", openid, err)
			}
		}
	}
	for name, v := range attrs {
		if v == nil {
			delete(result, name)
		} else {
			result[name] = strings.TrimSpace(*v)
		}
	}
	if len(result) > maxAttributes {
		return nil, problem.Invalidf("too_many_attributes", "attributes", "at most %d attributes per follower — 每位粉丝最多 %d 个属性", maxAttributes, maxAttributes)
	}
	b, _ := json.Marshal(result)
	if _, err := tx.ExecContext(ctx, `
INSERT INTO follower_attributes (account, openid, attributes, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (account, openid) DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at`,
		account, openid, string(b), s.stamp()); err != nil {
		return nil, fmt.Errorf("schedule: attributes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("schedule: attributes: %w", err)
	}
	return result, nil
}

func (s *Service) checkFollowerRef(account, openid string) error {
	if account == "" {
		return problem.Invalidf("account_required", "account", "account is required (?account=…) — 请指定 account（账号名）")
	}
	if _, ok := s.accounts[account]; !ok {
		return problem.NotFoundf("account_not_found", "account", "unknown account %q — 账号 %q 不存在", account, account)
	}
	if strings.TrimSpace(openid) == "" || len(openid) > 128 {
		return problem.Invalidf("invalid_openid", "openid", "openid is required — 请指定 openid")
	}
	return nil
}

// attributesOf reads the attributes of some followers of an account.
func (s *Service) attributesOf(ctx context.Context, account string, openids []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for start := 0; start < len(openids); start += inChunk {
		part := openids[start:min(start+inChunk, len(openids))]
		query, args := inQuery(s.db.Dialect, `SELECT openid, attributes FROM follower_attributes WHERE account = $1 AND openid IN (%s)`,
			[]any{account}, part)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("schedule: attributes: %w", err)
		}
		for rows.Next() {
			var openid, raw string
			if err := rows.Scan(&openid, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("schedule: attributes: %w", err)
			}
			m := map[string]string{}
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				rows.Close()
				return nil, fmt.Errorf("schedule: attributes of %s: %w", openid, err)
			}
			out[openid] = m
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("schedule: attributes: %w", err)
		}
	}
	return out, nil
}
