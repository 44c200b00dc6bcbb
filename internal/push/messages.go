package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Message is a send request as GET /api/v1/messages/{id} shows it.
type Message struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"`
	Channel    string    `json:"channel"`
	Template   string    `json:"template,omitempty"`
	TemplateID string    `json:"template_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Total is the number of recipients; Counts counts them per status.
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
	// Done is true when no recipient is queued or sent any more (every one
	// is final: unconfirmed is final too).
	Done       bool        `json:"done"`
	Recipients []Recipient `json:"recipients,omitempty"`
	// NextAfter, when set, is the after= value of the next page of recipients.
	NextAfter int `json:"next_after,omitempty"`
}

// Recipient is one recipient of a message and what became of it.
type Recipient struct {
	Seq        int    `json:"seq"`
	ExternalID string `json:"external_id,omitempty"`
	UnionID    string `json:"unionid,omitempty"`
	OpenID     string `json:"openid,omitempty"`
	Channel    string `json:"channel"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	MsgID      int64  `json:"msgid,omitempty"`
	ErrCode    int    `json:"errcode,omitempty"`
	ErrMsg     string `json:"errmsg,omitempty"`
	Attempts   int    `json:"attempts"`
	// QueuedAt, SentAt and DoneAt time the recipient: accepted, accepted by
	// WeChat, and final (delivered, blocked, failed, skipped or unconfirmed).
	QueuedAt time.Time  `json:"queued_at"`
	SentAt   *time.Time `json:"sent_at,omitempty"`
	DoneAt   *time.Time `json:"done_at,omitempty"`
}

// RecipientPage selects recipients of GetMessage: seq > After, at most
// Limit (default 1000, 0 recipients with Limit < 0).
type RecipientPage struct {
	After int
	Limit int
}

// ErrMessageNotFound is returned for an unknown message id.
var ErrMessageNotFound = problem.NotFoundf("message_not_found", "id", "no such message — 消息不存在")

// GetMessage returns a message with a page of its recipients.
func (s *Service) GetMessage(ctx context.Context, id string, page RecipientPage) (Message, error) {
	var (
		m       Message
		payload string
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, account, channel, template, payload, recipients, created_at FROM push_messages WHERE id = $1`, id).
		Scan(&m.ID, &m.Account, &m.Channel, &m.Template, &payload, &m.Total, &m.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrMessageNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("push: message %s: %w", id, err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	var p struct {
		TemplateID string `json:"template_id"`
	}
	_ = json.Unmarshal([]byte(payload), &p)
	m.TemplateID = p.TemplateID
	counts, err := s.counts(ctx, []string{id})
	if err != nil {
		return Message{}, err
	}
	m.Counts = counts[id]
	m.Done = m.Counts[StatusQueued] == 0 && m.Counts[StatusSent] == 0

	limit := page.Limit
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 {
		return m, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+recipientFields+` FROM push_recipients WHERE message_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		id, page.After, limit+1)
	if err != nil {
		return Message{}, fmt.Errorf("push: recipients of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return Message{}, fmt.Errorf("push: recipients of %s: %w", id, err)
		}
		m.Recipients = append(m.Recipients, r)
	}
	if err := rows.Err(); err != nil {
		return Message{}, err
	}
	if len(m.Recipients) > limit {
		m.Recipients = m.Recipients[:limit]
		m.NextAfter = m.Recipients[limit-1].Seq
	}
	return m, nil
}

// recipientFields are the push_recipients columns scanRecipient reads.
const recipientFields = `seq, to_kind, to_value, openid, channel, status, reason, msgid, errcode, errmsg, attempts, created_at, sent_at, done_at`

// scanRecipient reads recipientFields, then extra (further columns of the
// query, in order).
func scanRecipient(sc interface{ Scan(...any) error }, extra ...any) (Recipient, error) {
	var (
		r           Recipient
		kind, value string
		msgID, code sql.NullInt64
		sent, done  sql.NullTime
	)
	dest := append([]any{&r.Seq, &kind, &value, &r.OpenID, &r.Channel, &r.Status, &r.Reason, &msgID, &code, &r.ErrMsg, &r.Attempts,
		&r.QueuedAt, &sent, &done}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return Recipient{}, err
	}
	switch kind {
	case toUnionID:
		r.UnionID = value
	case toExternalID:
		r.ExternalID = value
	}
	r.MsgID, r.ErrCode = msgID.Int64, int(code.Int64)
	r.QueuedAt = r.QueuedAt.UTC()
	r.SentAt, r.DoneAt = timePtr(sent), timePtr(done)
	return r, nil
}

