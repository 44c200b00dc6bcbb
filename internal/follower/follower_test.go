package follower_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/wechat"
)

const base = int64(1715943329)

func setup(t *testing.T, d *db.DB) *follower.Store {
	t.Helper()
	return follower.NewStore(d, func() time.Time { return time.Unix(base+1000, 0) })
}

func event(name, openid string, at int64, key, ticket string) *wechat.Message {
	return &wechat.Message{ToUserName: "gh_97417a04a28d", FromUserName: openid, CreateTime: at,
		MsgType: wechat.MsgTypeEvent, Event: name, EventKey: key, Ticket: ticket}
}

func TestFollowLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d)
		ctx := t.Context()
		apply := func(m *wechat.Message) {
			t.Helper()
			if err := s.ApplyEvent(ctx, "main", m); err != nil {
				t.Fatal(err)
			}
		}

		apply(event(wechat.EventSubscribe, "o1", base, "qrscene_123123", "TICKET1"))
		f, err := s.Get(ctx, "main", "o1")
		if err != nil {
			t.Fatal(err)
		}
		if !f.Subscribed || f.SubscribedAt == nil || f.SubscribedAt.Unix() != base || f.QRScene == nil || *f.QRScene != 123123 ||
			f.QRSceneStr != "" || f.SubscribeScene != follower.SceneQRCode || f.LastEventKey != "qrscene_123123" || f.LastTicket != "TICKET1" {
			t.Errorf("after QR subscribe: %+v", f)
		}

		apply(event(wechat.EventScan, "o1", base+10, "S-1024", "TICKET2"))
		f, _ = s.Get(ctx, "main", "o1")
		if !f.Subscribed || f.LastEventKey != "S-1024" || f.LastTicket != "TICKET2" || *f.QRScene != 123123 {
			t.Errorf("after SCAN: %+v", f)
		}

		apply(event(wechat.EventUnsubscribe, "o1", base+20, "", ""))
		f, err = s.Get(ctx, "main", "o1")
		if err != nil {
			t.Fatalf("unsubscribe must keep the row: %v", err)
		}
		if f.Subscribed || f.UnsubscribedAt == nil || f.UnsubscribedAt.Unix() != base+20 || f.SubscribedAt.Unix() != base {
			t.Errorf("after unsubscribe: %+v", f)
		}

		// A late retry of the first subscribe must not bring them back.
		apply(event(wechat.EventSubscribe, "o1", base, "qrscene_123123", "TICKET1"))
		if f, _ = s.Get(ctx, "main", "o1"); f.Subscribed {
			t.Errorf("an old subscribe undid a later unsubscribe: %+v", f)
		}

		// Following again with a string scene replaces the scene.
		apply(event(wechat.EventSubscribe, "o1", base+30, "qrscene_S-2048", "TICKET3"))
		f, _ = s.Get(ctx, "main", "o1")
		if !f.Subscribed || f.SubscribedAt.Unix() != base+30 || f.QRScene != nil || f.QRSceneStr != "S-2048" {
			t.Errorf("after re-subscribe: %+v", f)
		}

		if n, _ := s.Count(ctx, "main", true); n != 1 {
			t.Errorf("subscribed count = %d", n)
		}
	})
}

func TestApplyEventEdgeCases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d)
		ctx := t.Context()

		// Plain subscribe: no scene.
		if err := s.ApplyEvent(ctx, "main", event(wechat.EventSubscribe, "plain", base, "", "")); err != nil {
			t.Fatal(err)
		}
		f, _ := s.Get(ctx, "main", "plain")
		if !f.Subscribed || f.QRScene != nil || f.QRSceneStr != "" || f.SubscribeScene != "" {
			t.Errorf("plain subscribe: %+v", f)
		}

		// Unsubscribe of someone wxgate never saw: recorded, not subscribed.
		if err := s.ApplyEvent(ctx, "main", event(wechat.EventUnsubscribe, "old", base, "", "")); err != nil {
			t.Fatal(err)
		}
		if f, err := s.Get(ctx, "main", "old"); err != nil || f.Subscribed || f.UnsubscribedAt == nil {
			t.Errorf("unknown unsubscribe: %+v, %v", f, err)
		}

		// SCAN of someone wxgate never saw: they follow.
		if err := s.ApplyEvent(ctx, "main", event(wechat.EventScan, "scanner", base, "42", "T")); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Get(ctx, "main", "scanner"); !f.Subscribed || f.LastEventKey != "42" || f.SubscribedAt != nil {
			t.Errorf("unknown SCAN: %+v", f)
		}

		// Other pushes are ignored.
		text := &wechat.Message{FromUserName: "texter", MsgType: wechat.MsgTypeText, Content: "hi", CreateTime: base}
		if err := s.ApplyEvent(ctx, "main", text); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "main", "texter"); !errors.Is(err, follower.ErrNotFound) {
			t.Errorf("text message created a follower: %v", err)
		}
		// Accounts are separate.
		if _, err := s.Get(ctx, "other", "plain"); !errors.Is(err, follower.ErrNotFound) {
			t.Errorf("follower leaked across accounts: %v", err)
		}
	})
}
