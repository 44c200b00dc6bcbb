package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// followers sync / status / list, bindings qrcode / list / delete and
// webhooks add / list / deliveries, against the simulator.
func TestFollowersAndBindingsCommands(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000c11f01"
		secret = "cli-secret-0123456789abcdef01234"
	)
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret, OpenPlatform: "cli"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	for i := range 250 {
		if _, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, OpenID: fmt.Sprintf("oCLI%024d", i), Follow: true}); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(t.TempDir(), "wxgate.db")
	cfgPath := writeConfig(t, fmt.Sprintf(`database_url: sqlite://%s
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: clitoken
    api_base_urls: [%s]
    binding:
      reply: 已绑定销售
`, filepath.ToSlash(dbPath), appID, secret, srv.URL))

	code, out, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "main")
	if code != 0 || !strings.Contains(out, "listed 250 of 250 in 1 pages") || !strings.Contains(out, "batchget 3") ||
		!strings.Contains(errOut, "250/250 followers (100.0%)") {
		t.Fatalf("sync: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, ctx, nil, "followers", "status", "--config", cfgPath, "--account", "main"); code != 0 || !strings.Contains(out, "sync 1: completed") {
		t.Errorf("status: %s", out)
	}
	code, out, errOut = run(t, ctx, nil, "followers", "list", "--config", cfgPath, "--account", "main", "--limit", "2")
	if code != 0 || strings.Count(out, "oCLI") != 2 || !strings.Contains(errOut, "--cursor") {
		t.Errorf("list: %s %s", out, errOut)
	}
	if code, _, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "nope"); code == 0 || !strings.Contains(errOut, "no account") {
		t.Errorf("unknown account: %s", errOut)
	}

	code, out, _ = run(t, ctx, nil, "webhooks", "add", "--config", cfgPath, "--url", "http://127.0.0.1:1/hook", "--events", "binding.deleted")
	if code != 0 || !strings.Contains(out, "secret: whsec_") {
		t.Fatalf("webhooks add: %s", out)
	}
	if code, out, _ := run(t, ctx, nil, "webhooks", "list", "--config", cfgPath); code != 0 || strings.Contains(out, "whsec_") || !strings.Contains(out, "binding.deleted") {
		t.Errorf("webhooks list: %s", out)
	}

	pngPath := filepath.Join(t.TempDir(), "qr.png")
	code, out, errOut = run(t, ctx, nil, "bindings", "qrcode", "--config", cfgPath, "--account", "main", "--external-id", "S-1024", "--png", pngPath)
	if code != 0 || !strings.Contains(out, "ticket:") || !strings.Contains(out, "poll token:") {
		t.Fatalf("bindings qrcode: %d %s %s", code, out, errOut)
	}
	if raw, err := os.ReadFile(pngPath); err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG")) {
		t.Errorf("the PNG: %v", err)
	}
	// The scan, as the gateway's callback would handle it.
	cfg, _ := config.Load(cfgPath, nil)
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	codes := sim.QRCodes(appID)
	binder := follower.NewBinder(follower.BinderOptions{Store: follower.NewStore(d, time.Now), Accounts: cfg.Accounts, Now: time.Now})
	reply, handled, err := binder.Respond(ctx, "main", &wechat.Message{FromUserName: "oCLI000000000000000000000007", MsgType: wechat.MsgTypeEvent,
		Event: wechat.EventScan, EventKey: codes[0].Scene, CreateTime: time.Now().Unix()})
	if err != nil || !handled || reply.(wechat.TextReply).Content != "已绑定销售" {
		t.Fatalf("scan: %v %v %v", reply, handled, err)
	}

	code, out, _ = run(t, ctx, nil, "bindings", "list", "--config", cfgPath, "--external-id", "S-1024")
	if code != 0 || !strings.Contains(out, "oCLI000000000000000000000007") || !strings.Contains(out, "qrcode") {
		t.Errorf("bindings list: %s", out)
	}
	if code, out, errOut := run(t, ctx, nil, "bindings", "delete", "--config", cfgPath, "--external-id", "S-1024"); code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("bindings delete: %s %s", out, errOut)
	}
	if code, out, _ := run(t, ctx, nil, "bindings", "list", "--config", cfgPath, "--external-id", "S-1024", "--history"); code != 0 || !strings.Contains(out, "deleted") {
		t.Errorf("bindings history: %s", out)
	}
	// The deletion queued a binding.deleted delivery for the gateway.
	if code, out, _ := run(t, ctx, nil, "webhooks", "deliveries", "--config", cfgPath, "1"); code != 0 || !strings.Contains(out, "binding.deleted") || !strings.Contains(out, "pending") {
		t.Errorf("webhooks deliveries: %s", out)
	}
}
