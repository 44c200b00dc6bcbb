package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/problem"
)

// ErrNotResendable is returned for a recipient that has not failed: one
// still on its way, delivered, blocked by the follower or skipped is not
// sent again.
var ErrNotResendable = problem.Conflictf("not_resendable", "seq",
	"only a failed recipient can be sent again — 只有发送失败的接收人可以重发")

// ErrRecipientNotFound is returned for a seq the message does not have.
var ErrRecipientNotFound = problem.NotFoundf("recipient_not_found", "seq", "the message has no such recipient — 该消息没有这个接收人")

// Resend queues a failed recipient of a message again, with the message's
// own content; its errcode and times are cleared and it goes through the
// send worker like a new one (rate limit, quota, retries, receipt). A
// subscription message needs a fresh grant from the follower: without one
// it is refused (no_grant).
func (s *Service) Resend(ctx context.Context, messageID string, seq int) (Recipient, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Recipient{}, fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	var (
		id              int64
		account, openid string
		status          string
		fallback        bool
		grantID         sql.NullInt64
		main            string
		messageAccount  string
	)
	err = tx.QueryRowContext(ctx, `
SELECT r.id, r.account, r.openid, r.status, r.fallback, r.grant_id, m.payload, m.account
FROM push_recipients r JOIN push_messages m ON m.id = r.message_id WHERE r.message_id = $1 AND r.seq = $2`,
		messageID, seq).Scan(&id, &account, &openid, &status, &fallback, &grantID, &main, &messageAccount)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM push_messages WHERE id = $1`, messageID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return Recipient{}, ErrMessageNotFound
		}
		return Recipient{}, ErrRecipientNotFound
	}
	if err != nil {
		return Recipient{}, fmt.Errorf("push: read recipient: %w", err)
	}
	if status != StatusFailed {
		return Recipient{}, ErrNotResendable
	}
	now := s.stamp()
	var newGrant any
	if grantID.Valid && !fallback {
		var p payload
		if err := json.Unmarshal([]byte(main), &p); err != nil {
			return Recipient{}, fmt.Errorf("push: payload of message %s: %w", messageID, err)
		}
		gid, err := reserveGrant(ctx, tx, account, openid, p.TemplateID, now)
		if err != nil {
			return Recipient{}, err
		}
		if gid == 0 {
			return Recipient{}, problem.Conflictf(ReasonNoGrant, "seq",
				"the follower has no unused subscription grant for this template left — 该用户没有可用的订阅授权，需要用户再次订阅后才能发送")
		}
		newGrant = gid
	}
	res, err := tx.ExecContext(ctx, `UPDATE push_recipients SET status = $1, reason = '', errcode = NULL, errmsg = '', msgid = NULL,
    sent_at = NULL, done_at = NULL, in_flight_at = NULL, grant_id = $2, updated_at = $3 WHERE id = $4 AND status = $5`,
		StatusQueued, newGrant, now, id, StatusFailed)
	if err != nil {
		return Recipient{}, fmt.Errorf("push: requeue recipient: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Recipient{}, ErrNotResendable // resent by someone else meanwhile
	}
	if _, err := s.opts.Jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{{Args: SendArgs{RecipientID: id}, InsertOpts: s.insertOpts()}}); err != nil {
		return Recipient{}, fmt.Errorf("push: queue the resend: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Recipient{}, fmt.Errorf("push: commit: %w", err)
	}
	s.log.Info("push: recipient queued again", "message", messageID, "seq", seq, "account", messageAccount)
	m, err := s.GetMessage(ctx, messageID, RecipientPage{After: seq - 1, Limit: 1})
	if err != nil {
		return Recipient{}, err
	}
	if len(m.Recipients) == 0 {
		return Recipient{}, ErrRecipientNotFound
	}
	return m.Recipients[0], nil
}