// Delivery is one message to one follower, for the follower's timeline.
type Delivery struct {
	MessageID string `json:"message_id"`
	Template  string `json:"template,omitempty"`
	Recipient
}

// DeliveriesTo returns the newest messages to an openid of an account
// (at most limit, default 50), newest first, with each one's state.
func (s *Service) DeliveriesTo(ctx context.Context, account, openid string, limit int) ([]Delivery, error) {
	limit = db.PageLimit(limit, 50, 500)
	rows, err := s.db.QueryContext(ctx, `SELECT `+prefixed("r.", recipientFields)+`, m.id, m.template
FROM push_recipients r JOIN push_messages m ON m.id = r.message_id
WHERE r.account = $1 AND r.openid = $2 ORDER BY r.id DESC LIMIT $3`, account, openid, limit)
	if err != nil {
		return nil, fmt.Errorf("push: messages to %s: %w", openid, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if d.Recipient, err = scanRecipient(rows, &d.MessageID, &d.Template); err != nil {
			return nil, fmt.Errorf("push: messages to %s: %w", openid, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, p := range parts {
		parts[i] = alias + p
	}
	return strings.Join(parts, ", ")
}

// counts returns the recipients per status of each message.
func (s *Service) counts(ctx context.Context, ids []string) (map[string]map[string]int, error) {
	out := make(map[string]map[string]int, len(ids))
	for _, id := range ids {
		out[id] = map[string]int{}
	}
	err := db.InChunks(ids, func(part []string) error {
		p := db.NewParams()
		rows, err := s.db.QueryContext(ctx, `SELECT message_id, status, count(*) FROM push_recipients WHERE message_id IN (`+p.In(part)+`) GROUP BY message_id, status`,
			p.Args()...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id, status string
				n          int
			)
			if err := rows.Scan(&id, &status, &n); err != nil {
				return err
			}
			out[id][status] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("push: recipient counts: %w", err)
	}
	return out, nil
}

// ListFilter selects messages, newest first.
type ListFilter struct {
	Account  string
	Channel  string
	Template string
	// Status keeps messages with at least one recipient in this status.
	Status string
	// Recipient keeps messages to this openid, unionid or external id.
	Recipient string
	Since     time.Time
	Until     time.Time
	// Before is the id of the last message of the previous page.
	Before string
	Limit  int
}

// MessageList is a page of messages.
type MessageList struct {
	Messages []Message `json:"messages"`
	// Next is the before= value of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// ListMessages lists messages without their recipients.
func (s *Service) ListMessages(ctx context.Context, f ListFilter) (MessageList, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	switch f.Status {
	case "", StatusQueued, StatusSent, StatusDelivered, StatusBlocked, StatusFailed, StatusSkipped, StatusUnconfirmed:
	default:
		return MessageList{}, problem.Invalidf("invalid_status", "status",
			"status must be queued, sent, delivered, blocked, failed, skipped or unconfirmed — status 只能是 queued、sent、delivered、blocked、failed、skipped 或 unconfirmed")
	}
	var where []string
	p := db.NewParams()
	arg := p.Add
	if f.Account != "" {
		where = append(where, "m.account = "+arg(f.Account))
	}
	if f.Channel != "" {
		where = append(where, "m.channel = "+arg(f.Channel))
	}
	if f.Template != "" {
		where = append(where, "m.template = "+arg(f.Template))
	}
	if !f.Since.IsZero() {
		where = append(where, "m.created_at >= "+arg(db.Timestamp(f.Since)))
	}
	if !f.Until.IsZero() {
		where = append(where, "m.created_at < "+arg(db.Timestamp(f.Until)))
	}
	if f.Status != "" {
		where = append(where, "EXISTS (SELECT 1 FROM push_recipients r WHERE r.message_id = m.id AND r.status = "+arg(f.Status)+")")
	}
	if f.Recipient != "" {
		v := arg(f.Recipient)
		where = append(where, "EXISTS (SELECT 1 FROM push_recipients r WHERE r.message_id = m.id AND (r.openid = "+v+" OR r.to_value = "+v+"))")
	}
	if f.Before != "" {
		var at time.Time
		err := s.db.QueryRowContext(ctx, `SELECT created_at FROM push_messages WHERE id = $1`, f.Before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return MessageList{}, problem.Invalidf("invalid_cursor", "before", "before names no message — before 参数无效")
		}
		if err != nil {
			return MessageList{}, fmt.Errorf("push: list cursor: %w", err)
		}
		a, b := arg(db.Timestamp(at)), arg(f.Before)
		where = append(where, "(m.created_at < "+a+" OR (m.created_at = "+a+" AND m.id < "+b+"))")
	}
	query := `SELECT m.id, m.account, m.channel, m.template, m.payload, m.recipients, m.created_at FROM push_messages m`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY m.created_at DESC, m.id DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.db.QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return MessageList{}, fmt.Errorf("push: list messages: %w", err)
	}
	defer rows.Close()
	out := MessageList{Messages: []Message{}}
	var ids []string
	for rows.Next() {
		var (
			m       Message
			payload string
		)
		if err := rows.Scan(&m.ID, &m.Account, &m.Channel, &m.Template, &payload, &m.Total, &m.CreatedAt); err != nil {
			return MessageList{}, fmt.Errorf("push: list messages: %w", err)
		}
		var p struct {
			TemplateID string `json:"template_id"`
		}
		_ = json.Unmarshal([]byte(payload), &p)
		m.TemplateID, m.CreatedAt = p.TemplateID, m.CreatedAt.UTC()
		out.Messages = append(out.Messages, m)
		ids = append(ids, m.ID)
	}
	if err := rows.Err(); err != nil {
		return MessageList{}, err
	}
	rows.Close()
	if len(out.Messages) > f.Limit {
		out.Messages = out.Messages[:f.Limit]
		ids = ids[:f.Limit]
		out.Next = ids[f.Limit-1]
	}
	counts, err := s.counts(ctx, ids)
	if err != nil {
		return MessageList{}, err
	}
	for i := range out.Messages {
		m := &out.Messages[i]
		m.Counts = counts[m.ID]
		m.Done = m.Counts[StatusQueued] == 0 && m.Counts[StatusSent] == 0
	}
	return out, nil
}

// RecipientEvent is the data of message.* events.
type RecipientEvent struct {
	MessageID string    `json:"message_id"`
	Account   string    `json:"account"`
	Recipient Recipient `json:"recipient"`
}

// eventColumns are the columns of push_recipients an event carries, in
// the order scanEvent reads them.
const eventColumns = `message_id, seq, to_kind, to_value, openid, channel, status, reason, msgid, errcode, errmsg, attempts,
    created_at, sent_at, done_at`

// scanEvent reads eventColumns into an event of account.
func scanEvent(row *sql.Row, account string) (RecipientEvent, error) {
	var (
		e           RecipientEvent
		kind, value string
		msgID, code sql.NullInt64
		sent, done  sql.NullTime
	)
	r := &e.Recipient
	if err := row.Scan(&e.MessageID, &r.Seq, &kind, &value, &r.OpenID,
		&r.Channel, &r.Status, &r.Reason, &msgID, &code, &r.ErrMsg, &r.Attempts, &r.QueuedAt, &sent, &done); err != nil {
		return e, err
	}
	switch kind {
	case toUnionID:
		r.UnionID = value
	case toExternalID:
		r.ExternalID = value
	}
	r.MsgID, r.ErrCode = msgID.Int64, int(code.Int64)
	r.QueuedAt = r.QueuedAt.UTC()
	r.SentAt, r.DoneAt = timePtr(sent), timePtr(done)
	e.Account = account
	return e, nil
}

// emit raises an event about a recipient inside tx.
func (s *Service) emit(ctx context.Context, tx *sql.Tx, typ, account string, recipientID int64) error {
	if s.opts.Events == nil {
		return nil
	}
	e, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM push_recipients WHERE id = $1`, recipientID), account)
	if err != nil {
		return fmt.Errorf("push: event of recipient %d: %w", recipientID, err)
	}
	return s.opts.Events.PublishTx(ctx, tx, typ, account, e)
}
