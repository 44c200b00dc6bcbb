package wechatsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		ok         bool
	}{
		{"thing1", "广州腾讯科技有限公司", true},
		{"thing1", strings.Repeat("字", 20), true},
		{"thing1", strings.Repeat("字", 21), false},
		{"thing1", "", false},
		{"number01", "339208499", true},
		{"number01", "3.14", true},
		{"number01", "12a", false},
		{"letter2", "abcXYZ", true},
		{"letter2", "abc1", false},
		{"symbol3", "%$#", true},
		{"symbol3", "%$#@!~", false},
		{"character_string4", "ORDER-8812_x", true},
		{"character_string4", "有中文", false},
		{"time5", "15:01", true},
		{"time5", "2019年10月1日 15:01", true},
		{"time5", "2019-10-01 15:01 ~ 2019-10-01 16:00", true},
		{"time5", "tomorrow", false},
		{"date6", "2015年01月05日", true},
		{"date6", "2019-10-01", true},
		{"date6", "2019-10-01 15:01", true},
		{"date6", "soon", false},
		{"amount7", "¥100.50", true},
		{"amount7", "39.8元", true},
		{"amount7", "12345678901", false},
		{"phone_number8", "+86-0766-66888866", true},
		{"phone_number8", "call me", false},
		{"car_number9", "粤A8Z888挂", true},
		{"car_number9", "粤A8Z888挂12", false},
		{"name10", "张三", true},
		{"name10", "Jonathan Smith", true},
		{"name10", strings.Repeat("张", 11), false},
		{"phrase11", "已发货", true},
		{"phrase11", "shipped", false},
		{"keyword1", "", true},
		{"keyword1", "anything at all, 39.8元", true},
	}
	for _, tt := range tests {
		if got := checkValue(tt.key, tt.value) == ""; got != tt.ok {
			t.Errorf("checkValue(%q, %q) ok = %v, want %v (%s)", tt.key, tt.value, got, tt.ok, checkValue(tt.key, tt.value))
		}
	}
}

func TestRenderTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		content string
		data    map[string]string
		want    string
	}{
		{"客户：{{thing1.DATA}}\n时间：{{time2.DATA}}", map[string]string{"thing1": "张三", "time2": "10:00"}, "客户：张三\n时间：10:00"},
		{"{{first.DATA}}\n金额：{{keyword1.DATA}}\n{{remark.DATA}}", map[string]string{"first": "hi", "keyword1": "1元"}, "金额：1元"},
		{"{{ thing1.DATA }}", map[string]string{"thing1": "spaces"}, "spaces"},
	}
	for _, tt := range tests {
		if got := renderTemplate(tt.content, tt.data); got != tt.want {
			t.Errorf("renderTemplate(%q) = %q, want %q", tt.content, got, tt.want)
		}
	}
}

func TestLoadAppsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "apps.yaml")
	os.WriteFile(good, []byte(`apps:
  - app_id: wxoa
    app_secret: s1
    open_platform: g
    callback_url: http://127.0.0.1:8080/wx/demo
    token: t
    mode: safe
    encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
    templates:
      - id: tmpl1
        title: 新访客提醒
        content: "客户：{{thing1.DATA}}"
  - app_id: wxmp
    app_secret: s2
    kind: mini_program
`), 0o600)
	apps, err := LoadAppsFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Mode != "safe" || apps[0].Templates[0].ID != "tmpl1" || apps[1].Kind != KindMiniProgram {
		t.Fatalf("apps: %+v", apps)
	}
	sim, err := New(Config{Apps: apps})
	if err != nil {
		t.Fatalf("New with the file's apps: %v", err)
	}
	sim.Close()
	list := filepath.Join(dir, "list.yaml")
	os.WriteFile(list, []byte("- app_id: wx1\n  app_secret: s\n"), 0o600)
	if apps, err := LoadAppsFile(list); err != nil || len(apps) != 1 {
		t.Fatalf("list form: %v %+v", err, apps)
	}
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(typo, []byte("apps:\n  - app_id: wx1\n    app_secrte: s\n"), 0o600)
	if _, err := LoadAppsFile(typo); err == nil {
		t.Fatal("misspelt key accepted")
	}
}

func TestNewRejectsBadApps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		app  AppConfig
	}{
		{"no appid", AppConfig{AppSecret: "s"}},
		{"no secret", AppConfig{AppID: "wx1"}},
		{"bad kind", AppConfig{AppID: "wx1", AppSecret: "s", Kind: "game"}},
		{"bad mode", AppConfig{AppID: "wx1", AppSecret: "s", Mode: "aes"}},
		{"safe without key", AppConfig{AppID: "wx1", AppSecret: "s", Mode: ModeSafe, Token: "t"}},
		{"short key", AppConfig{AppID: "wx1", AppSecret: "s", Mode: ModeSafe, Token: "t", EncodingAESKey: "short"}},
		{"callback without token", AppConfig{AppID: "wx1", AppSecret: "s", CallbackURL: "http://x"}},
		{"bad whitelist", AppConfig{AppID: "wx1", AppSecret: "s", IPWhitelist: []string{"not-an-ip"}}},
	}
	for _, tt := range tests {
		if sim, err := New(Config{Apps: []AppConfig{tt.app}}); err == nil {
			sim.Close()
			t.Errorf("%s: accepted", tt.name)
		}
	}
}
