package wechatsim

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestWebPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, true)
	b.act(t, u.OpenID, Action{Type: ActionText, Content: "<script>alert(1)</script>"})
	send := templateBody(u.OpenID, tmplVisitor, map[string]string{"thing1": "张三", "time2": "10:00"})
	send["url"] = "https://example.com/lead"
	b.post(t, "/cgi-bin/message/template/send", tq(tok), send)
	b.post(t, "/cgi-bin/qrcode/create", tq(tok), map[string]any{"action_name": "QR_LIMIT_STR_SCENE", "action_info": map[string]any{"scene": map[string]any{"scene_str": "S-1"}}})
	b.post(t, "/cgi-bin/menu/create", tq(tok), map[string]any{"button": []map[string]any{{"name": "今日", "type": "click", "key": "TODAY"},
		{"name": "工具", "sub_button": []map[string]any{{"name": "扫一扫", "type": "scancode_waitmsg", "key": "SCAN_1"}}}}})

	get := func(path string) (int, string) {
		resp, err := http.Get(b.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, page := get("/sim/?app_id=" + testOA + "&openid=" + u.OpenID)
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	for _, want := range []string{"关注 Follow", "取消关注 Unfollow", "新访客提醒", "客户：张三", "详情", "扫码 Scan", "S-1", "&lt;script&gt;",
		`data-path="今日"`, `data-path="工具/扫一扫"`, `data-type="scancode_waitmsg"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Error("user text not escaped")
	}
	if status, chat := get("/sim/?part=chat&app_id=" + testOA + "&openid=" + u.OpenID); status != 200 || strings.Contains(chat, "<html") || !strings.Contains(chat, "新访客提醒") {
		t.Errorf("chat fragment: %d %.200s", status, chat)
	}
	if status, _ := get("/sim/static/sim.js"); status != 200 {
		t.Errorf("sim.js: HTTP %d", status)
	}
	if status, _ := get("/sim/static/sim.css"); status != 200 {
		t.Errorf("sim.css: HTTP %d", status)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(b.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/sim/" {
		t.Errorf("/ → %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A mini program page renders too.
	if status, page := get("/sim/?app_id=" + testMP); status != 200 || !strings.Contains(page, "小程序") {
		t.Errorf("mini program page: %d", status)
	}
}
