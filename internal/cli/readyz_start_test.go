package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// An instance starting while another applies the migrations (it holds
// goose's advisory lock) answers at once: /healthz 200, /readyz and every
// other path 503 migrations_pending. Once the lock is free it migrates,
// starts and /readyz turns 200 on the same socket.
func TestReadyzWhileMigrationsWait(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	ctx := t.Context()
	// The database lacks the newest migration, as before an upgrade.
	files, err := db.Migrations(d.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, d.DB, files, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.Down(ctx); err != nil {
		t.Fatal(err)
	}
	holder, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := config.Default()
	cfg.DatabaseURL = d.URL
	cfg.Metrics.Listen = ""
	cfg.Accounts = []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: "wx00000000000ad001",
		Token: "readytoken", MessageMode: config.ModePlaintext}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gwCtx, stop := context.WithCancel(context.Background())
	started := make(chan *gateway, 1)
	go func() {
		gw, err := startGateway(gwCtx, cfg, discardLogger(), gatewayOptions{listener: ln})
		if err != nil {
			t.Errorf("start: %v", err)
			close(started)
			return
		}
		started <- gw
	}()
	t.Cleanup(func() {
		stop()
		if gw := <-started; gw != nil {
			if err := gw.Wait(); err != nil {
				t.Errorf("gateway stopped with %v", err)
			}
		}
	})

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			return resp.StatusCode, e.Error.Code
		}
		return resp.StatusCode, string(body)
	}
	var last string
	defer func() { t.Log("last /readyz answer:", last) }()
	waitFor(t, "/readyz 503 migrations_pending", func() bool {
		status, code := get("/readyz")
		last = fmt.Sprint(status, " ", code)
		return status == http.StatusServiceUnavailable && code == "migrations_pending"
	})
	if status, body := get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while migrating: %d %s", status, body)
	}
	if status, code := get("/wx/main?signature=x&timestamp=1&nonce=1&echostr=e"); status != http.StatusServiceUnavailable || code != "migrations_pending" {
		t.Errorf("a callback while migrating: %d %s", status, code)
	}
	select {
	case <-started:
		t.Fatal("the gateway started while another instance held the migration lock")
	default:
	}

	if _, err := holder.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz 200 after the migrations", func() bool {
		status, _ := get("/readyz")
		return status == http.StatusOK
	})
	if status, code := get("/wx/main?signature=x&timestamp=1&nonce=1&echostr=e"); status != http.StatusUnauthorized {
		t.Errorf("a badly signed callback once started: %d %s, want the callback server's 401", status, code)
	}
}
