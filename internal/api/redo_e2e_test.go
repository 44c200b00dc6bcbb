package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// waitFor polls an API read until ok says the state has arrived.
func (e *e2e) waitFor(t *testing.T, path string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := e.must(t, "GET", path, nil, 200)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never reached the wanted state: %v", path, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// templates is what template messages a follower's phone shows.
func (e *e2e) templates(t *testing.T, openid string) []wechatsim.InboxItem {
	t.Helper()
	items, err := e.sim.Inbox(e2eOA, openid)
	if err != nil {
		t.Fatal(err)
	}
	var out []wechatsim.InboxItem
	for _, it := range items {
		if it.Kind == "template" {
			out = append(out, it)
		}
	}
	return out
}

// An operator's second tries: a recipient that failed for good is sent
// again and delivered; a webhook delivery goes out again with its event id;
// a schedule is tried for one follower. Each refuses what cannot be redone.
func TestResendRedeliverTry(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	ok, blocked := e.user(t, e2eOA, "", true), e.user(t, e2eOA, "", true)
	e.must(t, "POST", "/api/v1/templates", map[string]any{"account": "main", "template_id": "TPL-R", "kind": "template",
		"title": "到货通知", "content": "{{thing1.DATA}}"}, 200)
	hook := e.must(t, "POST", "/api/v1/webhooks", map[string]any{"url": e.hookURL, "events": []string{"message.failed"}}, 201)
	hookPath := "/api/v1/webhooks/" + str(hook, "id")

	// The second recipient is refused once as not following (43004, for good).
	if _, err := e.sim.SetFault(wechatsim.Fault{AppID: e2eOA, Path: "/cgi-bin/message/template/send", ErrCode: 43004, Times: 1}); err != nil {
		t.Fatal(err)
	}
	sent := e.must(t, "POST", "/api/v1/messages", map[string]any{"account": "main", "to": map[string]any{"openids": []string{blocked}},
		"template": "TPL-R", "data": map[string]string{"thing1": "A-1"}}, 202)
	msgPath := "/api/v1/messages/" + str(sent, "id")
	e.waitFor(t, msgPath, func(m map[string]any) bool { return str(m, "counts", "failed") == "1" })

	// The failure's webhook reaches the receiver.
	first := e.waitHook(t)
	if !strings.Contains(string(first.body), `"message.failed"`) {
		t.Fatalf("webhook %s", first.body)
	}
	deliveries := list(e.must(t, "GET", hookPath+"/deliveries", nil, 200), "deliveries")
	if len(deliveries) != 1 {
		t.Fatalf("deliveries %v", deliveries)
	}
	delivery := str(deliveries[0], "id")
	e.waitFor(t, hookPath+"/deliveries", func(m map[string]any) bool {
		return str(list(m, "deliveries")[0], "status") == "delivered"
	})
	again := e.must(t, "POST", hookPath+"/deliveries/"+delivery+"/redeliver", nil, 202)
	if str(again, "id") != delivery {
		t.Errorf("redelivered %v, want delivery %s", again, delivery)
	}
	second := e.waitHook(t)
	if id1, id2 := first.header.Get("X-Wxgate-Event-Id"), second.header.Get("X-Wxgate-Event-Id"); id1 == "" || id1 != id2 || string(first.body) != string(second.body) {
		t.Errorf("redelivery changed the event: id %q → %q, body %s → %s", id1, id2, first.body, second.body)
	}
	// Another endpoint's path does not reach this delivery.
	other := e.must(t, "POST", "/api/v1/webhooks", map[string]any{"url": e.hookURL, "events": []string{"binding.completed"}}, 201)
	status, body, raw := e.call(t, "POST", "/api/v1/webhooks/"+str(other, "id")+"/deliveries/"+delivery+"/redeliver", e.key, nil)
	if status != 404 {
		t.Errorf("another endpoint's delivery: %d %s", status, raw)
	}
	// A delivery still pending cannot be redelivered: the receiver is
	// failing, so the next one stays pending between its retries.
	e.hookFail.Store(1000)
	if _, err := e.sim.SetFault(wechatsim.Fault{AppID: e2eOA, Path: "/cgi-bin/message/template/send", ErrCode: 43004, Times: 1}); err != nil {
		t.Fatal(err)
	}
	e.must(t, "POST", "/api/v1/messages", map[string]any{"account": "main", "to": map[string]any{"openids": []string{ok}},
		"template": "TPL-R", "data": map[string]string{"thing1": "A-2"}}, 202)
	pending := e.waitFor(t, hookPath+"/deliveries", func(m map[string]any) bool { return len(list(m, "deliveries")) == 2 })
	var pendingID string
	for _, d := range list(pending, "deliveries") {
		if str(d, "id") != delivery {
			pendingID = str(d, "id")
		}
	}
	status, body, raw = e.call(t, "POST", hookPath+"/deliveries/"+pendingID+"/redeliver", e.key, nil)
	if status != 409 || str(body, "error", "code") != "delivery_pending" {
		t.Errorf("pending delivery: %d %s", status, raw)
	}
	e.hookFail.Store(0)

	// The failed recipient is sent again (the fault is spent) and reaches
	// the phone (WeChat accepted it: sent; this harness routes no receipts).
	res := e.must(t, "POST", msgPath+"/recipients/1/resend", nil, 202)
	if str(res, "openid") != blocked || str(res, "status") != "queued" {
		t.Errorf("resend answered %v", res)
	}
	e.waitFor(t, msgPath, func(m map[string]any) bool {
		st := str(list(m, "recipients")[0], "status")
		return str(m, "counts", "failed") == "" && (st == "sent" || st == "delivered")
	})
	if got := e.templates(t, blocked); len(got) != 1 {
		t.Errorf("the phone shows %d messages, want the one resend: %+v", len(got), got)
	}
	// Sent now: a second resend is refused and sends nothing.
	status, body, raw = e.call(t, "POST", msgPath+"/recipients/1/resend", e.key, nil)
	if status != 409 || str(body, "error", "code") != "not_resendable" || !strings.Contains(str(body, "error", "message"), "重") {
		t.Errorf("resend of a delivered recipient: %d %s", status, raw)
	}
	status, _, raw = e.call(t, "POST", msgPath+"/recipients/9/resend", e.key, nil)
	if status != 404 {
		t.Errorf("resend of a recipient not in the message: %d %s", status, raw)
	}

	// A try plans for one follower and sends nothing.
	sc := e.must(t, "POST", "/api/v1/schedules", map[string]any{"name": "到货", "account": "main", "cron": "0 9 * * *",
		"audience": map[string]any{"kind": "all"}, "template": "TPL-R", "data": map[string]string{"thing1": "{{.OpenID}}你好"}}, 201)
	before := len(e.templates(t, ok))
	tr := e.must(t, "POST", "/api/v1/schedules/"+str(sc, "id")+"/try", map[string]string{"openid": ok}, 200)
	if str(tr, "openid") != ok || str(tr, "status") != "ready" || str(tr, "data", "thing1") != ok+"你好" {
		t.Errorf("try answered %v", tr)
	}
	if after := len(e.templates(t, ok)); after != before {
		t.Errorf("a try sent %d messages", after-before)
	}
	status, body, raw = e.call(t, "POST", "/api/v1/schedules/"+str(sc, "id")+"/try", e.key, map[string]string{"openid": ""})
	if status != 400 || str(body, "error", "code") != "openid_required" {
		t.Errorf("try without an openid: %d %s", status, raw)
	}
}
