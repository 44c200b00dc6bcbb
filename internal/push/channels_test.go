package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const bizsendPath = "/cgi-bin/message/subscribe/bizsend"

func noticeRequest(openids ...string) push.Request {
	return push.Request{Account: "main", To: push.Recipients{OpenIDs: openids}, Template: "notice",
		Data: raw(map[string]string{"what": "看房预约", "time": "2026-11-24 15:00"}), URL: "https://example.com/visit/1"}
}

// OA subscription notifications: one grant per send, counted from the
// popup events; no grant → skipped without calling WeChat; a fallback
// alias sends a template message instead.
func TestSubscribeGrants(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true})
		b.ready(t)
		ctx := context.Background()
		if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "notice", TemplateID: tplOASub,
			Fields: map[string]string{"what": "thing1", "time": "time2"}}); err != nil {
			t.Fatal(err)
		}
		alice, bob := b.follower(t, "alice"), b.follower(t, "bob")

		// No grant yet: skipped, WeChat not called.
		res := b.send(t, noticeRequest(alice), push.SendOptions{})
		if r := res.Accepted.Recipients[0]; r.Status != "skipped" || r.Reason != "no_grant" {
			t.Fatalf("without a grant: %+v", r)
		}
		if n := b.sim.CallCount(oaApp, bizsendPath); n != 0 {
			t.Fatalf("%d bizsend calls without a grant", n)
		}

		// Alice accepts twice on an H5 page (popup events through the callback).
		for range 2 {
			if _, err := b.sim.Act(ctx, alice, wechatsim.Action{Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{tplOASub}}); err != nil {
				t.Fatal(err)
			}
		}
		g, err := b.svc.Grants(ctx, "main", alice)
		if err != nil || len(g.Templates) != 1 || g.Templates[0].Available != 2 {
			t.Fatalf("grants = %+v, %v", g, err)
		}
		res = b.send(t, noticeRequest(alice, bob), push.SendOptions{})
		if res.Accepted.Recipients[0].Status != "queued" || res.Accepted.Recipients[1].Reason != "no_grant" {
			t.Fatalf("recipients = %+v", res.Accepted.Recipients)
		}
		m := b.wait(t, res.Accepted.ID, 10*time.Second)
		if m.Counts["delivered"] != 1 || m.Channel != "subscribe" {
			t.Fatalf("message = %+v", m)
		}
		g, _ = b.svc.Grants(ctx, "main", alice)
		if g.Templates[0].Available != 1 {
			t.Errorf("after one send %d grants left, want 1", g.Templates[0].Available)
		}
		items := b.inbox(t, oaApp, alice)
		if len(items) != 1 || items[0].Kind != wechatsim.ItemSubscribe || items[0].URL != "https://example.com/visit/1" {
			t.Errorf("inbox = %+v", items)
		}

		// Alice turns the notifications off: her last grant is revoked.
		if _, err := b.sim.Act(ctx, alice, wechatsim.Action{Type: wechatsim.ActionSubscribeOff, TemplateIDs: []string{tplOASub}}); err != nil {
			t.Fatal(err)
		}
		g, _ = b.svc.Grants(ctx, "main", alice)
		if len(g.Templates) != 0 {
			t.Errorf("grants after turning off = %+v", g)
		}

		// With a fallback, recipients without a grant get the template message.
		if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "notice", TemplateID: tplOASub, Fallback: "visit_fb",
			Fields: map[string]string{"what": "thing1", "time": "time2"}}); err == nil {
			t.Fatal("a fallback to a missing alias was accepted")
		}
		if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "visit_fb", TemplateID: tplVisit,
			Fields: map[string]string{"what": "thing1", "time": "time3"}, Defaults: map[string]string{"thing2": "预约"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "notice", TemplateID: tplOASub, Fallback: "visit_fb",
			Fields: map[string]string{"what": "thing1", "time": "time2"}}); err != nil {
			t.Fatal(err)
		}
		res = b.send(t, noticeRequest(bob), push.SendOptions{})
		if r := res.Accepted.Recipients[0]; r.Status != "queued" || r.Channel != "template" {
			t.Fatalf("fallback recipient = %+v", r)
		}
		b.wait(t, res.Accepted.ID, 10*time.Second, "delivered")
		items = b.inbox(t, oaApp, bob)
		if len(items) != 1 || items[0].Kind != wechatsim.ItemTemplate || items[0].Text != "客户：看房预约\n访问页面：预约\n访问时间：2026-11-24 15:00" {
			t.Errorf("bob's inbox = %+v", items)
		}
	})
}

