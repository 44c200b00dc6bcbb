package menu_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/menu"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	appID  = "wx0000000000menu01"
	secret = "menu-secret-0123456789abcdef0123"
)

const goodMenu = `
buttons:
  - name: 今日推荐
    type: click
    key: V1001_TODAY
  - name: 服务
    sub_buttons:
      - {name: 官网, type: view, url: "https://www.example.com/"}
      - {name: 小程序, type: miniprogram, url: "https://www.example.com/", appid: wx286b93c14bbf93aa, pagepath: pages/index}
      - {name: 扫一扫, type: scancode_push, key: SCAN_1}
  - name: 发图
    type: pic_photo_or_album
    key: PIC_1
`

func client(t *testing.T) (*wechat.Client, *wechatsim.Simulator) {
	t.Helper()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	reg := token.NewRegistry(dbtest.SQLite(t), token.Options{})
	if _, err := reg.AddAccount(config.Account{Name: "main", AppID: appID, AppSecret: secret, APIBaseURLs: []string{srv.URL}},
		token.AccountOptions{HTTPClient: &http.Client{Timeout: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Client("main")
	return c, sim
}

// A menu file is applied as written and read back the same; a second
// file's differences are listed by button; an empty account has no menu.
func TestApplyShowDiff(t *testing.T) {
	t.Parallel()
	c, _ := client(t)
	ctx := t.Context()
	if m, err := menu.Current(ctx, c); err != nil || len(m.Buttons) != 0 {
		t.Fatalf("no menu yet: %+v %v", m, err)
	}
	want, err := menu.Parse([]byte(goodMenu))
	if err != nil {
		t.Fatal(err)
	}
	if probs := menu.Check(want); len(probs) != 0 {
		t.Fatalf("a good menu breaks rules: %v", probs)
	}
	if err := menu.Apply(ctx, c, want); err != nil {
		t.Fatal(err)
	}
	got, err := menu.Current(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WeChat has\n%+v\nwant\n%+v", got, want)
	}
	if d := menu.Diff(got, want); len(d) != 0 {
		t.Errorf("a menu differs from itself: %v", d)
	}
	next := want
	next.Buttons = append([]menu.Button(nil), want.Buttons...)
	next.Buttons[0].Key = "V1001_NEW"
	next.Buttons = next.Buttons[:2]
	d := menu.Diff(got, next)
	if len(d) != 2 || !strings.HasPrefix(d[0], "~ buttons[0]") || !strings.Contains(d[0], "key=V1001_NEW") || !strings.HasPrefix(d[1], "- buttons[2]") {
		t.Errorf("diff: %q", d)
	}
	if err := menu.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	if m, _ := menu.Current(ctx, c); len(m.Buttons) != 0 {
		t.Errorf("after delete: %+v", m)
	}
}

// A menu breaking WeChat's rules is refused before any call, every breach
// named by its button; the menu WeChat had stays.
func TestBadMenuIsRefusedLocally(t *testing.T) {
	t.Parallel()
	c, sim := client(t)
	ctx := t.Context()
	good, _ := menu.Parse([]byte(goodMenu))
	if err := menu.Apply(ctx, c, good); err != nil {
		t.Fatal(err)
	}
	bad, err := menu.Parse([]byte(`
buttons:
  - {name: 这是一个太长太长的名字, type: click, key: K}
  - name: 子菜单
    sub_buttons:
      - {name: 没有key, type: click}
      - {name: 链接, type: view, url: "ftp://example.com/"}
      - {name: 小程序, type: miniprogram, url: "https://a.example.com/"}
  - {name: 未知, type: dance}
  - {name: 第四个, type: click, key: K4}
`))
	if err != nil {
		t.Fatal(err)
	}
	probs := menu.Check(bad)
	fields := map[string]string{}
	for _, p := range probs {
		fields[p.Field] = p.Code
	}
	for field, code := range map[string]string{
		"buttons": "menu_buttons", "buttons[0].name": "menu_name", "buttons[1].sub_buttons[0].key": "menu_key",
		"buttons[1].sub_buttons[1].url": "menu_url", "buttons[1].sub_buttons[2].appid": "menu_miniprogram", "buttons[2].type": "menu_type",
	} {
		if fields[field] != code {
			t.Errorf("%s: %q, want %s (all: %v)", field, fields[field], code, fields)
		}
	}
	calls := sim.CallCount(appID, "/cgi-bin/menu/create")
	err = menu.Apply(ctx, c, bad)
	var invalid *menu.ErrInvalid
	if !errors.As(err, &invalid) || len(invalid.Problems) != len(probs) || !strings.Contains(err.Error(), "未上传") {
		t.Errorf("apply: %v", err)
	}
	if sim.CallCount(appID, "/cgi-bin/menu/create") != calls {
		t.Error("a refused menu reached WeChat")
	}
	if m, _ := menu.Current(ctx, c); !reflect.DeepEqual(m, good) {
		t.Errorf("the menu WeChat had changed: %+v", m)
	}
	if _, err := menu.Parse([]byte("buttons:\n  - {name: x, typo: click}\n")); err == nil {
		t.Error("an unknown key in the file was accepted")
	}
}
