package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A menu set through the API is pressed on the simulated phone: every
// kind of button pushes its event, each is logged, and the buttons with a
// key are answered by their click rule.
func TestMenuPressedOnThePhone(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000e2ement"
		appSec = "e2e-menu-secret-0123456789abcdef01"
	)
	reply := func(key, text string) config.ReplyRule {
		return config.ReplyRule{Match: "click", EventKey: key, Reply: config.ReplyContent{Type: "text", Content: text}}
	}
	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{AppID: appID, AppSecret: appSec, CallbackURL: gatewayURL + "/wx/main", Token: "menutoken"}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: appSec, Token: "menutoken",
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simURL},
			Replies: []config.ReplyRule{reply("TODAY", "今日推荐：咖啡豆"), reply("SCAN_1", "扫码结果已收到"), reply("PIC_1", "图片收到"), reply("LOC_1", "位置收到")}}}
	})
	status, _, body := e.api("PUT", "/api/v1/menus", `{"account":"main","button":[
	  {"name":"今日推荐","type":"click","key":"TODAY"},
	  {"name":"工具","sub_button":[
	    {"name":"扫一扫","type":"scancode_waitmsg","key":"SCAN_1"},
	    {"name":"发图","type":"pic_photo_or_album","key":"PIC_1"},
	    {"name":"位置","type":"location_select","key":"LOC_1"}]},
	  {"name":"更多","sub_button":[
	    {"name":"官网","type":"view","url":"https://www.example.com/"},
	    {"name":"小程序","type":"miniprogram","url":"https://www.example.com/","appid":"wx286b93c14bbf93aa","pagepath":"pages/index"}]}]}`)
	if status != http.StatusOK {
		t.Fatalf("put menu: %d %s", status, body)
	}
	u, err := e.sim.CreateUser(e.ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	for button, want := range map[string]string{"今日推荐": "今日推荐：咖啡豆", "工具/扫一扫": "扫码结果已收到", "发图": "图片收到", "位置": "位置收到",
		"官网": "", "小程序": ""} {
		res, err := e.sim.Act(e.ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionMenu, Title: button})
		if err != nil {
			t.Fatalf("press %s: %v", button, err)
		}
		got := ""
		if res.Reply != nil {
			got = res.Reply.Content
		}
		if got != want || res.Delivery == nil || res.Delivery.Status != http.StatusOK {
			t.Errorf("press %s: the phone shows %q (delivery %+v), want %q", button, got, res.Delivery, want)
		}
	}
	if _, err := e.sim.Act(e.ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionMenu, Title: "没有这个"}); err == nil {
		t.Error("pressing a button the menu lacks was accepted")
	}

	database, err := db.Open(context.Background(), e.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()
	rows, err := database.QueryContext(e.ctx, `SELECT event, fields FROM inbound_messages WHERE openid = $1 AND msg_type = 'event'`, u.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{}
	for rows.Next() {
		var event, fields string
		if err := rows.Scan(&event, &fields); err != nil {
			t.Fatal(err)
		}
		logged[event] = fields
	}
	rows.Close()
	for _, event := range []string{"CLICK", "scancode_waitmsg", "pic_photo_or_album", "location_select", "VIEW", "view_miniprogram"} {
		if _, ok := logged[event]; !ok {
			t.Errorf("no %s event logged (logged: %v)", event, logged)
		}
	}
	if f := logged["scancode_waitmsg"]; !strings.Contains(f, "weixin.qq.com/r/sim-scan") {
		t.Errorf("the scan's result is not in the log: %s", f)
	}
	if f := logged["location_select"]; !strings.Contains(f, "广州市天河区") {
		t.Errorf("the location is not in the log: %s", f)
	}

	// A conditional menu for a tag: the tagged follower's phone shows it and
	// presses its button; the others keep the default menu.
	status, _, body = e.api("POST", "/api/v1/tags", `{"account":"main","name":"会员"}`)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("create tag: %d %s", status, body)
	}
	var tag struct{ ID int64 }
	if err := json.Unmarshal(body, &tag); err != nil || tag.ID == 0 {
		t.Fatalf("create tag: %s", body)
	}
	member, err := e.sim.CreateUser(e.ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := e.api("POST", fmt.Sprintf("/api/v1/tags/%d/members", tag.ID), `{"account":"main","add":["`+member.OpenID+`"]}`); status != http.StatusOK {
		t.Fatalf("tag the member: %d %s", status, body)
	}
	status, _, body = e.api("PUT", "/api/v1/menus", `{"account":"main","button":[{"name":"今日推荐","type":"click","key":"TODAY"}],
	  "conditional":[{"match":{"tag":"会员"},"button":[{"name":"会员福利","type":"click","key":"SCAN_1"}]}]}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"tag":"会员"`) {
		t.Fatalf("put conditional menu: %d %s", status, body)
	}
	status, _, body = e.api("GET", "/api/v1/menus/match?account=main&openid="+member.OpenID, "")
	if status != http.StatusOK || !strings.Contains(string(body), "会员福利") {
		t.Fatalf("match the member's menu: %d %s", status, body)
	}
	res, err := e.sim.Act(e.ctx, member.OpenID, wechatsim.Action{Type: wechatsim.ActionMenu, Title: "会员福利"})
	if err != nil || res.Reply == nil || res.Reply.Content != "扫码结果已收到" {
		t.Fatalf("the member presses 会员福利: %+v %v", res, err)
	}
	if _, err := e.sim.Act(e.ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionMenu, Title: "会员福利"}); err == nil {
		t.Error("a follower without the tag pressed a button of the member menu")
	}
	status, _, body = e.api("GET", "/api/v1/menus?account=main", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"conditional":[{"match":{"tag":"会员"}`) {
		t.Errorf("get menus: %d %s", status, body)
	}
}
