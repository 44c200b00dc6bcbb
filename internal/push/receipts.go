package push

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// receipt is a delivery result pushed by WeChat.
type receipt struct {
	account string
	msgID   int64
	openid  string
	status  string // delivered | blocked | failed
	detail  string
	errcode sql.NullInt64
	at      time.Time
}

// WantsPush tells the callback which pushes Hook acts on: the events below.
func WantsPush(m *wechat.Message) bool {
	if !m.IsEvent() {
		return false
	}
	switch m.Event {
	case wechat.EventTemplateSendJobFinish, wechat.EventSubscribeMsgSent, wechat.EventSubscribeMsgPopup, wechat.EventSubscribeMsgChange:
		return true
	}
	return false
}

// Hook is the callback hook of the push pipeline (callback.Hook): delivery
// receipts (TEMPLATESENDJOBFINISH, subscribe_msg_sent_event) and
// subscription grants (subscribe_msg_popup_event, subscribe_msg_change_event).
func (s *Service) Hook(ctx context.Context, account string, m *wechat.Message) error {
	if !m.IsEvent() {
		return nil
	}
	switch m.Event {
	case wechat.EventTemplateSendJobFinish:
		if m.JobMsgID == 0 {
			return nil
		}
		rc := receipt{account: account, msgID: m.JobMsgID, openid: m.FromUserName, detail: m.Status, at: s.eventTime(m)}
		switch wechat.TemplateJobStatus(m.Status) {
		case "success":
			rc.status = StatusDelivered
		case "user_block":
			rc.status = StatusBlocked
		default:
			rc.status = StatusFailed
		}
		return s.recordReceipts(ctx, []receipt{rc})
	case wechat.EventSubscribeMsgSent:
		if m.SubscribeMsgSentEvent == nil {
			return nil
		}
		var list []receipt
		for _, it := range m.SubscribeMsgSentEvent.List {
			if it.MsgID == 0 {
				continue
			}
			rc := receipt{account: account, msgID: it.MsgID, openid: m.FromUserName, detail: it.ErrorStatus, at: s.eventTime(m),
				status: StatusDelivered}
			if it.ErrorCode != 0 {
				rc.status = StatusFailed
				rc.errcode = sql.NullInt64{Int64: it.ErrorCode, Valid: true}
			}
			list = append(list, rc)
		}
		return s.recordReceipts(ctx, list)
	case wechat.EventSubscribeMsgPopup, wechat.EventSubscribeMsgChange:
		ev := m.SubscribeMsgPopupEvent
		if m.Event == wechat.EventSubscribeMsgChange {
			ev = m.SubscribeMsgChangeEvent
			if ev == nil { // the old documentation's sample used the popup container
				ev = m.SubscribeMsgPopupEvent
			}
		}
		if ev == nil || m.FromUserName == "" {
			return nil
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("push: begin: %w", err)
		}
		defer tx.Rollback()
		for _, it := range ev.List {
			switch {
			case it.SubscribeStatusString == "accept" && m.Event == wechat.EventSubscribeMsgPopup:
				err = s.addGrant(ctx, tx, account, m.FromUserName, it.TemplateID, grantFromEvent)
			case it.SubscribeStatusString == "reject" && m.Event == wechat.EventSubscribeMsgChange:
				err = s.revokeGrants(ctx, tx, account, m.FromUserName, it.TemplateID)
			}
			if err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	return nil
}

// eventTime is when WeChat says the event happened (CreateTime), or now.
func (s *Service) eventTime(m *wechat.Message) time.Time {
	if m.CreateTime > 0 {
		return db.Timestamp(time.Unix(m.CreateTime, 0))
	}
	return s.stamp()
}

// recordReceipts keeps the receipts and applies them to the recipients
// already marked sent; a recipient marked sent later finds its receipt
// then (markSent).
func (s *Service) recordReceipts(ctx context.Context, list []receipt) error {
	if len(list) == 0 {
		return nil
	}
	sort.Slice(list, func(i, j int) bool { return list[i].msgID < list[j].msgID }) // lock order
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	for _, rc := range list {
		if err := s.lockMsgID(ctx, tx, rc.account, rc.msgID); err != nil {
			return err
		}
		var code any
		if rc.errcode.Valid {
			code = rc.errcode.Int64
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO push_receipts (account, msgid, openid, status, detail, errcode, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account, msgid) DO NOTHING`,
			rc.account, rc.msgID, rc.openid, rc.status, rc.detail, code, rc.at); err != nil {
			return fmt.Errorf("push: record receipt %d: %w", rc.msgID, err)
		}
		if err := s.applyReceipt(ctx, tx, rc); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// lockMsgID serialises the worker recording a msgid and the hook recording
// its receipt. Without it, on PostgreSQL, each could miss the other's
// uncommitted row: the receipt would be kept but never applied. SQLite
// transactions are serialised already.
func (s *Service) lockMsgID(ctx context.Context, tx *sql.Tx, account string, msgID int64) error {
	if s.db.Dialect != db.Postgres {
		return nil
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(account))
	_ = binary.Write(h, binary.BigEndian, msgID)
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("push: lock msgid %d: %w", msgID, err)
	}
	return nil
}

// applyReceipt moves the sent (or, arriving late, unconfirmed) recipient
// of a msgid to its final status.
func (s *Service) applyReceipt(ctx context.Context, tx *sql.Tx, rc receipt) error {
	reason := ""
	switch rc.status {
	case StatusBlocked:
		reason = "user_block"
	case StatusFailed:
		reason = "system_failed"
	}
	var code any
	if rc.errcode.Valid {
		code = rc.errcode.Int64
	}
	rows, err := tx.QueryContext(ctx, `UPDATE push_recipients SET status = $1, reason = $2, errcode = COALESCE($3, errcode), errmsg = $4,
    done_at = $5, updated_at = $6
WHERE account = $7 AND msgid = $8 AND status IN ($9, $10) RETURNING id`,
		rc.status, reason, code, rc.detail, db.Timestamp(rc.at), s.stamp(), rc.account, rc.msgID, StatusSent, StatusUnconfirmed)
	if err != nil {
		return fmt.Errorf("push: apply receipt %d: %w", rc.msgID, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("push: apply receipt %d: %w", rc.msgID, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("push: apply receipt %d: %w", rc.msgID, err)
	}
	event := EventMessageDelivered
	if rc.status != StatusDelivered {
		event = EventMessageFailed
	}
	for _, id := range ids {
		if err := s.emit(ctx, tx, event, rc.account, id); err != nil {
			return err
		}
	}
	return nil
}