// Mini program subscription messages: grants reported by the mini program
// (wx.requestSubscribeMessage) through the API; the same accept reported
// by the event too counts once.
func TestMiniProgramGrantsFromAPI(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{work: true})
	b.ready(t)
	ctx := context.Background()
	u, err := b.sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: mpApp, Name: "mp-user"})
	if err != nil {
		t.Fatal(err)
	}
	// The popup in the mini program: the simulator records the grant and
	// pushes the event to the MP's callback; the mini program also reports
	// the result to the API.
	if _, err := b.sim.Act(ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{tplMPSub}}); err != nil {
		t.Fatal(err)
	}
	g, err := b.svc.ReportGrants(ctx, push.GrantReport{Account: "shop-mp", OpenID: u.OpenID,
		Results: map[string]string{"errMsg": "requestSubscribeMessage:ok", tplMPSub: "accept"}})
	if err != nil || len(g.Templates) != 1 || g.Templates[0].Available != 1 {
		t.Fatalf("grants = %+v, %v", g, err)
	}
	_, err = b.svc.ReportGrants(ctx, push.GrantReport{Account: "shop-mp", OpenID: u.OpenID, Results: map[string]string{tplMPSub: "maybe"}})
	pushErr(t, err, "invalid_result", "results."+tplMPSub)

	req := push.Request{Account: "shop-mp", To: push.Recipients{OpenIDs: []string{u.OpenID}}, Template: tplMPSub,
		Data: raw(map[string]string{"character_string1": "8812", "thing2": "咖啡豆"}), Page: "pages/order?id=8812", MiniProgramState: "trial"}
	res := b.send(t, req, push.SendOptions{})
	m := b.wait(t, res.Accepted.ID, 10*time.Second)
	if m.Counts["delivered"] != 1 || m.Channel != "mp_subscribe" {
		t.Fatalf("message = %+v", m)
	}
	items := b.inbox(t, mpApp, u.OpenID)
	if len(items) != 1 || items[0].MiniProgram == nil || items[0].MiniProgram.PagePath != "pages/order?id=8812" {
		t.Errorf("inbox = %+v", items)
	}
	res = b.send(t, req, push.SendOptions{})
	if r := res.Accepted.Recipients[0]; r.Reason != "no_grant" {
		t.Errorf("second send = %+v", r)
	}
	_, err = b.svc.Send(ctx, push.Request{Account: "shop-mp", To: req.To, Template: tplMPSub, Data: req.Data, URL: "https://x"}, push.SendOptions{})
	pushErr(t, err, "jump_not_allowed", "url")
}

