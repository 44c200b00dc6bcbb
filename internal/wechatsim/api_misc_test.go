package wechatsim

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMenu(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	wantErrcode(t, b.get(t, "/cgi-bin/menu/get", tq(tok)), 46003)
	good := map[string]any{"button": []any{
		map[string]any{"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
		map[string]any{"name": "菜单", "sub_button": []any{
			map[string]any{"type": "view", "name": "搜索", "url": "http://www.soso.com/"},
			map[string]any{"type": "miniprogram", "name": "wxa", "url": "http://mp.weixin.qq.com", "appid": "wx286b93c14bbf93aa", "pagepath": "pages/lunar/index"},
			map[string]any{"type": "click", "name": "赞一下我们", "key": "V1001_GOOD"},
		}},
	}}
	wantErrcode(t, b.post(t, "/cgi-bin/menu/create", tq(tok), good), 0)
	a := b.get(t, "/cgi-bin/menu/get", tq(tok))
	buttons := a.m["menu"].(map[string]any)["button"].([]any)
	if len(buttons) != 2 || !strings.Contains(string(a.raw), `"sub_button":[]`) {
		t.Fatalf("menu/get: %s", a.raw)
	}

	click := func(name, key string) map[string]any {
		return map[string]any{"type": "click", "name": name, "key": key}
	}
	view := func(u string) map[string]any { return map[string]any{"type": "view", "name": "v", "url": u} }
	menu := func(buttons ...any) map[string]any { return map[string]any{"button": buttons} }
	sub := func(subs ...any) map[string]any { return map[string]any{"name": "more", "sub_button": subs} }
	tests := []struct {
		name string
		body map[string]any
		want int64
	}{
		{"no buttons", menu(), 40016},
		{"four buttons", menu(click("a", "a"), click("b", "b"), click("c", "c"), click("d", "d")), 40016},
		{"six sub buttons", menu(sub(click("a", "a"), click("b", "b"), click("c", "c"), click("d", "d"), click("e", "e"), click("f", "f"))), 40023},
		{"bad type", menu(map[string]any{"type": "nope", "name": "x"}), 40017},
		{"bad sub type", menu(sub(map[string]any{"type": "nope", "name": "x"})), 40024},
		{"top name 17 bytes", menu(click(strings.Repeat("x", 17), "k")), 40018},
		{"sub name 61 bytes", menu(sub(click(strings.Repeat("x", 61), "k"))), 40025},
		{"missing key", menu(click("a", "")), 40019},
		{"sub key too long", menu(sub(click("a", strings.Repeat("k", 129)))), 40026},
		{"missing url", menu(view("")), 40020},
		{"sub url too long", menu(sub(view("http://a.com/" + strings.Repeat("u", 1024)))), 40027},
		{"four link domains", menu(sub(view("http://a.com"), view("http://b.com"), view("http://c.com"), view("http://d.com"))), 65316},
		{"media_id missing", menu(map[string]any{"type": "media_id", "name": "m"}), 40007},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, b.post(t, "/cgi-bin/menu/create", tq(tok), tt.body), tt.want)
		})
	}
	wantErrcode(t, b.get(t, "/cgi-bin/menu/delete", tq(tok)), 0)
	wantErrcode(t, b.get(t, "/cgi-bin/menu/get", tq(tok)), 46003)
}

