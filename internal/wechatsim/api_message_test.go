package wechatsim

import (
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

func templateBody(openid, templateID string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = map[string]string{"value": v, "color": "#173177"}
	}
	return map[string]any{"touser": openid, "template_id": templateID, "data": d}
}

func TestTemplateSendDeliversCardAndReceipt(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))
	u := b.user(t, testOA, true)
	b.recv.waitEvent(t, wechat.EventSubscribe)
	tok := b.token(t, testOA, testOASecret)

	body := templateBody(u.OpenID, tmplVisitor, map[string]string{"thing1": "张三", "time2": "2026-11-24 10:00"})
	body["url"] = "https://example.com/lead?id=1"
	body["miniprogram"] = map[string]string{"appid": testMP, "pagepath": "pages/lead?id=1"}
	a := b.post(t, "/cgi-bin/message/template/send", tq(tok), body)
	wantErrcode(t, a, 0)
	if a.str("errmsg") != "ok" {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	msgID := a.int("msgid")
	if msgID <= 1<<53 {
		t.Errorf("msgid %d does not exceed 2^53", msgID)
	}
	if !strings.Contains(string(a.raw), `"msgid":`+a.m["msgid"].(interface{ String() string }).String()) {
		t.Errorf("msgid not written as an integer: %s", a.raw)
	}

	p := b.recv.waitEvent(t, wechat.EventTemplateSendJobFinish)
	if p.Err != "" || p.Msg.JobMsgID != msgID || p.Msg.Status != wechat.TemplateStatusSuccess {
		t.Fatalf("job finish push: %+v %q", p.Msg, p.Err)
	}
	if !strings.Contains(string(p.Plain), "<MsgID>") {
		t.Errorf("job finish without <MsgID>: %s", p.Plain)
	}

	items := inbox(t, b, u.OpenID)
	card := items[len(items)-1]
	if card.Kind != ItemTemplate || card.TemplateID != tmplVisitor || card.MsgID != msgID || card.Status != "success" {
		t.Fatalf("card: %+v", card)
	}
	if card.Text != "客户：张三\n到访时间：2026-11-24 10:00" || card.Data["thing1"] != "张三" {
		t.Errorf("rendered %q data %v", card.Text, card.Data)
	}
	if card.URL != "https://example.com/lead?id=1" || card.MiniProgram == nil || card.MiniProgram.PagePath != "pages/lead?id=1" {
		t.Errorf("jump targets: %+v", card)
	}
}

func TestTemplateSendErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	follower := b.user(t, testOA, true)
	gone := b.user(t, testOA, true)
	b.act(t, gone.OpenID, Action{Type: ActionUnsubscribe})
	good := map[string]string{"thing1": "张三", "time2": "15:01"}
	tests := []struct {
		name    string
		body    any
		want    int64
		errmsgs string
	}{
		{"unknown openid", templateBody("onobody", tmplVisitor, good), 40003, ""},
		{"unknown template", templateBody(follower.OpenID, "nope", good), 40037, ""},
		{"subscription template", templateBody(follower.OpenID, tmplSub, good), 40037, ""},
		{"not following", templateBody(gone.OpenID, tmplVisitor, good), 43004, ""},
		{"thing too long", templateBody(follower.OpenID, tmplVisitor, map[string]string{"thing1": strings.Repeat("长", 21), "time2": "15:01"}), 47003, "data.thing1.value"},
		{"bad time", templateBody(follower.OpenID, tmplVisitor, map[string]string{"thing1": "x", "time2": "tomorrow"}), 47003, "data.time2.value"},
		{"missing key", templateBody(follower.OpenID, tmplVisitor, map[string]string{"thing1": "x"}), 47003, "data.time2.value is empty"},
		{"empty body", "", 44002, ""},
		{"not json", "{", 47001, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.post(t, "/cgi-bin/message/template/send", tq(tok), tt.body)
			wantErrcode(t, a, tt.want)
			if !strings.Contains(a.str("errmsg"), tt.errmsgs) {
				t.Errorf("errmsg %q lacks %q", a.str("errmsg"), tt.errmsgs)
			}
		})
	}
	// Legacy templates: first/remark dropped, keyword values free text.
	a := b.post(t, "/cgi-bin/message/template/send", tq(tok), templateBody(follower.OpenID, tmplLegacy,
		map[string]string{"first": "您好", "keyword1": "39.8元", "remark": "谢谢"}))
	wantErrcode(t, a, 0)
	items := inbox(t, b, follower.OpenID)
	if got := items[len(items)-1].Text; got != "金额：39.8元" {
		t.Errorf("legacy render %q", got)
	}
	if _, has := items[len(items)-1].Data["first"]; has {
		t.Error("first kept in data")
	}
}

