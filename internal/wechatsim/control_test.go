package wechatsim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

func (b *bundle) control(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	a := b.call(t, method, path, nil, body)
	if a.status != wantStatus {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, a.status, wantStatus, a.raw)
	}
	if out != nil {
		if err := json.Unmarshal(a.raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, a.raw)
		}
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))
	b.recv.replyText(t, "收到", false)

	var created struct {
		User
		Delivery *Delivery  `json:"delivery"`
		Reply    *InboxItem `json:"reply"`
	}
	b.control(t, "POST", "/sim/api/users", map[string]any{"app_id": testOA, "follow": true}, http.StatusCreated, &created)
	if !created.Subscribed || created.Delivery == nil || created.Delivery.Event != wechat.EventSubscribe || created.Reply == nil {
		t.Fatalf("created: %+v", created)
	}
	openid := created.OpenID

	var res ActionResult
	b.control(t, "POST", "/sim/api/users/"+openid+"/actions", map[string]any{"app_id": testOA, "type": "text", "content": "你好"}, http.StatusOK, &res)
	if res.Delivery.Outcome != OutcomeReply || res.Reply.Content != "收到" || res.Delivery.Status != 200 || len(res.Delivery.Attempts) != 1 {
		t.Fatalf("action: %+v", res)
	}

	var items []InboxItem
	b.control(t, "GET", "/sim/api/users/"+openid+"/inbox?app_id="+testOA, nil, http.StatusOK, &items)
	if len(items) != 2 || items[1].Content != "收到" {
		t.Fatalf("inbox: %+v", items)
	}
	var chat []InboxItem
	b.control(t, "GET", "/sim/api/users/"+openid+"/chat?app_id="+testOA, nil, http.StatusOK, &chat)
	if len(chat) != 4 || chat[2].Kind != ItemSent || chat[2].Content != "你好" {
		t.Fatalf("chat: %+v", chat)
	}

	var users []User
	b.control(t, "GET", "/sim/api/users?app_id="+testOA, nil, http.StatusOK, &users)
	if len(users) != 1 {
		t.Fatalf("users: %+v", users)
	}
	var apps []AppView
	b.control(t, "GET", "/sim/api/apps", nil, http.StatusOK, &apps)
	if len(apps) != 2 || apps[1].AppSecret != "" || !apps[1].HasSecret || apps[1].Followers != 1 {
		t.Fatalf("apps: %+v", apps)
	}
	b.control(t, "POST", "/sim/api/apps", map[string]any{"app_id": "wxnew", "app_secret": "s", "mode": "safe"}, http.StatusBadRequest, nil)
	b.control(t, "POST", "/sim/api/apps", map[string]any{"app_id": "wxnew", "app_secret": "s"}, http.StatusCreated, nil)
	b.control(t, "POST", "/sim/api/apps", map[string]any{"app_id": "wxnew", "app_secret": "s"}, http.StatusConflict, nil)
	b.control(t, "PUT", "/sim/api/apps/wxnew", map[string]any{"name": "renamed"}, http.StatusOK, nil)

	// Errors: JSON with a code, Chinese and English.
	var errBody struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	b.control(t, "POST", "/sim/api/users/onobody/actions", map[string]any{"type": "text", "content": "x"}, http.StatusNotFound, &errBody)
	if errBody.Error.Code != "not_found" || errBody.Error.Message == "" {
		t.Fatalf("error body: %+v", errBody)
	}
	b.control(t, "POST", "/sim/api/users/"+openid+"/actions", map[string]any{"type": "text", "conten": "typo"}, http.StatusBadRequest, nil)
	b.control(t, "POST", "/sim/api/users/"+openid+"/actions", map[string]any{"type": "dance"}, http.StatusBadRequest, nil)
	b.control(t, "POST", "/sim/api/users/"+openid+"/actions", map[string]any{"type": "subscribe"}, http.StatusConflict, nil)

	// Faults, calls, alarms, reset.
	var fault map[string]int
	b.control(t, "POST", "/sim/api/faults", map[string]any{"app_id": testOA, "path": "/cgi-bin/token", "errcode": -1, "latency_ms": 1}, http.StatusCreated, &fault)
	var faults []Fault
	b.control(t, "GET", "/sim/api/faults", nil, http.StatusOK, &faults)
	if len(faults) != 1 || faults[0].ID != fault["id"] || faults[0].Latency.Milliseconds() != 1 {
		t.Fatalf("faults: %+v", faults)
	}
	wantErrcode(t, b.get(t, "/cgi-bin/token", tokenQuery(testOA, testOASecret)), -1)
	b.control(t, "DELETE", "/sim/api/faults", nil, http.StatusNoContent, nil)
	b.token(t, testOA, testOASecret)
	var calls map[string]int
	b.control(t, "GET", "/sim/api/calls?app_id="+testOA, nil, http.StatusOK, &calls)
	if calls["/cgi-bin/token"] != 2 {
		t.Fatalf("calls: %v", calls)
	}
	b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) { return 0, 200, []byte("<xml>bad</xml>") })
	b.control(t, "POST", "/sim/api/users/"+openid+"/actions", map[string]any{"type": "click", "event_key": "K"}, http.StatusOK, nil)
	var alarms []Alarm
	b.control(t, "GET", "/sim/api/alarms?app_id="+testOA, nil, http.StatusOK, &alarms)
	if len(alarms) != 1 || alarms[0].Kind != AlarmInvalidReply {
		t.Fatalf("alarms: %+v", alarms)
	}
	var deliveries []Delivery
	b.control(t, "GET", "/sim/api/deliveries?openid="+openid, nil, http.StatusOK, &deliveries)
	if len(deliveries) != 3 {
		t.Fatalf("%d deliveries", len(deliveries))
	}
	var v VerifyResult
	b.control(t, "POST", "/sim/api/apps/"+testOA+"/verify_url", nil, http.StatusOK, &v)
	if !v.OK {
		t.Fatalf("verify_url: %+v", v)
	}
	b.control(t, "POST", "/sim/api/domains/api2", map[string]bool{"down": true}, http.StatusOK, nil)
	b.control(t, "POST", "/sim/api/reset", nil, http.StatusOK, nil)
	b.control(t, "GET", "/sim/api/users?app_id="+testOA, nil, http.StatusOK, &users)
	if len(users) != 0 {
		t.Fatalf("users after reset: %+v", users)
	}
	b.control(t, "GET", "/sim/api/nothing", nil, http.StatusNotFound, nil)
}
