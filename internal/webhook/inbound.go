package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Events raised from inbound pushes.
const (
	EventFollowerSubscribed   = "follower.subscribed"
	EventFollowerUnsubscribed = "follower.unsubscribed"
	EventMessageReceived      = "message.received"
)

// FollowerEvent is the data of follower.subscribed and follower.unsubscribed.
type FollowerEvent struct {
	OpenID string `json:"openid"`
	// Scene is the parametric QR code's scene of a follow by QR code.
	Scene  string    `json:"scene,omitempty"`
	Ticket string    `json:"ticket,omitempty"`
	At     time.Time `json:"at"`
}

// ReceivedMessage is the data of message.received: a user's message, for
// chatbots and inboxes.
type ReceivedMessage struct {
	OpenID      string    `json:"openid"`
	MsgID       int64     `json:"msgid,omitempty"`
	MsgType     string    `json:"msg_type"`
	Content     string    `json:"content,omitempty"`
	MediaID     string    `json:"media_id,omitempty"`
	PicURL      string    `json:"pic_url,omitempty"`
	Format      string    `json:"format,omitempty"`
	Recognition string    `json:"recognition,omitempty"`
	Latitude    float64   `json:"latitude,omitempty"`
	Longitude   float64   `json:"longitude,omitempty"`
	Label       string    `json:"label,omitempty"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	URL         string    `json:"url,omitempty"`
	At          time.Time `json:"at"`
}

// subscriberCacheTTL is how long the set of subscribed event types is
// trusted before the webhooks table is read again.
const subscriberCacheTTL = 5 * time.Second

// InboundHook publishes follower.subscribed, follower.unsubscribed and
// message.received from the callback's pushes (a callback.Hook). It reads
// which event types have endpoints at most every few seconds, so pushes
// nobody listens to cost no transaction.
type InboundHook struct {
	publisher *Publisher

	mu      sync.Mutex
	wanted  map[string]bool // event type or "*" → some endpoint wants it
	readAt  time.Time
	nowFunc func() time.Time
}

// NewInboundHook returns the hook; Hook is the callback.Hook.
func NewInboundHook(p *Publisher) *InboundHook {
	return &InboundHook{publisher: p, nowFunc: time.Now}
}

// Wants tells the callback, without I/O, whether Hook may publish
// anything for m: an event of these types, which an endpoint wants or
// which a stale cache cannot rule out (Hook then reads the table again).
func (h *InboundHook) Wants(m *wechat.Message) bool {
	typ := inboundEventType(m)
	if typ == "" {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wanted == nil || h.nowFunc().Sub(h.readAt) >= subscriberCacheTTL {
		return true
	}
	return h.wanted["*"] || h.wanted[typ]
}

// inboundEventType is the type inboundEvent gives m, without its data.
func inboundEventType(m *wechat.Message) string {
	if m.IsEvent() {
		switch m.Event {
		case wechat.EventSubscribe:
			return EventFollowerSubscribed
		case wechat.EventUnsubscribe:
			return EventFollowerUnsubscribed
		}
		return ""
	}
	if m.MsgType == "" {
		return ""
	}
	return EventMessageReceived
}

// Hook publishes the event of a new push, if it is one of these and an
// endpoint wants it.
func (h *InboundHook) Hook(ctx context.Context, account string, m *wechat.Message) error {
	typ, data := inboundEvent(m)
	if typ == "" {
		return nil
	}
	want, err := h.wants(ctx, typ)
	if err != nil || !want {
		return err
	}
	d := h.publisher.store.db
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhook: publishing %s: %w", typ, err)
	}
	defer tx.Rollback()
	if err := h.publisher.PublishTx(ctx, tx, typ, account, data); err != nil {
		return err
	}
	return tx.Commit()
}

// inboundEvent maps a push to its event type and data ("" for none).
func inboundEvent(m *wechat.Message) (string, any) {
	at := db.Timestamp(time.Unix(m.CreateTime, 0))
	switch typ := inboundEventType(m); typ {
	case EventFollowerSubscribed:
		scene, _ := m.QRScene()
		return typ, FollowerEvent{OpenID: m.FromUserName, Scene: scene, Ticket: m.Ticket, At: at}
	case EventFollowerUnsubscribed:
		return typ, FollowerEvent{OpenID: m.FromUserName, At: at}
	case EventMessageReceived:
		return typ, ReceivedMessage{OpenID: m.FromUserName, MsgID: m.MsgID, MsgType: m.MsgType, Content: m.Content,
			MediaID: m.MediaID, PicURL: m.PicURL, Format: m.Format, Recognition: m.Recognition, Latitude: m.LocationX,
			Longitude: m.LocationY, Label: m.Label, Title: m.Title, Description: m.Description, URL: m.URL, At: at}
	}
	return "", nil
}

// wants reports whether an endpoint subscribes to typ, from a cache
// refreshed every subscriberCacheTTL.
func (h *InboundHook) wants(ctx context.Context, typ string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.nowFunc()
	if h.wanted == nil || now.Sub(h.readAt) >= subscriberCacheTTL {
		rows, err := h.publisher.store.db.QueryContext(ctx, `SELECT events FROM webhooks`)
		if err != nil {
			return false, fmt.Errorf("webhook: reading endpoints: %w", err)
		}
		wanted := map[string]bool{}
		for rows.Next() {
			var events string
			if err := rows.Scan(&events); err != nil {
				rows.Close()
				return false, fmt.Errorf("webhook: reading endpoints: %w", err)
			}
			for _, e := range strings.Split(events, ",") {
				wanted[e] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("webhook: reading endpoints: %w", err)
		}
		h.wanted, h.readAt = wanted, now
	}
	return h.wanted["*"] || h.wanted[typ], nil
}
