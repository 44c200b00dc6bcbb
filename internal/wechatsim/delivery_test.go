package wechatsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

func TestPushShapesPerMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode       string
		encrypted  bool
		plainInURL bool // plain fields visible in the body
	}{
		{ModePlaintext, false, true},
		{ModeCompatible, true, true},
		{ModeSafe, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			b := setup(t, withMode(tt.mode))
			u := b.user(t, testOA, true)
			b.recv.waitEvent(t, wechat.EventSubscribe)
			res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "你好 <&>"})
			p := b.recv.wait(t)
			if p.Err != "" {
				t.Fatalf("push failed verification: %s", p.Err)
			}
			if got := p.Query.Get("encrypt_type") == "aes"; got != tt.encrypted {
				t.Errorf("encrypt_type present = %v", got)
			}
			if p.Query.Get("openid") != u.OpenID {
				t.Errorf("openid query %q", p.Query.Get("openid"))
			}
			if got := bytes.Contains(p.Body, []byte("<Content>")); got != tt.plainInURL {
				t.Errorf("plain fields in body = %v: %s", got, p.Body)
			}
			if tt.mode == ModeSafe && !bytes.HasPrefix(p.Body, []byte("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt>")) {
				t.Errorf("safe body: %s", p.Body)
			}
			if p.Msg.Content != "你好 <&>" || p.Msg.MsgType != "text" || p.Msg.MsgID <= 1<<53 || p.Msg.ToUserName != "gh_0123456789ab" {
				t.Errorf("message: %+v", p.Msg)
			}
			if res.Delivery.Outcome != OutcomeNoReply || len(res.Delivery.Attempts) != 1 || res.Reply != nil {
				t.Errorf("delivery: %+v", res.Delivery)
			}
		})
	}
}

func TestEventShapes(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))
	u := b.user(t, testOA, true)
	p := b.recv.waitEvent(t, wechat.EventSubscribe)
	if p.Msg.EventKey != "" || p.Msg.MsgID != 0 {
		t.Errorf("plain subscribe: %s", p.Plain)
	}
	tests := []struct {
		action Action
		check  func(m *wechat.Message) bool
	}{
		{Action{Type: ActionClick, EventKey: "V1001_GOOD"}, func(m *wechat.Message) bool { return m.Event == "CLICK" && m.EventKey == "V1001_GOOD" }},
		{Action{Type: ActionView, URL: "https://example.com/a?b=1&c=2"}, func(m *wechat.Message) bool {
			return m.Event == "VIEW" && m.EventKey == "https://example.com/a?b=1&c=2"
		}},
		{Action{Type: ActionReportLocation, Latitude: 23.1, Longitude: 113.3, Precision: 50}, func(m *wechat.Message) bool {
			return m.Event == "LOCATION" && m.Latitude == 23.1 && m.Longitude == 113.3 && m.Precision == 50
		}},
		{Action{Type: ActionLocation, Latitude: 23.134521, Longitude: 113.358803, Label: "位置信息"}, func(m *wechat.Message) bool {
			return m.MsgType == "location" && m.LocationX == 23.134521 && m.Label == "位置信息" && m.Scale == 20
		}},
		{Action{Type: ActionImage}, func(m *wechat.Message) bool { return m.MsgType == "image" && m.PicURL != "" && m.MediaID != "" }},
		{Action{Type: ActionVoice, Recognition: "你好"}, func(m *wechat.Message) bool { return m.Format == "amr" && m.Recognition == "你好" }},
		{Action{Type: ActionVideo}, func(m *wechat.Message) bool { return m.MsgType == "video" && m.ThumbMediaID != "" }},
		{Action{Type: ActionLink, URL: "https://example.com", Title: "官网"}, func(m *wechat.Message) bool {
			return m.MsgType == "link" && m.URL == "https://example.com" && m.Title == "官网"
		}},
		{Action{Type: "unfollow"}, func(m *wechat.Message) bool { return m.Event == "unsubscribe" }},
	}
	for _, tt := range tests {
		b.act(t, u.OpenID, tt.action)
		p := b.recv.wait(t)
		if p.Err != "" || !tt.check(p.Msg) {
			t.Errorf("%s: %s %s", tt.action.Type, p.Err, p.Plain)
		}
	}
	if _, err := b.sim.Act(t.Context(), u.OpenID, Action{Type: ActionText, Content: "x"}); ErrorCodeOf(err) != CodeConflict {
		t.Errorf("text after unfollow: %v", err)
	}
}