func TestTemplateBlockedReplayAndFault(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))
	u := b.user(t, testOA, true)
	b.recv.waitEvent(t, wechat.EventSubscribe)
	tok := b.token(t, testOA, testOASecret)
	data := map[string]string{"thing1": "李四", "time2": "2026年1月15日 10:00"}

	// client_msg_id: the same id within 10 minutes returns the first msgid
	// and delivers nothing new.
	body := templateBody(u.OpenID, tmplVisitor, data)
	body["client_msg_id"] = "order-8812"
	first := b.post(t, "/cgi-bin/message/template/send", tq(tok), body).int("msgid")
	b.recv.waitEvent(t, wechat.EventTemplateSendJobFinish)
	b.clock.Advance(9 * time.Minute)
	again := b.post(t, "/cgi-bin/message/template/send", tq(tok), body).int("msgid")
	if again != first {
		t.Fatalf("replay msgid %d, want %d", again, first)
	}
	time.Sleep(50 * time.Millisecond)
	if n := countKind(inbox(t, b, u.OpenID), ItemTemplate); n != 1 {
		t.Fatalf("%d template cards after a replay, want 1", n)
	}
	b.clock.Advance(2 * time.Minute)
	third := b.post(t, "/cgi-bin/message/template/send", tq(tok), body).int("msgid")
	if third == first {
		t.Fatal("client_msg_id still deduplicated after 10 minutes")
	}
	b.recv.waitEvent(t, wechat.EventTemplateSendJobFinish)

	// Blocked user: the send succeeds, the receipt says failed:user block.
	b.act(t, u.OpenID, Action{Type: ActionBlockTemplates})
	blocked := b.post(t, "/cgi-bin/message/template/send", tq(tok), templateBody(u.OpenID, tmplVisitor, data)).int("msgid")
	p := b.recv.waitEvent(t, wechat.EventTemplateSendJobFinish)
	if p.Msg.JobMsgID != blocked || p.Msg.Status != "failed:user block" {
		t.Fatalf("blocked receipt: %+v", p.Msg)
	}
	b.act(t, u.OpenID, Action{Type: ActionUnblockTemplates})

	// Injected system failure.
	if _, err := b.sim.SetFault(Fault{AppID: testOA, Path: "/cgi-bin/message/template/send", TemplateJobFailure: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	failed := b.post(t, "/cgi-bin/message/template/send", tq(tok), templateBody(u.OpenID, tmplVisitor, data)).int("msgid")
	p = b.recv.waitEvent(t, wechat.EventTemplateSendJobFinish)
	if p.Msg.JobMsgID != failed || p.Msg.Status != "failed: system failed" {
		t.Fatalf("system failed receipt: %+v", p.Msg)
	}
	if n := countKind(inbox(t, b, u.OpenID), ItemTemplate); n != 2 {
		t.Fatalf("%d template cards, want 2 (blocked and failed sends are not shown)", n)
	}
}

func TestTemplateQuota(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOptions) {
		o.configure = func(c *Config) { c.Apps[0].Quotas = map[string]int{"/cgi-bin/message/template/send": 2} }
	})
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, true)
	body := templateBody(u.OpenID, tmplVisitor, map[string]string{"thing1": "x", "time2": "10:00"})
	wantErrcode(t, b.post(t, "/cgi-bin/message/template/send", tq(tok), body), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/message/template/send", tq(tok), body), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/message/template/send", tq(tok), body), 45009)
	wantErrcode(t, b.post(t, "/cgi-bin/clear_quota", tq(tok), map[string]string{"appid": testOA}), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/message/template/send", tq(tok), body), 0)
}

