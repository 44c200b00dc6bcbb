package cli

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A sync held by a process that crashed (its lease still running) is
// refused with a hint; --take-over takes it and completes it.
func TestFollowersSyncTakeOver(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000c11f02"
		secret = "cli-secret-0123456789abcdef01235"
	)
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	for i := range 30 {
		if _, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, OpenID: fmt.Sprintf("oTKO%024d", i), Follow: true}); err != nil {
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
`, filepath.ToSlash(dbPath), appID, secret, srv.URL))
	if code, out, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "main"); code != 0 {
		t.Fatalf("first sync: %d\n%s\n%s", code, out, errOut)
	}

	// Another machine's sync that crashed: its lease runs for an hour more.
	d, err := db.Open(ctx, "sqlite://"+filepath.ToSlash(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	leases := db.NewLeases(d, nil)
	const crashed = "elsewhere.example-4242-0badc0de"
	if _, ok, err := leases.Acquire(ctx, follower.SyncLeaseName("main"), crashed, time.Hour); !ok || err != nil {
		t.Fatalf("holding the lease: %v %v", ok, err)
	}
	code, _, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "main")
	if code == 0 || !strings.Contains(errOut, "already running") || !strings.Contains(errOut, crashed) || !strings.Contains(errOut, "--take-over") {
		t.Fatalf("sync while held: %d\n%s", code, errOut)
	}
	code, out, errOut := run(t, ctx, nil, "followers", "sync", "--config", cfgPath, "--account", "main", "--take-over")
	if code != 0 || !strings.Contains(out, "sync 2: completed") || !strings.Contains(out, "listed 30 of 30") {
		t.Fatalf("sync --take-over: %d\n%s\n%s", code, out, errOut)
	}
	// Released at the end: nobody holds it, the crashed holder cannot renew.
	if cur, held, err := leases.Get(ctx, follower.SyncLeaseName("main")); held || err != nil {
		t.Errorf("after the take-over the lease is %+v (held %v, %v)", cur, held, err)
	}
	if ok, _ := leases.Renew(ctx, follower.SyncLeaseName("main"), crashed, time.Hour); ok {
		t.Error("the crashed holder renewed its lease after the take-over")
	}
}
