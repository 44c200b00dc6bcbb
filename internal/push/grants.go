package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Subscription grants. A one-time subscription template allows one send
// per "accept" of the user; WeChat does not say how many are left, so
// wxgate counts them: from subscribe_msg_popup_event (a popup on an OA page
// or, with a callback configured, in the mini program) and from the mini
// program reporting the result of wx.requestSubscribeMessage. The same
// accept reported both ways within confirmWindow counts once.

// Grant states.
const (
	grantAvailable = "available"
	grantReserved  = "reserved"
	grantUsed      = "used"
	grantRevoked   = "revoked"
)

// Grant sources.
const (
	grantFromEvent = "event"
	grantFromAPI   = "api"
)

// confirmWindow is how long an accept reported one way waits for the same
// accept reported the other way.
const confirmWindow = 10 * time.Minute

// GrantReport is the body of POST /api/v1/subscriptions/grants: the result
// of wx.requestSubscribeMessage for one user.
type GrantReport struct {
	Account string `json:"account"`
	OpenID  string `json:"openid"`
	// Results maps template ids to accept, reject, ban or filter, as
	// wx.requestSubscribeMessage's success callback gives them (its errMsg
	// key is ignored).
	Results map[string]string `json:"results"`
}

// GrantSummary is a user's unused grants per template.
type GrantSummary struct {
	Account   string       `json:"account"`
	OpenID    string       `json:"openid"`
	Templates []GrantCount `json:"templates"`
}

// GrantCount is the number of unused grants of one template.
type GrantCount struct {
	TemplateID string `json:"template_id"`
	Available  int    `json:"available"`
}

// ReportGrants records the accepts of a wx.requestSubscribeMessage result.
func (s *Service) ReportGrants(ctx context.Context, r GrantReport) (GrantSummary, error) {
	if _, err := s.account(r.Account); err != nil {
		return GrantSummary{}, err
	}
	if strings.TrimSpace(r.OpenID) == "" {
		return GrantSummary{}, problem.Invalidf("openid_required", "openid", "openid is required — 请填写 openid")
	}
	if len(r.Results) == 0 {
		return GrantSummary{}, problem.Invalidf("results_required", "results",
			`results is required: the object wx.requestSubscribeMessage returns, {"TEMPLATE_ID":"accept"} — 请填写 results`)
	}
	ids := sortedKeys(r.Results)
	for _, id := range ids {
		if id == "errMsg" {
			continue
		}
		switch r.Results[id] {
		case "accept", "reject", "ban", "filter":
		default:
			return GrantSummary{}, problem.Invalidf("invalid_result", "results."+id,
				"results.%s must be accept, reject, ban or filter, got %q — results.%s 只能是 accept、reject、ban 或 filter", id, r.Results[id], id)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return GrantSummary{}, fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		if id != "errMsg" && r.Results[id] == "accept" {
			if err := s.addGrant(ctx, tx, r.Account, r.OpenID, id, grantFromAPI); err != nil {
				return GrantSummary{}, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return GrantSummary{}, fmt.Errorf("push: commit: %w", err)
	}
	return s.Grants(ctx, r.Account, r.OpenID)
}

// Grants returns a user's unused grants.
func (s *Service) Grants(ctx context.Context, account, openid string) (GrantSummary, error) {
	if _, err := s.account(account); err != nil {
		return GrantSummary{}, err
	}
	if openid == "" {
		return GrantSummary{}, problem.Invalidf("openid_required", "openid", "openid is required — 请填写 openid")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT template_id, count(*) FROM push_grants
WHERE account = $1 AND openid = $2 AND status = $3 GROUP BY template_id`, account, openid, grantAvailable)
	if err != nil {
		return GrantSummary{}, fmt.Errorf("push: grants: %w", err)
	}
	defer rows.Close()
	out := GrantSummary{Account: account, OpenID: openid, Templates: []GrantCount{}}
	for rows.Next() {
		var c GrantCount
		if err := rows.Scan(&c.TemplateID, &c.Available); err != nil {
			return GrantSummary{}, fmt.Errorf("push: grants: %w", err)
		}
		out.Templates = append(out.Templates, c)
	}
	sort.Slice(out.Templates, func(i, j int) bool { return out.Templates[i].TemplateID < out.Templates[j].TemplateID })
	return out, rows.Err()
}

// addGrant records one accept, or confirms the same accept reported the
// other way moments ago.
func (s *Service) addGrant(ctx context.Context, tx *sql.Tx, account, openid, templateID, source string) error {
	now := s.stamp()
	other := grantFromAPI
	if source == grantFromAPI {
		other = grantFromEvent
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM push_grants WHERE account = $1 AND openid = $2 AND template_id = $3
AND source = $4 AND NOT confirmed AND created_at >= $5 ORDER BY id LIMIT 1`,
		account, openid, templateID, other, db.Timestamp(now.Add(-confirmWindow))).Scan(&id)
	switch {
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE push_grants SET confirmed = TRUE, updated_at = $1 WHERE id = $2`, now, id)
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO push_grants (account, openid, template_id, status, source, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)`, account, openid, templateID, grantAvailable, source, now)
	}
	if err != nil {
		return fmt.Errorf("push: record grant: %w", err)
	}
	return nil
}

// revokeGrants drops a user's unused grants of a template (they turned it
// off).
func (s *Service) revokeGrants(ctx context.Context, tx *sql.Tx, account, openid, templateID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE push_grants SET status = $1, updated_at = $2
WHERE account = $3 AND openid = $4 AND template_id = $5 AND status = $6`,
		grantRevoked, s.stamp(), account, openid, templateID, grantAvailable)
	if err != nil {
		return fmt.Errorf("push: revoke grants: %w", err)
	}
	return nil
}

// reserveGrant takes one unused grant for a send; 0 when there is none. A
// long-term grant is never used up.
func reserveGrant(ctx context.Context, tx *sql.Tx, account, openid, templateID string, now time.Time) (int64, error) {
	for range 3 {
		var (
			id       int64
			longTerm bool
		)
		err := tx.QueryRowContext(ctx, `SELECT id, long_term FROM push_grants WHERE account = $1 AND openid = $2 AND template_id = $3
AND status = $4 ORDER BY long_term DESC, id LIMIT 1`, account, openid, templateID, grantAvailable).Scan(&id, &longTerm)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("push: find grant: %w", err)
		}
		if longTerm {
			return id, nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE push_grants SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
			grantReserved, now, id, grantAvailable)
		if err != nil {
			return 0, fmt.Errorf("push: reserve grant: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return id, nil
		}
		// Another send took it first; look again.
	}
	return 0, nil
}

// setGrant moves a reserved grant on (a long-term grant stays available).
func setGrant(ctx context.Context, tx *sql.Tx, id int64, state string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `UPDATE push_grants SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4 AND NOT long_term`,
		state, now, id, grantReserved)
	if err != nil {
		return fmt.Errorf("push: update grant %d: %w", id, err)
	}
	return nil
}
