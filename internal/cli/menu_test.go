package cli

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/wechatsim"
)

// menu apply (checked first, a bad file refused with the breach named) /
// show / diff / delete against the simulator.
func TestMenuCommands(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000c1e901"
		secret = "menu-secret-0123456789abcdef0123"
	)
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfgPath := writeConfig(t, fmt.Sprintf(`database_url: sqlite://%s
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: menutoken
    api_base_urls: [%s]
`, filepath.ToSlash(filepath.Join(dir, "wxgate.db")), appID, secret, srv.URL))
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("menu.yaml", `buttons:
  - {name: 今日推荐, type: click, key: TODAY}
  - name: 服务
    sub_buttons:
      - {name: 官网, type: view, url: "https://www.example.com/"}
`)
	bad := write("bad.yaml", "buttons:\n  - {name: 今日推荐, type: click}\n")
	ctx := context.Background()
	menuCmd := func(args ...string) (int, string, string) {
		return run(t, ctx, nil, append([]string{"menu", args[0], "--config", cfgPath, "--account", "main"}, args[1:]...)...)
	}

	if code, _, errOut := menuCmd("apply", bad); code == 0 || !strings.Contains(errOut, "buttons[0]") || !strings.Contains(errOut, "key") {
		t.Errorf("a bad menu: %d %s", code, errOut)
	}
	if n := sim.CallCount(appID, "/cgi-bin/menu/create"); n != 0 {
		t.Errorf("the bad menu reached WeChat (%d calls)", n)
	}
	if code, out, errOut := menuCmd("apply", "--dry-run", good); code != 0 || !strings.Contains(out, "检查通过") {
		t.Errorf("dry run: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := menuCmd("apply", good); code != 0 || !strings.Contains(out, "2 buttons") {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	if code, out, _ := menuCmd("show"); code != 0 || !strings.Contains(out, "今日推荐") || !strings.Contains(out, "sub_buttons:") || !strings.Contains(out, "https://www.example.com/") {
		t.Errorf("show: %s", out)
	}
	if _, out, _ := menuCmd("diff", good); !strings.Contains(out, "无差异") {
		t.Errorf("diff with itself: %s", out)
	}
	changed := write("changed.yaml", strings.Replace(readFileString(t, good), "TODAY", "TOMORROW", 1))
	if _, out, _ := menuCmd("diff", changed); !strings.Contains(out, "~ buttons[0]") || !strings.Contains(out, "key=TOMORROW") {
		t.Errorf("diff: %s", out)
	}

	// Conditional menus: every simulated phone is Android, so a follower
	// sees the android menu; what show prints applies as it is.
	withConditional := write("conditional.yaml", readFileString(t, good)+`conditional:
  - match: {client_platform: android}
    buttons:
      - {name: 安卓专享, type: click, key: ANDROID}
`)
	if code, out, errOut := menuCmd("apply", withConditional); code != 0 || !strings.Contains(out, "1 conditional") {
		t.Fatalf("apply conditional: %d %s %s", code, out, errOut)
	}
	follower, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := menuCmd("match", follower.OpenID); code != 0 || !strings.Contains(out, "安卓专享") {
		t.Errorf("match: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := menuCmd("match", "o-nobody"); code == 0 || !strings.Contains(errOut, "不是本公众号的粉丝") {
		t.Errorf("match a stranger: %d %s", code, errOut)
	}
	_, shown, _ := menuCmd("show")
	if !strings.Contains(shown, "conditional:") || !strings.Contains(shown, "client_platform: android") {
		t.Errorf("show with a conditional menu: %s", shown)
	}
	if _, out, _ := menuCmd("diff", write("shown.yaml", shown)); !strings.Contains(out, "无差异") {
		t.Errorf("diff with what show printed: %s", out)
	}
	if _, out, _ := menuCmd("diff", good); !strings.Contains(out, "- conditional[0] match client_platform=android") {
		t.Errorf("diff without the conditional menu: %s", out)
	}
	if code, _, errOut := menuCmd("delete"); code != 0 {
		t.Errorf("delete: %s", errOut)
	}
	if _, out, _ := menuCmd("show"); !strings.Contains(out, "no menu") {
		t.Errorf("show after delete: %s", out)
	}
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
