package menu_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/menu"
	"github.com/wxgate/wxgate/internal/problem"
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

const conditionalMenus = `
buttons:
  - {name: 默认, type: click, key: DEFAULT}
conditional:
  - match: {tag: VIP}
    buttons:
      - {name: 会员专享, type: click, key: VIP}
      - {name: 会员中心, type: view, url: "https://vip.example.com/"}
  - match: {client_platform: ios}
    buttons:
      - {name: iOS, type: click, key: IOS}
`

// Conditional menus go up with the default menu; trymatch shows each
// follower the menu WeChat would; a file naming the tag by id is the same
// menu; a conditional menu WeChat refuses leaves the previous menus as
// they were.
func TestConditionalMenus(t *testing.T) {
	c, sim := client(t)
	ctx := t.Context()
	vipTag, err := c.CreateTag(ctx, "VIP")
	if err != nil {
		t.Fatal(err)
	}
	vip, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.TagUsers(ctx, vipTag.ID, []string{vip.OpenID}); err != nil {
		t.Fatal(err)
	}

	m, err := menu.Parse([]byte(conditionalMenus))
	if err != nil {
		t.Fatal(err)
	}
	if err := menu.Apply(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	sees := func(openid string) string {
		t.Helper()
		bs, err := menu.Match(ctx, c, openid)
		if err != nil || len(bs) == 0 {
			t.Fatalf("match %s: %v %v", openid, bs, err)
		}
		return bs[0].Key
	}
	if got := sees(vip.OpenID); got != "VIP" {
		t.Errorf("the VIP follower sees %q", got)
	}
	if got := sees(other.OpenID); got != "DEFAULT" {
		t.Errorf("another follower sees %q (simulated phones are Android, so not the iOS menu)", got)
	}
	have, err := menu.Current(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(have.Conditional) != 2 || have.Conditional[0].Match.Tag != "VIP" || have.Conditional[1].Match.ClientPlatform != "ios" || have.Conditional[0].MenuID == 0 {
		t.Fatalf("read back: %+v", have.Conditional)
	}
	byID, _ := menu.Parse([]byte(strings.Replace(conditionalMenus, "tag: VIP", "tag: \""+strconv.FormatInt(vipTag.ID, 10)+"\"", 1)))
	if d, err := menu.Compare(ctx, c, byID); err != nil || len(d) != 0 {
		t.Errorf("the same menus with the tag by id differ: %v %v", d, err)
	}

	// Applying again replaces the conditional menus rather than adding.
	if err := menu.Apply(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	if again, _ := menu.Current(ctx, c); len(again.Conditional) != 2 {
		t.Fatalf("after a second apply WeChat has %d conditional menus", len(again.Conditional))
	}
	before, _ := menu.Current(ctx, c)

	// The second conditional menu of the next file is refused by WeChat.
	next, _ := menu.Parse([]byte(strings.NewReplacer("默认", "新默认", "会员专享", "新会员", "key: IOS", "key: IOS2").Replace(conditionalMenus)))
	if _, err := sim.SetFault(wechatsim.Fault{AppID: appID, Path: "/cgi-bin/menu/addconditional", ErrCode: 45009, Skip: 1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	err = menu.Apply(ctx, c, next)
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 45009 || !strings.Contains(err.Error(), "conditional[1]") {
		t.Fatalf("a refused conditional menu gives %v", err)
	}
	after, err := menu.Current(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if d := menu.Diff(before, after); len(d) != 0 || len(after.Conditional) != 2 {
		t.Fatalf("the failed apply changed the menus: %v (%d conditional)", d, len(after.Conditional))
	}
	if got := sees(vip.OpenID); got != "VIP" {
		t.Errorf("after the failed apply the VIP follower sees %q", got)
	}

	// menu delete takes the conditional menus with it.
	if err := menu.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	if gone, _ := menu.Current(ctx, c); len(gone.Buttons) != 0 || len(gone.Conditional) != 0 {
		t.Errorf("after delete: %+v", gone)
	}
}

// A conditional menu WeChat would refuse is refused locally, naming why:
// no rule, a privacy rule (65320), an unknown platform, an unknown tag.
func TestBadConditionalMenuIsRefusedLocally(t *testing.T) {
	c, _ := client(t)
	for _, tt := range []struct{ match, code string }{
		{"{}", "menu_match_empty"},
		{"{sex: \"1\"}", "menu_match_privacy"},
		{"{tag: VIP, language: zh_CN}", "menu_match_privacy"},
		{"{client_platform: windows}", "menu_match_platform"},
	} {
		m, err := menu.Parse([]byte("buttons: [{name: a, type: click, key: a}]\nconditional:\n  - match: " + tt.match + "\n    buttons: [{name: b, type: click, key: b}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		probs := menu.Check(m)
		if len(probs) == 0 || probs[0].Code != tt.code || !strings.HasPrefix(probs[0].Field, "conditional[0].match") {
			t.Errorf("match %s: %+v, want %s", tt.match, probs, tt.code)
		}
	}
	m, _ := menu.Parse([]byte("buttons: [{name: a, type: click, key: a}]\nconditional:\n  - match: {tag: 不存在}\n    buttons: [{name: b, type: click, key: b}]\n"))
	var p *problem.Error
	if err := menu.Apply(t.Context(), c, m); !errors.As(err, &p) || p.Code != "menu_unknown_tag" {
		t.Errorf("an unknown tag: %v", err)
	}
	if have, _ := menu.Current(t.Context(), c); len(have.Buttons) != 0 {
		t.Errorf("a refused file uploaded a menu: %+v", have)
	}
}