func TestConditionalMenu(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	vip, other := b.user(t, testOA, true), b.user(t, testOA, true)
	tagged := b.post(t, "/cgi-bin/tags/create", tq(tok), map[string]any{"tag": map[string]any{"name": "VIP"}})
	tagID := tagged.m["tag"].(map[string]any)["id"]
	wantErrcode(t, b.post(t, "/cgi-bin/tags/members/batchtagging", tq(tok), map[string]any{"tagid": tagID, "openid_list": []string{vip.OpenID}}), 0)

	click := func(name, key string) map[string]any {
		return map[string]any{"type": "click", "name": name, "key": key}
	}
	vipMenu := map[string]any{"button": []any{click("会员专享", "VIP")}, "matchrule": map[string]any{"tag_id": tagID}}
	// A conditional menu needs a default menu first.
	wantErrcode(t, b.post(t, "/cgi-bin/menu/addconditional", tq(tok), vipMenu), 65303)
	wantErrcode(t, b.post(t, "/cgi-bin/menu/create", tq(tok), map[string]any{"button": []any{click("默认", "DEFAULT")}}), 0)

	for _, tt := range []struct {
		name string
		body map[string]any
		want int64
	}{
		{"no matchrule", map[string]any{"button": []any{click("a", "a")}}, 65304},
		{"empty matchrule", map[string]any{"button": []any{click("a", "a")}, "matchrule": map[string]any{"sex": ""}}, 65304},
		{"by sex", map[string]any{"button": []any{click("a", "a")}, "matchrule": map[string]any{"sex": "1"}}, 65320},
		{"by language", map[string]any{"button": []any{click("a", "a")}, "matchrule": map[string]any{"tag_id": "2", "language": "zh_CN"}}, 65320},
		{"bad platform", map[string]any{"button": []any{click("a", "a")}, "matchrule": map[string]any{"client_platform_type": "9"}}, 40003},
		{"bad buttons", map[string]any{"button": []any{click("a", "")}, "matchrule": map[string]any{"client_platform_type": "1"}}, 40019},
	} {
		wantErrcode(t, b.post(t, "/cgi-bin/menu/addconditional", tq(tok), tt.body), tt.want)
	}

	added := b.post(t, "/cgi-bin/menu/addconditional", tq(tok), vipMenu)
	menuID, _ := added.m["menuid"].(string)
	if menuID == "" {
		t.Fatalf("addconditional: %s", added.raw)
	}
	// The platform rule: every simulated phone is Android (2).
	iosMenu := map[string]any{"button": []any{click("iOS", "IOS")}, "matchrule": map[string]any{"client_platform_type": 1}}
	wantErrcode(t, b.post(t, "/cgi-bin/menu/addconditional", tq(tok), iosMenu), 0)

	sees := func(openid string) string {
		t.Helper()
		a := b.post(t, "/cgi-bin/menu/trymatch", tq(tok), map[string]any{"user_id": openid})
		buttons, _ := a.m["button"].([]any)
		if len(buttons) == 0 {
			t.Fatalf("trymatch %s: %s", openid, a.raw)
		}
		return buttons[0].(map[string]any)["key"].(string)
	}
	if got := sees(vip.OpenID); got != "VIP" {
		t.Errorf("the tagged follower sees %q, want the VIP menu", got)
	}
	if got := sees(other.OpenID); got != "DEFAULT" {
		t.Errorf("an untagged follower sees %q, want the default menu", got)
	}
	if got := b.sim.Menu(testOA, vip.OpenID); len(got) != 1 || got[0].Key != "VIP" {
		t.Errorf("the phone page shows %+v to the tagged follower", got)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/menu/trymatch", tq(tok), map[string]any{"user_id": "o-nobody"}), 65302)

	got := b.get(t, "/cgi-bin/menu/get", tq(tok))
	conds, _ := got.m["conditionalmenu"].([]any)
	if len(conds) != 2 || got.m["menu"].(map[string]any)["menuid"] == nil {
		t.Fatalf("menu/get with conditional menus: %s", got.raw)
	}
	if rule := conds[0].(map[string]any)["matchrule"].(map[string]any); rule["tag_id"] != tagID.(json.Number).String() {
		t.Errorf("matchrule read back: %v", rule)
	}

	wantErrcode(t, b.post(t, "/cgi-bin/menu/delconditional", tq(tok), map[string]any{"menuid": menuID}), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/menu/delconditional", tq(tok), map[string]any{"menuid": menuID}), 65301)
	if got := sees(vip.OpenID); got != "DEFAULT" {
		t.Errorf("after delconditional the tagged follower sees %q", got)
	}
	// menu/delete takes the conditional menus with it.
	wantErrcode(t, b.get(t, "/cgi-bin/menu/delete", tq(tok)), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/menu/addconditional", tq(tok), iosMenu), 65303)
	wantErrcode(t, b.post(t, "/cgi-bin/menu/trymatch", tq(tok), map[string]any{"user_id": vip.OpenID}), 46003)
}

func TestJSCode2Session(t *testing.T) {
	t.Parallel()
	b := setup(t)
	oaUser := b.user(t, testOA, true)
	mpUser, err := b.sim.CreateUser(t.Context(), CreateUserRequest{AppID: testMP, UnionID: oaUser.UnionID})
	if err != nil {
		t.Fatal(err)
	}
	login := func(code string) apiAnswer {
		return b.get(t, "/sns/jscode2session", url.Values{"appid": {testMP}, "secret": {testMPSecret}, "js_code": {code}, "grant_type": {"authorization_code"}})
	}
	code := b.act(t, mpUser.OpenID, Action{Type: ActionOpenMiniProgram}).Code
	a := login(code)
	if a.header.Get("Content-Type") != contentTypePlain {
		t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
	}
	key, err := base64.StdEncoding.DecodeString(a.str("session_key"))
	if err != nil || len(key) != 16 {
		t.Errorf("session_key %q", a.str("session_key"))
	}
	if a.str("openid") != mpUser.OpenID || a.str("unionid") != oaUser.UnionID {
		t.Fatalf("jscode2session: %s", a.raw)
	}
	if _, has := a.m["errcode"]; has {
		t.Error("errcode on success")
	}
	wantErrcode(t, login(code), 40163)
	wantErrcode(t, login("never-issued"), 40029)

	late := b.act(t, mpUser.OpenID, Action{Type: ActionOpenMiniProgram}).Code
	b.clock.Advance(5*time.Minute + time.Second)
	wantErrcode(t, login(late), 40029)

	fresh := b.act(t, mpUser.OpenID, Action{Type: ActionOpenMiniProgram}).Code
	wantErrcode(t, b.post(t, "/sns/jscode2session?appid="+testMP+"&secret="+testMPSecret+"&js_code="+fresh+"&grant_type=authorization_code", nil, ""), 41002)
	wantErrcode(t, b.get(t, "/sns/jscode2session", url.Values{"appid": {testMP}, "secret": {"bad"}, "js_code": {fresh}, "grant_type": {"authorization_code"}}), 40125)
	wantErrcode(t, b.get(t, "/sns/jscode2session", url.Values{"appid": {testOA}, "secret": {testOASecret}, "js_code": {fresh}, "grant_type": {"authorization_code"}}), 40013)
	wantErrcode(t, b.get(t, "/sns/jscode2session", url.Values{"appid": {testMP}, "secret": {testMPSecret}, "grant_type": {"authorization_code"}}), 41008)
	wantErrcode(t, login(fresh), 0)

	if _, err := b.sim.Act(t.Context(), oaUser.OpenID, Action{Type: ActionOpenMiniProgram}); ErrorCodeOf(err) != CodeInvalid {
		t.Errorf("open_miniprogram on an OA user: %v", err)
	}
}

func TestIPListsAndCallbackCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))
	tok := b.token(t, testOA, testOASecret)
	if ips := b.get(t, "/cgi-bin/getcallbackip", tq(tok)).m["ip_list"].([]any); len(ips) == 0 || ips[0] != "127.0.0.1" {
		t.Errorf("getcallbackip %v", ips)
	}
	if ips := b.get(t, "/cgi-bin/get_api_domain_ip", tq(tok)).m["ip_list"].([]any); len(ips) == 0 {
		t.Error("get_api_domain_ip empty")
	}
	a := b.post(t, "/cgi-bin/callback/check", tq(tok), map[string]string{"action": "all", "check_operator": "DEFAULT"})
	ping := a.m["ping"].([]any)[0].(map[string]any)
	if ping["package_loss"] != "0%" || a.m["dns"].([]any)[0].(map[string]any)["ip"] != "127.0.0.1" {
		t.Errorf("callback/check: %s", a.raw)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/callback/check", tq(tok), map[string]string{"action": "nope", "check_operator": "DEFAULT"}), 40202)
	wantErrcode(t, b.post(t, "/cgi-bin/callback/check", tq(tok), map[string]string{"action": "all", "check_operator": "NOPE"}), 40203)
	mpTok := b.token(t, testMP, testMPSecret)
	wantErrcode(t, b.post(t, "/cgi-bin/callback/check", tq(mpTok), map[string]string{"action": "all", "check_operator": "DEFAULT"}), 40201)
}

func TestResponseFormat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, true)
	// Action APIs answer {"errcode":0,"errmsg":"ok"}; no HTML escaping, no \u escapes.
	a := b.post(t, "/cgi-bin/message/custom/send", tq(tok), map[string]any{"touser": u.OpenID, "msgtype": "text", "text": map[string]string{"content": "x"}})
	if string(a.raw) != `{"errcode":0,"errmsg":"ok"}` {
		t.Errorf("action answer %s", a.raw)
	}
	a = b.get(t, "/cgi-bin/template/get_all_private_template", tq(tok))
	if strings.Contains(string(a.raw), `\u`) || !strings.Contains(string(a.raw), "新访客提醒") {
		t.Errorf("escaped JSON: %s", a.raw)
	}
	// Unknown APIs answer JSON, not an HTML page.
	a = b.get(t, "/cgi-bin/not/simulated", tq(tok))
	if a.status != 404 || a.errcode() != 48001 {
		t.Errorf("unknown API: %d %s", a.status, a.raw)
	}
}