func TestCallbackRetries(t *testing.T) {
	t.Parallel()
	t.Run("slow first attempt gets identical XML again", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(ModeSafe))
		u := b.user(t, testOA, true)
		b.recv.waitEvent(t, wechat.EventSubscribe)
		b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) {
			if n == 1 { // the first push after the subscribe
				return 3 * time.Second, 200, []byte("success")
			}
			return 0, 200, []byte("success")
		})
		res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "hi"})
		first, second := b.recv.wait(t), b.recv.wait(t)
		if !bytes.Equal(first.Body, second.Body) {
			t.Error("re-sent body differs")
		}
		if first.Query.Encode() != second.Query.Encode() {
			t.Error("query changed between attempts (default keeps it)")
		}
		if len(res.Delivery.Attempts) != 2 || res.Delivery.Outcome != OutcomeNoReply {
			t.Fatalf("attempts %+v outcome %s", res.Delivery.Attempts, res.Delivery.Outcome)
		}
	})
	t.Run("refresh query on retry", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(ModeSafe), func(o *setupOptions) {
			o.configure = func(c *Config) { c.RefreshQueryOnRetry = true }
		})
		u := b.user(t, testOA, true)
		b.recv.waitEvent(t, wechat.EventSubscribe)
		b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) {
			if n == 1 {
				return 3 * time.Second, 200, nil
			}
			return 0, 200, nil
		})
		b.act(t, u.OpenID, Action{Type: ActionText, Content: "hi"})
		first, second := b.recv.wait(t), b.recv.wait(t)
		if !bytes.Equal(first.Body, second.Body) || first.Query.Get("nonce") == second.Query.Get("nonce") || second.Err != "" {
			t.Errorf("refresh: same body %v, nonces %s %s, err %q", bytes.Equal(first.Body, second.Body), first.Query.Get("nonce"), second.Query.Get("nonce"), second.Err)
		}
	})
	t.Run("never answering", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(ModePlaintext))
		u := b.user(t, testOA, true)
		b.recv.waitEvent(t, wechat.EventSubscribe)
		b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) { return time.Minute, 200, nil })
		res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "anyone?"})
		if got := len(res.Delivery.Attempts); got != 3 || b.recv.count() != 4 {
			t.Fatalf("%d attempts, %d pushes received", got, b.recv.count())
		}
		if res.Reply == nil || res.Reply.Kind != ItemSystem || res.Reply.Content != NoticeServiceUnavailable {
			t.Fatalf("phone shows %+v", res.Reply)
		}
		alarms := b.sim.Alarms(testOA)
		if len(alarms) != 1 || alarms[0].Kind != AlarmTimeout || alarms[0].OpenID != u.OpenID {
			t.Fatalf("alarms %+v", alarms)
		}
		items := inbox(t, b, u.OpenID)
		if items[len(items)-1].Content != NoticeServiceUnavailable {
			t.Fatalf("inbox %+v", items)
		}
	})
	t.Run("HTTP error stops retries", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withMode(ModePlaintext))
		u := b.user(t, testOA, true)
		b.recv.waitEvent(t, wechat.EventSubscribe)
		b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) { return 0, 500, []byte("oops") })
		res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "x"})
		if len(res.Delivery.Attempts) != 1 || res.Delivery.Status != 500 || res.Reply.Content != NoticeServiceUnavailable {
			t.Fatalf("delivery %+v reply %+v", res.Delivery, res.Reply)
		}
		if a := b.sim.Alarms(testOA); len(a) != 1 || a[0].Kind != AlarmHTTPError {
			t.Fatalf("alarms %+v", a)
		}
	})
}

func TestReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mode   string
		sealed bool
		ok     bool
	}{
		{"plaintext plain", ModePlaintext, false, true},
		{"plaintext encrypted refused", ModePlaintext, true, false},
		{"compatible plain", ModeCompatible, false, true},
		{"compatible encrypted", ModeCompatible, true, true},
		{"safe encrypted", ModeSafe, true, true},
		{"safe plain refused", ModeSafe, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, withMode(tt.mode))
			if tt.mode == ModePlaintext && tt.sealed {
				c, _ := wechat.NewCrypter(testOA, testAESKey)
				b.recv.crypter = c
			}
			u := b.user(t, testOA, true)
			b.recv.waitEvent(t, wechat.EventSubscribe)
			b.recv.replyText(t, "欢迎 welcome", tt.sealed)
			res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "hello"})
			if !tt.ok {
				if res.Reply == nil || res.Reply.Content != NoticeServiceUnavailable || len(b.sim.Alarms(testOA)) != 1 {
					t.Fatalf("want refusal, phone shows %+v", res.Reply)
				}
				return
			}
			if res.Reply == nil || res.Reply.Kind != ItemReply || res.Reply.Content != "欢迎 welcome" {
				t.Fatalf("reply %+v (delivery %+v)", res.Reply, res.Delivery)
			}
			items := inbox(t, b, u.OpenID)
			if items[len(items)-1].Content != "欢迎 welcome" {
				t.Fatalf("inbox %+v", items)
			}
		})
	}
}

func TestInvalidReplies(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModeSafe))
	u := b.user(t, testOA, true)
	b.recv.waitEvent(t, wechat.EventSubscribe)
	seal := func(p receivedPush, plain []byte) []byte {
		out, err := b.recv.crypter.SealReply(testToken, plain, 1713424427, "415670741", 0)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	otherApp, _ := wechat.NewCrypter("wxsomeoneelse", testAESKey)
	tests := []struct {
		name   string
		answer func(p receivedPush) []byte
		reason string
	}{
		{"tampered MsgSignature", func(p receivedPush) []byte {
			out := seal(p, mustReply(t, p, wechat.TextReply{Content: "x"}))
			return bytes.Replace(out, []byte("<MsgSignature><![CDATA["), []byte("<MsgSignature><![CDATA[0"), 1)
		}, "MsgSignature"},
		{"other appid", func(p receivedPush) []byte {
			out, _ := otherApp.SealReply(testToken, mustReply(t, p, wechat.TextReply{Content: "x"}), 1, "1", 0)
			return out
		}, "another appid"},
		{"json", func(p receivedPush) []byte { return []byte(`{"reply":"x"}`) }, "not an XML reply"},
		{"ids not swapped", func(p receivedPush) []byte {
			plain, _ := wechat.BuildReply(p.Msg.ToUserName, p.Msg.FromUserName, 1, wechat.TextReply{Content: "x"})
			return seal(p, plain)
		}, "ToUserName"},
		{"two articles to a user message", func(p receivedPush) []byte {
			return seal(p, mustReply(t, p, wechat.NewsReply{Articles: []wechat.Article{{Title: "a"}, {Title: "b"}}}))
		}, "1 article"},
	}
	for _, tt := range tests {
		b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) { return 0, 200, tt.answer(p) })
		res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "x"})
		if res.Reply == nil || res.Reply.Content != NoticeServiceUnavailable || !strings.Contains(res.Reply.Reason, tt.reason) {
			t.Errorf("%s: phone shows %+v", tt.name, res.Reply)
		}
		b.recv.wait(t)
	}
	// Two articles are fine for an event (a click).
	b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) {
		return 0, 200, seal(p, mustReply(t, p, wechat.NewsReply{Articles: []wechat.Article{{Title: "a"}, {Title: "b"}}}))
	})
	res := b.act(t, u.OpenID, Action{Type: ActionClick, EventKey: "NEWS"})
	if res.Reply == nil || res.Reply.Kind != ItemReply || len(res.Reply.Articles) != 2 {
		t.Fatalf("news reply to a click: %+v", res.Reply)
	}
	if n := len(b.sim.Alarms(testOA)); n != 5 {
		t.Errorf("%d alarms, want 5", n)
	}
}

func mustReply(t *testing.T, p receivedPush, r wechat.Reply) []byte {
	t.Helper()
	out, err := wechat.BuildReply(p.Msg.FromUserName, p.Msg.ToUserName, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyURL(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModeSafe))
	u := b.user(t, testOA, false)
	res := b.act(t, u.OpenID, Action{Type: ActionVerifyURL})
	if res.Verify == nil || !res.Verify.OK || res.Verify.Body != res.Verify.Echostr {
		t.Fatalf("verify: %+v", res.Verify)
	}
	// A trailing newline is a failure.
	b.recv.mu.Lock()
	b.recv.echoFormat = "%s\n"
	b.recv.mu.Unlock()
	v, err := b.sim.VerifyURL(t.Context(), testOA)
	if err != nil || v.OK {
		t.Fatalf("echostr with newline accepted: %+v %v", v, err)
	}
}

