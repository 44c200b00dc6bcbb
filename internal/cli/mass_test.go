package cli

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/wechatsim"
)

// media upload / list and mass quota / send / preview / list from the
// command line, against the simulator.
func TestMediaAndMassCommands(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000c1a902"
		secret = "mass-secret-0123456789abcdef0123"
	)
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	var openids []string
	for range 2 {
		u, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		openids = append(openids, u.OpenID)
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "poster.jpg")
	if err := os.WriteFile(image, jpegFile(4, 800), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, fmt.Sprintf(`database_url: sqlite://%s
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: masstoken
    api_base_urls: [%s]
`, filepath.ToSlash(filepath.Join(dir, "wxgate.db")), appID, secret, srv.URL))
	wxgate := func(args ...string) string {
		t.Helper()
		full := append([]string{args[0], args[1], "--config", cfgPath, "--account", "main"}, args[2:]...)
		code, out, errOut := run(t, ctx, nil, full...)
		if code != 0 {
			t.Fatalf("wxgate %s: %d %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	out := wxgate("media", "upload", image)
	m := regexp.MustCompile(`temporary image uploaded \(已上传\): media_id (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("upload printed %q", out)
	}
	if data, _, ok := sim.Media(appID, m[1]); !ok || len(data) != len(jpegFile(4, 800)) {
		t.Error("WeChat does not have the uploaded file")
	}
	if out := wxgate("media", "upload", "--type", "image", image); !strings.Contains(out, "already at WeChat") || !strings.Contains(out, m[1]) {
		t.Errorf("the same file again: %s", out)
	}
	if out := wxgate("media", "list"); !strings.Contains(out, m[1]) || !strings.Contains(out, "poster.jpg") {
		t.Errorf("list: %s", out)
	}
	if out := wxgate("mass", "quota"); !strings.Contains(out, "0 of 4 mass sends used, 4 left") {
		t.Errorf("quota: %s", out)
	}
	if out := wxgate("mass", "preview", "--openid", openids[0], "--text", "预览"); !strings.Contains(out, "预览已发送") {
		t.Errorf("preview: %s", out)
	}
	out = wxgate("mass", "send", "--all", "--image", image, "--client-msg-id", "poster-1")
	if !strings.Contains(out, "0 of 4 used before this send") || !strings.Contains(out, "image to all followers") || !strings.Contains(out, "status sent") {
		t.Errorf("send: %s", out)
	}
	if n := sim.CallCount(appID, "/cgi-bin/media/upload"); n != 1 {
		t.Errorf("%d uploads: the send should reuse the uploaded poster", n)
	}
	if out := wxgate("mass", "send", "--all", "--image", image, "--client-msg-id", "poster-1"); !strings.Contains(out, "nothing new was sent") {
		t.Errorf("the same client_msg_id again: %s", out)
	}
	if out := wxgate("mass", "list"); !strings.Contains(out, "image") || !strings.Contains(out, "all") {
		t.Errorf("list: %s", out)
	}
	for _, openid := range openids {
		items, _ := sim.Inbox(appID, openid)
		if len(items) == 0 || items[len(items)-1].Kind != wechatsim.ItemMass {
			t.Errorf("%s's phone has no mass image", openid)
		}
	}
	png := filepath.Join(dir, "cover.png")
	if err := os.WriteFile(png, []byte("\x89PNG\r\n\x1a\nxxxxxxxx"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"mass", "send", "--text", "x"}, "请指定群发对象"},
		{[]string{"mass", "send", "--all"}, "请指定一种消息内容"},
		{[]string{"media", "upload", "--type", "thumb", png}, "缩略图只支持 JPG"},
	} {
		full := append([]string{c.args[0], c.args[1], "--config", cfgPath, "--account", "main"}, c.args[2:]...)
		if code, _, errOut := run(t, ctx, nil, full...); code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("wxgate %s: %d %s, want %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}