func TestJSAPITicketAndRemark(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	first := b.get(t, "/cgi-bin/ticket/getticket", tq(tok, "type", "jsapi"))
	second := b.get(t, "/cgi-bin/ticket/getticket", tq(tok, "type", "jsapi"))
	if first.errcode() != 0 || first.str("ticket") == "" || first.str("ticket") != second.str("ticket") {
		t.Fatalf("getticket: %s / %s", first.raw, second.raw)
	}
	if exp := first.int("expires_in"); exp <= 0 || exp > 7200 {
		t.Errorf("expires_in %d", exp)
	}
	if got := b.get(t, "/cgi-bin/ticket/getticket", tq(tok, "type", "other")).errcode(); got != 40097 {
		t.Errorf("bad type: errcode %d, want 40097", got)
	}

	u := b.user(t, testOA, true)
	if got := b.post(t, "/cgi-bin/user/info/updateremark", tq(tok), map[string]any{"openid": u.OpenID, "remark": "大客户"}).errcode(); got != 0 {
		t.Fatalf("updateremark errcode %d", got)
	}
	if info := b.get(t, "/cgi-bin/user/info", tq(tok, "openid", u.OpenID)); info.str("remark") != "大客户" {
		t.Errorf("user/info after updateremark: %s", info.raw)
	}
	if got := b.post(t, "/cgi-bin/user/info/updateremark", tq(tok), map[string]any{"openid": "o-unknown", "remark": "x"}).errcode(); got != 40003 {
		t.Errorf("unknown openid: errcode %d, want 40003", got)
	}
}
