package api_test

import (
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A menu put through the API is WeChat's menu; one that breaks rules is
// refused whole, every breach named, and the menu WeChat had stays.
func TestMenusAPI(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	good := []map[string]any{{"name": "今日推荐", "type": "click", "key": "TODAY"},
		{"name": "服务", "sub_button": []map[string]any{{"name": "官网", "type": "view", "url": "https://www.example.com/"}}}}
	e.must(t, "PUT", "/api/v1/menus", map[string]any{"account": "main", "button": good}, 200)
	got := list(e.must(t, "GET", "/api/v1/menus?account=main", nil, 200), "button")
	if len(got) != 2 || str(got[0], "key") != "TODAY" || len(got[1]["sub_button"].([]any)) != 1 {
		t.Errorf("WeChat's menu: %v", got)
	}
	bad := []map[string]any{{"name": "今日推荐今日推荐", "type": "click"}, {"name": "x", "type": "view", "url": "ftp://a"}}
	status, body, raw := e.call(t, "PUT", "/api/v1/menus", e.key, map[string]any{"account": "main", "button": bad})
	msg := str(body, "error", "message")
	if status != 400 || str(body, "error", "code") != "invalid_menu" || !strings.Contains(msg, "buttons[0]") || !strings.Contains(msg, "buttons[1]") ||
		!strings.Contains(msg, "字节") {
		t.Errorf("a bad menu: %d %s", status, raw)
	}
	if again := list(e.must(t, "GET", "/api/v1/menus?account=main", nil, 200), "button"); len(again) != 2 || str(again[0], "key") != "TODAY" {
		t.Errorf("the refused menu changed WeChat's: %v", again)
	}
	if status, body, _ := e.call(t, "GET", "/api/v1/menus?account=shop-mp", e.key, nil); status != 400 || str(body, "error", "code") != "not_an_official_account" {
		t.Errorf("a mini program's menu: %d %v", status, body)
	}
	e.must(t, "DELETE", "/api/v1/menus?account=main", nil, 204)
	if none := list(e.must(t, "GET", "/api/v1/menus?account=main", nil, 200), "button"); len(none) != 0 {
		t.Errorf("after delete: %v", none)
	}
}

// A follower who just wrote may be shown "typing…"; one outside the
// 48-hour window is refused with the reason.
func TestTypingIndicator(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	writer := e.user(t, e2eOA, "", true)
	if _, err := e.sim.Act(t.Context(), writer, wechatsim.Action{Type: wechatsim.ActionText, Content: "在吗？"}); err != nil {
		t.Fatal(err)
	}
	res := e.must(t, "POST", "/api/v1/followers/"+writer+"/typing", map[string]any{"account": "main"}, 200)
	if str(res, "typing") != "true" {
		t.Errorf("typing: %v", res)
	}
	e.must(t, "POST", "/api/v1/followers/"+writer+"/typing", map[string]any{"account": "main", "typing": false}, 200)
	// The conversation shows the follower's words and the window open.
	conv := e.must(t, "GET", "/api/v1/followers/"+writer+"/conversation?account=main", nil, 200)
	entries := list(conv, "entries")
	if str(conv, "window_open") != "true" || len(entries) == 0 || str(entries[0], "direction") != "in" || str(entries[0], "text") != "在吗？" {
		t.Errorf("conversation: %v", conv)
	}
	e.must(t, "POST", "/api/v1/messages", map[string]any{"account": "main", "to": map[string]any{"openids": []string{writer}},
		"channel": "custom", "text": "在的，请讲"}, 202)
	entries = list(e.must(t, "GET", "/api/v1/followers/"+writer+"/conversation?account=main", nil, 200), "entries")
	if len(entries) < 2 || str(entries[0], "direction") != "out" || str(entries[0], "channel") != "custom" {
		t.Errorf("the reply is not the newest entry: %v", entries)
	}
	stranger := e.user(t, e2eOA, "", false)
	if conv := e.must(t, "GET", "/api/v1/followers/"+stranger+"/conversation?account=main", nil, 200); str(conv, "window_open") != "false" || len(list(conv, "entries")) != 0 {
		t.Errorf("a stranger's conversation: %v", conv)
	}
	status, body, raw := e.call(t, "POST", "/api/v1/followers/"+stranger+"/typing", e.key, map[string]any{"account": "main"})
	if status != 409 || str(body, "error", "code") != "outside_window" || !strings.Contains(str(body, "error", "message"), "48 小时") {
		t.Errorf("outside the window: %d %s", status, raw)
	}
}