func TestTemplateManagement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	list := func() []any {
		return b.get(t, "/cgi-bin/template/get_all_private_template", tq(tok)).m["template_list"].([]any)
	}
	if n := len(list()); n != 2 {
		t.Fatalf("%d templates, want the 2 template-message ones", n)
	}
	a := b.post(t, "/cgi-bin/template/api_add_template", tq(tok), map[string]any{"template_id_short": "10001"})
	id := a.str("template_id")
	if id == "" || a.errcode() != 0 {
		t.Fatalf("add: %s", a.raw)
	}
	if n := len(list()); n != 3 {
		t.Fatalf("%d templates after add", n)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/template/api_add_template", tq(tok), map[string]any{"template_id_short": "nope"}), 40037)
	wantErrcode(t, b.post(t, "/cgi-bin/template/del_private_template", tq(tok), map[string]any{"template_id": id}), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/template/del_private_template", tq(tok), map[string]any{"template_id": id}), 40037)
}

func countKind(items []InboxItem, kind string) int {
	n := 0
	for _, it := range items {
		if it.Kind == kind {
			n++
		}
	}
	return n
}

func TestSubscriptionGrants(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModeSafe))
	oaTok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, false)
	body := templateBody(u.OpenID, tmplSub, map[string]string{"thing1": "续费提醒"})
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/bizsend", tq(oaTok), body), 43101)

	// Two accepts allow two sends, not three.
	for range 2 {
		b.act(t, u.OpenID, Action{Type: ActionSubscribePopup, TemplateIDs: []string{tmplSub}})
		p := b.recv.waitEvent(t, wechat.EventSubscribeMsgPopup)
		item := p.Msg.SubscribeMsgPopupEvent.List[0]
		if p.Err != "" || item.TemplateID != tmplSub || item.SubscribeStatusString != "accept" {
			t.Fatalf("popup push: %+v %q", p.Msg, p.Err)
		}
	}
	for i := range 2 {
		a := b.post(t, "/cgi-bin/message/subscribe/bizsend", tq(oaTok), body)
		wantErrcode(t, a, 0)
		p := b.recv.waitEvent(t, wechat.EventSubscribeMsgSent)
		sent := p.Msg.SubscribeMsgSentEvent.List[0]
		if sent.MsgID != a.int("msgid") || sent.ErrorStatus != "success" || !strings.Contains(string(p.Plain), "<ErrorCode>0</ErrorCode>") {
			t.Fatalf("send %d: sent event %+v\n%s", i, sent, p.Plain)
		}
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/bizsend", tq(oaTok), body), 43101)
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/bizsend", tq(oaTok), templateBody(u.OpenID, tmplVisitor, nil)), 40037)

	// A reject grants nothing; turning off removes what is left.
	b.act(t, u.OpenID, Action{Type: ActionSubscribePopup, TemplateIDs: []string{tmplSub}, Accept: new(bool)})
	b.act(t, u.OpenID, Action{Type: ActionSubscribePopup, TemplateIDs: []string{tmplSub}})
	b.act(t, u.OpenID, Action{Type: ActionSubscribeOff, TemplateIDs: []string{tmplSub}})
	p := b.recv.waitEvent(t, wechat.EventSubscribeMsgChange)
	if p.Msg.SubscribeMsgChangeEvent == nil || p.Msg.SubscribeMsgChangeEvent.List[0].SubscribeStatusString != "reject" {
		t.Fatalf("change event: %s", p.Plain)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/bizsend", tq(oaTok), body), 43101)
	if n := countKind(inbox(t, b, u.OpenID), ItemSubscribe); n != 2 {
		t.Fatalf("%d subscription messages in the inbox", n)
	}

	// Mini program: subscribe/send with its own token and rules.
	mpTok := b.token(t, testMP, testMPSecret)
	mu := b.user(t, testMP, false)
	mpBody := templateBody(mu.OpenID, tmplMPSub, map[string]string{"name1": "王五", "time2": "2026-01-15 15:00"})
	mpBody["page"] = "pages/booking?id=7"
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/send", tq(mpTok), mpBody), 43101)
	b.act(t, mu.OpenID, Action{Type: ActionSubscribePopup, TemplateIDs: []string{tmplMPSub}})
	bad := templateBody(mu.OpenID, tmplMPSub, map[string]string{"name1": "王五", "time2": "later"})
	a := b.post(t, "/cgi-bin/message/subscribe/send", tq(mpTok), bad)
	wantErrcode(t, a, 47003)
	if !strings.Contains(a.str("errmsg"), "data.time2.value") {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/send", tq(mpTok), mpBody), 0)
	items := inbox(t, b, mu.OpenID)
	last := items[len(items)-1]
	if last.Kind != ItemSubscribe || last.MiniProgram == nil || last.MiniProgram.PagePath != "pages/booking?id=7" {
		t.Fatalf("mp subscription item: %+v", last)
	}
}

func TestCustomSendWindows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, false)
	text := map[string]any{"touser": u.OpenID, "msgtype": "text", "text": map[string]string{"content": "Hello <World> & co"}}
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45015)

	// Follow: 3 messages within a minute.
	b.act(t, u.OpenID, Action{Type: ActionSubscribe})
	for range 3 {
		wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 0)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45047)
	b.clock.Advance(61 * time.Second)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45015)

	// A user message: 5 within 48 hours.
	b.act(t, u.OpenID, Action{Type: ActionText, Content: "在吗"})
	for range 5 {
		wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 0)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45047)
	b.act(t, u.OpenID, Action{Type: ActionText, Content: "还在吗"})
	b.clock.Advance(47 * time.Hour)
	tok = b.token(t, testOA, testOASecret)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 0)
	b.clock.Advance(2 * time.Hour)
	tok = b.token(t, testOA, testOASecret)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45015)

	// Message types and their checks, inside a fresh window.
	b.act(t, u.OpenID, Action{Type: ActionText, Content: "再来"})
	news := func(n int) map[string]any {
		var arts []map[string]string
		for range n {
			arts = append(arts, map[string]string{"title": "Happy Day", "url": "https://example.com"})
		}
		return map[string]any{"touser": u.OpenID, "msgtype": "news", "news": map[string]any{"articles": arts}}
	}
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), news(2)), 45008)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), map[string]any{"touser": u.OpenID, "msgtype": "bogus"}), 40008)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), map[string]any{"touser": "onobody", "msgtype": "text"}), 40003)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), news(1)), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), map[string]any{"touser": u.OpenID, "msgtype": "miniprogrampage",
		"miniprogrampage": map[string]string{"title": "看房", "appid": testMP, "pagepath": "pages/home", "thumb_media_id": "m1"}}), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/typing", tq(tok), map[string]string{"touser": u.OpenID, "command": "Typing"}), 0)

	items := inbox(t, b, u.OpenID)
	last := items[len(items)-1]
	if last.Kind != ItemCustom || last.MsgType != "miniprogrampage" || last.MiniProgram.AppID != testMP {
		t.Fatalf("last custom item: %+v", last)
	}
	first := items[0]
	if first.Content != "Hello <World> & co" {
		t.Fatalf("custom text %q", first.Content)
	}
	// Unfollowing closes the window.
	b.act(t, u.OpenID, Action{Type: ActionUnsubscribe})
	wantErrcode(t, b.post(t, "/cgi-bin/message/custom/send", tq(tok), text), 45015)
}