// Customer-service messages go only inside the 48-hour window the inbound
// log shows.
func TestCustomWindow(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{work: true})
	ctx := context.Background()
	alice, bob := b.follower(t, "alice"), b.follower(t, "bob")
	// Alice wrote yesterday (the log the callback keeps); bob three days ago.
	now := time.Now().UTC()
	b.exec(t, `INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, received_at) VALUES ('main', 'k1', $1, 'text', $2)`,
		alice, db.Timestamp(now.Add(-24*time.Hour)))
	b.exec(t, `INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, received_at) VALUES ('main', 'k2', $1, 'text', $2)`,
		bob, db.Timestamp(now.Add(-72*time.Hour)))
	// The simulator's own window: alice writes for real.
	if _, err := b.sim.Act(ctx, alice, wechatsim.Action{Type: wechatsim.ActionText, Content: "在吗"}); err != nil {
		t.Fatal(err)
	}
	res := b.send(t, push.Request{Account: "main", To: push.Recipients{OpenIDs: []string{alice, bob}}, Text: "您好，我们已收到"}, push.SendOptions{})
	if res.Accepted.Recipients[0].Status != "queued" || res.Accepted.Recipients[1].Reason != "outside_window" {
		t.Fatalf("recipients = %+v", res.Accepted.Recipients)
	}
	// WeChat's answer is the delivery: custom messages have no receipt.
	m := b.wait(t, res.Accepted.ID, 10*time.Second)
	if m.Counts["delivered"] != 1 || m.Channel != "custom" {
		t.Errorf("message = %+v", m)
	}
	items := b.inbox(t, oaApp, alice)
	if len(items) != 1 || items[0].Content != "您好，我们已收到" {
		t.Errorf("inbox = %+v", items)
	}
	_, err := b.svc.Send(ctx, push.Request{Account: "main", To: push.Recipients{OpenIDs: []string{alice}}, Channel: "custom",
		Custom: []byte(`{"msgtype":"news"}`)}, push.SendOptions{})
	pushErr(t, err, "missing_content", "custom.news")
}

// External ids resolve through bindings (on the account, or by unionid on
// another app); unionids through followers and mini-program users.
func TestResolveExternalIDsAndUnionIDs(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{})
		b.ready(t)
		alice, bob := b.follower(t, "alice"), b.follower(t, "bob")
		aliceUser, _ := b.sim.GetUser(oaApp, alice)
		now := db.Timestamp(time.Now())
		// S-1024 bound on the OA to alice; C-7 bound in the mini program to
		// a user who is alice too (same unionid).
		b.exec(t, `INSERT INTO bindings (external_id, account, openid, unionid, source, exclusive, created_at) VALUES ('S-1024', 'main', $1, $2, 'qrcode', TRUE, $3)`,
			alice, aliceUser.UnionID, now)
		b.exec(t, `INSERT INTO miniprogram_users (account, openid, unionid, first_login_at, last_login_at) VALUES ('shop-mp', 'o-mp-alice', $1, $2, $2)`,
			aliceUser.UnionID, now)
		b.exec(t, `INSERT INTO bindings (external_id, account, openid, unionid, source, exclusive, created_at) VALUES ('C-7', 'shop-mp', 'o-mp-alice', $1, 'miniprogram', TRUE, $2)`,
			aliceUser.UnionID, now)

		req := visitRequest(bob)
		req.To.ExternalIDs = []string{"S-1024", "C-7", "S-9"}
		res := b.send(t, req, push.SendOptions{})
		got := res.Accepted.Recipients
		if len(got) != 4 || got[1] != (push.RecipientResult{ExternalID: "S-1024", OpenID: alice, Status: "queued"}) ||
			got[2] != (push.RecipientResult{ExternalID: "C-7", OpenID: alice, Status: "skipped", Reason: "duplicate"}) ||
			got[3] != (push.RecipientResult{ExternalID: "S-9", Status: "skipped", Reason: "not_bound"}) {
			t.Errorf("recipients = %+v", got)
		}
		// The mini program reaches alice's MP openid by unionid.
		mpReq := push.Request{Account: "shop-mp", To: push.Recipients{UnionIDs: []string{aliceUser.UnionID}, ExternalIDs: []string{"S-1024"}},
			Template: tplMPSub, Data: raw(map[string]string{"character_string1": "8812", "thing2": "咖啡豆"})}
		res = b.send(t, mpReq, push.SendOptions{})
		got = res.Accepted.Recipients
		if len(got) != 2 || got[0].OpenID != "o-mp-alice" || got[0].Reason != "no_grant" || got[1].OpenID != "o-mp-alice" || got[1].Reason != "duplicate" {
			t.Errorf("mini program recipients = %+v", got)
		}
	})
}

