package webhook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/webhook"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Inbound pushes become follower.* and message.received deliveries for
// the endpoints that want them, and nothing otherwise.
func TestInboundHook(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := context.Background()
		store := webhook.NewStore(d, nil)
		hook := webhook.NewInboundHook(webhook.NewPublisher(store, nil))
		text := &wechat.Message{FromUserName: "o1", CreateTime: 1764000000, MsgType: "text", MsgID: 42, Content: "在吗"}
		click := &wechat.Message{FromUserName: "o2", CreateTime: 1764000003, MsgType: "event", Event: "CLICK", EventKey: "K"}
		// Before the endpoints were read, the hook cannot rule a message
		// out; a menu click is never one of its events.
		if !hook.Wants(text) || hook.Wants(click) {
			t.Fatalf("before reading endpoints: wants text %v, click %v", hook.Wants(text), hook.Wants(click))
		}
		if err := hook.Hook(ctx, "main", text); err != nil {
			t.Fatal(err)
		}
		if hook.Wants(text) {
			t.Fatal("with no endpoint, the hook still wants a text message")
		}
		if list, _ := store.Deliveries(ctx, 0, 10); len(list) != 0 {
			t.Fatalf("deliveries without endpoints: %+v", list)
		}

		if _, err := store.Create(ctx, webhook.EndpointInput{URL: "https://hooks.example.com/a",
			Events: []string{"follower.subscribed", "message.received"}}); err != nil {
			t.Fatal(err)
		}
		hook = webhook.NewInboundHook(webhook.NewPublisher(store, nil)) // a fresh endpoint cache
		pushes := []*wechat.Message{
			text,
			{FromUserName: "o2", CreateTime: 1764000001, MsgType: "event", Event: "subscribe", EventKey: "qrscene_bind-1", Ticket: "T"},
			{FromUserName: "o2", CreateTime: 1764000002, MsgType: "event", Event: "unsubscribe"},
			{FromUserName: "o2", CreateTime: 1764000003, MsgType: "event", Event: "CLICK", EventKey: "K"},
		}
		for _, m := range pushes {
			if err := hook.Hook(ctx, "main", m); err != nil {
				t.Fatal(err)
			}
		}
		unsubscribe := pushes[2]
		if !hook.Wants(text) || hook.Wants(unsubscribe) || hook.Wants(click) {
			t.Errorf("with an endpoint for subscribes and messages: wants text %v, unsubscribe %v, click %v",
				hook.Wants(text), hook.Wants(unsubscribe), hook.Wants(click))
		}
		list, err := store.Deliveries(ctx, 0, 10)
		if err != nil || len(list) != 2 {
			t.Fatalf("deliveries = %+v, %v", list, err)
		}
		if list[1].EventType != "message.received" || list[0].EventType != "follower.subscribed" {
			t.Errorf("event types %s, %s", list[1].EventType, list[0].EventType)
		}
		for _, want := range []string{`"content":"在吗"`, `"msgid":42`} {
			if !strings.Contains(list[1].Payload, want) {
				t.Errorf("message.received payload %s lacks %s", list[1].Payload, want)
			}
		}
		if !strings.Contains(list[0].Payload, `"scene":"bind-1"`) {
			t.Errorf("follower.subscribed payload %s", list[0].Payload)
		}
	})
}