// TestEmptyEncryptedReply: an SDK in safe mode may answer a signed envelope
// around an empty plaintext to mean "no reply"; the phone shows nothing and
// no alarm is raised.
func TestEmptyEncryptedReply(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModeSafe))
	u := b.user(t, testOA, true)
	b.recv.waitEvent(t, wechat.EventSubscribe)
	b.recv.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) {
		out, err := b.recv.crypter.SealReply(b.recv.token, nil, time.Now().Unix(), p.Query.Get("nonce"), 0)
		if err != nil {
			t.Error(err)
		}
		return 0, 200, out
	})
	res := b.act(t, u.OpenID, Action{Type: ActionText, Content: "hello"})
	if res.Reply != nil {
		t.Fatalf("phone shows %+v, want nothing", res.Reply)
	}
	if alarms := b.sim.Alarms(testOA); len(alarms) != 0 {
		t.Fatalf("alarms %+v, want none", alarms)
	}
}

// A mini program with the JSON data format gets its pushes as WeChat writes
// them: application/json, {"ToUserName","Encrypt"} in safe mode, and in the
// plain JSON a subscription event's List at the top level (an object for
// one item) with the 64-bit MsgID as a number and ErrorCode 0 written out.
func TestMiniProgramJSONPushes(t *testing.T) {
	t.Parallel()
	var recv *receiver
	b := setup(t, func(o *setupOptions) {
		o.configure = func(c *Config) {
			recv = newReceiver(t, testMP, testToken, testAESKey)
			mp := &c.Apps[1]
			mp.CallbackURL, mp.Token, mp.EncodingAESKey, mp.Mode, mp.DataFormat = recv.srv.URL+"/wx/mp", testToken, testAESKey, ModeSafe, DataFormatJSON
		}
	})
	u := b.user(t, testMP, false)
	b.act(t, u.OpenID, Action{Type: ActionSubscribePopup, TemplateIDs: []string{tmplMPSub}})
	p := recv.waitEvent(t, wechat.EventSubscribeMsgPopup)
	if p.Err != "" {
		t.Fatalf("popup push: %s", p.Err)
	}
	var envelope map[string]any
	if err := json.Unmarshal(p.Body, &envelope); err != nil || len(envelope) != 2 || envelope["ToUserName"] != "gh_mp0000000001" || envelope["Encrypt"] == "" {
		t.Errorf("safe-mode JSON body: %s (%v)", p.Body, err)
	}
	var popup map[string]any
	if err := json.Unmarshal(p.Plain, &popup); err != nil {
		t.Fatalf("plain popup: %s (%v)", p.Plain, err)
	}
	if item, ok := popup["List"].(map[string]any); !ok || item["TemplateId"] != tmplMPSub || item["SubscribeStatusString"] != "accept" || popup["SubscribeMsgPopupEvent"] != nil {
		t.Errorf("popup JSON: %s", p.Plain)
	}

	tok := b.token(t, testMP, testMPSecret)
	body := templateBody(u.OpenID, tmplMPSub, map[string]string{"name1": "王五", "time2": "2026-01-15 15:00"})
	a := b.post(t, "/cgi-bin/message/subscribe/send", tq(tok), body)
	wantErrcode(t, a, 0)
	p = recv.waitEvent(t, wechat.EventSubscribeMsgSent)
	if p.Err != "" {
		t.Fatalf("sent push: %s", p.Err)
	}
	if sent := p.Msg.SubscribeMsgSentEvent; sent == nil || len(sent.List) != 1 || sent.List[0].MsgID != a.int("msgid") || sent.List[0].ErrorStatus != "success" {
		t.Errorf("sent event: %s", p.Plain)
	}
	if want := fmt.Sprintf(`"MsgID":%d`, a.int("msgid")); !strings.Contains(string(p.Plain), want) || !strings.Contains(string(p.Plain), `"ErrorCode":0`) {
		t.Errorf("sent JSON lacks %s or ErrorCode 0: %s", want, p.Plain)
	}

	oa := AppConfig{AppID: "wxjsonoa000000001", AppSecret: "s", DataFormat: DataFormatJSON}
	if err := b.sim.AddApp(oa); ErrorCodeOf(err) != CodeInvalid {
		t.Errorf("an official account with data_format json: %v", err)
	}
}