// A customer-service image, voice or video may name a local file: it is
// uploaded once and sent by its media_id; a file that is not of its type,
// a missing one, or a file given with a media_id is refused before anything
// is queued.
func TestCustomMessageFromFile(t *testing.T) {
	t.Parallel()
	b := setup(t, dbtest.SQLite(t), setupOptions{work: true, media: true})
	ctx := context.Background()
	alice := b.follower(t, "alice")
	// She writes: the simulator's window opens, and the log the callback
	// keeps says so.
	if _, err := b.sim.Act(ctx, alice, wechatsim.Action{Type: wechatsim.ActionText, Content: "发张图"}); err != nil {
		t.Fatal(err)
	}
	b.exec(t, `INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, received_at) VALUES ('main', 'k1', $1, 'text', $2)`,
		alice, db.Timestamp(time.Now().UTC()))
	dir := t.TempDir()
	jpg := filepath.Join(dir, "welcome.jpg")
	if err := os.WriteFile(jpg, append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 200)...), 0o600); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.jpg")
	if err := os.WriteFile(notes, []byte("not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	image := func(content string) push.Request {
		return push.Request{Account: "main", To: push.Recipients{OpenIDs: []string{alice}}, Custom: []byte(`{"msgtype":"image","image":` + content + `}`)}
	}
	quoted := func(p string) string { b, _ := json.Marshal(p); return string(b) }
	for i := range 2 {
		res := b.send(t, image(`{"file":`+quoted(jpg)+`}`), push.SendOptions{})
		if m := b.wait(t, res.Accepted.ID, 10*time.Second); m.Counts["delivered"] != 1 {
			t.Fatalf("send %d: %+v", i, m)
		}
	}
	items := b.inbox(t, oaApp, alice)
	if len(items) != 2 || items[0].MsgType != "image" || items[0].MediaID == "" || items[1].MediaID != items[0].MediaID {
		t.Fatalf("the follower got %+v", items)
	}
	if n := b.sim.CallCount(oaApp, "/cgi-bin/media/upload"); n != 1 {
		t.Errorf("the file went up %d times, want once", n)
	}

	// A link article's cover from a file: uploaded as an article image, its
	// URL in picurl.
	news := push.Request{Account: "main", To: push.Recipients{OpenIDs: []string{alice}},
		Custom: []byte(`{"msgtype":"news","news":{"articles":[{"title":"开盘","description":"本周六","url":"https://example.com/open","pic_file":` + quoted(jpg) + `}]}}`)}
	res := b.send(t, news, push.SendOptions{})
	if m := b.wait(t, res.Accepted.ID, 10*time.Second); m.Counts["delivered"] != 1 {
		t.Fatalf("news with pic_file: %+v", m)
	}
	items = b.inbox(t, oaApp, alice)
	if last := items[len(items)-1]; len(last.Articles) != 1 || !strings.HasPrefix(last.Articles[0].PicURL, "http://mmbiz.qpic.cn/") {
		t.Errorf("the news article arrived as %+v", last)
	}
	if n := b.sim.CallCount(oaApp, "/cgi-bin/media/uploadimg"); n != 1 {
		t.Errorf("uploadimg called %d times", n)
	}

	for _, tt := range []struct{ content, code string }{
		{`{"file":` + quoted(jpg) + `,"media_id":"MEDIA"}`, "invalid_custom"},
		{`{"file":` + quoted(filepath.Join(dir, "gone.jpg")) + `}`, "media_file_unreadable"},
		{`{"file":` + quoted(notes) + `}`, "media_format_invalid"},
		{`{"file":""}`, "invalid_custom"},
	} {
		_, err := b.svc.Send(ctx, image(tt.content), push.SendOptions{})
		var p *problem.Error
		if !errors.As(err, &p) || p.Code != tt.code {
			t.Errorf("image %s: %v, want %s", tt.content, err, tt.code)
		}
	}
	if n := b.sim.CallCount(oaApp, "/cgi-bin/media/upload"); n != 1 {
		t.Errorf("a refused file reached WeChat (%d uploads)", n)
	}
}
