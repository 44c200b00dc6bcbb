package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	receiptAppID     = "wx0000000receipt01"
	receiptAppSecret = "receipt-secret-0123456789abcdef012"
	receiptTemplate  = "Tm-Receipt-Notice-00000000000000000000001"
	receiptFollowers = 150
	receiptBatches   = 3
)

// Receipts pushed while the gateway is down are lost (WeChat retries a
// push only within seconds): the gateway is stopped once every recipient
// is sent and before the simulator pushes TEMPLATESENDJOBFINISH, then
// restarted with a 5 s push.receipt_timeout. Every recipient must end in
// a final status, the unconfirmed among them, and the counts add up.
func TestReceiptsLostWhileDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops the real binary")
	}
	t.Parallel()
	bin := wxgateBinary(t)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		receiptTest(t, bin, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "data", "wxgate.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		receiptTest(t, bin, postgresDatabase(t))
	})
}

// freeAddr is a loopback address nothing listens on: the gateway must
// come back on the same one, the simulator's callback URL.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func receiptTest(t *testing.T, bin, databaseURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	dir := t.TempDir()
	gwAddr := freeAddr(t)

	apps := filepath.Join(dir, "sim-apps.yaml")
	writeFile(t, apps, fmt.Sprintf(`apps:
  - app_id: %s
    app_secret: %s
    original_id: gh_receipt000001
    callback_url: http://%s/wx/main
    token: receipttoken
    quotas:
      /cgi-bin/message/template/send: 1000000
    templates:
      - id: %s
        title: 通知
        content: "事项：{{thing1.DATA}}\n时间：{{time2.DATA}}"
`, receiptAppID, receiptAppSecret, gwAddr, receiptTemplate))
	// The receipts come 4 s after each send: long enough to stop the
	// gateway before the first one.
	sim := startProc(t, "simulator", bin, filepath.Join(dir, "sim.log"), "sim", "--listen", "127.0.0.1:0", "--apps", apps,
		"--log-level", "warn", "--job-finish-delay", "4s")
	simURL := sim.waitLine(t, "API base URL (SDK base URL):")
	var created struct {
		OpenIDs []string `json:"openids"`
	}
	call(t, ctx, "POST", simURL+"/sim/api/users/bulk", "", map[string]any{"app_id": receiptAppID, "count": receiptFollowers, "follow": true},
		http.StatusCreated, &created)
	if len(created.OpenIDs) != receiptFollowers {
		t.Fatalf("simulator created %d followers, want %d", len(created.OpenIDs), receiptFollowers)
	}

	config := func(name, receiptTimeout string) string {
		path := filepath.Join(dir, name)
		writeFile(t, path, fmt.Sprintf(`listen: %s
database_url: %q
log_level: warn
metrics:
  listen: 127.0.0.1:0
push:
  receipt_timeout: %s
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: receipttoken
    api_base_urls: [%s]
`, gwAddr, databaseURL, receiptTimeout, receiptAppID, receiptAppSecret, simURL))
		return path
	}
	cfg1, cfg2 := config("wxgate-1.yaml", "10m"), config("wxgate-2.yaml", "5s")
	runCmd(t, ctx, bin, "followers", "sync", "--account", "main", "--config", cfg1)
	key := strings.TrimSpace(runCmd(t, ctx, bin, "apikey", "create", "--name", "receipts", "--scopes", "send,read", "--config", cfg1))

	gw := startProc(t, "gateway", bin, filepath.Join(dir, "gateway-1.log"), "serve", "--config", cfg1)
	base := gw.waitLine(t, "wxgate is listening on")
	var ids []string
	for range receiptBatches {
		var accepted struct {
			ID string `json:"id"`
		}
		call(t, ctx, "POST", base+"/api/v1/messages", key, map[string]any{"account": "main", "to": map[string]any{"openids": created.OpenIDs},
			"channel": "template", "template": receiptTemplate, "data": map[string]string{"thing1": "停电通知", "time2": "2026-11-24 10:00"}},
			http.StatusAccepted, &accepted)
		ids = append(ids, accepted.ID)
	}
	type message struct {
		Total  int            `json:"total"`
		Counts map[string]int `json:"counts"`
		Done   bool           `json:"done"`
	}
	get := func(base, id string) message {
		var m message
		call(t, ctx, "GET", base+"/api/v1/messages/"+id+"?limit=1", key, nil, http.StatusOK, &m)
		return m
	}
	// Stop the gateway as soon as every recipient is sent.
	for _, id := range ids {
		for get(base, id).Counts["queued"] != 0 {
			sleep(t, ctx, 20*time.Millisecond)
		}
	}
	gw.stop(t)

	// Wait until the simulator has pushed (and given up on) every receipt.
	total := receiptFollowers * receiptBatches
	for {
		var list []struct {
			Event string `json:"event"`
		}
		call(t, ctx, "GET", simURL+"/sim/api/deliveries?app_id="+receiptAppID, "", nil, http.StatusOK, &list)
		n := 0
		for _, d := range list {
			if d.Event == "TEMPLATESENDJOBFINISH" {
				n++
			}
		}
		if n >= total {
			break
		}
		sleep(t, ctx, 100*time.Millisecond)
	}

	gw = startProc(t, "gateway", bin, filepath.Join(dir, "gateway-2.log"), "serve", "--config", cfg2)
	base = gw.waitLine(t, "wxgate is listening on")
	sum := map[string]int{}
	for _, id := range ids {
		var m message
		for {
			m = get(base, id)
			if m.Done {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("message %s not done after the restart: %v", id, m.Counts)
			}
			sleep(t, ctx, 200*time.Millisecond)
		}
		n := 0
		for status, c := range m.Counts {
			switch status {
			case "delivered", "blocked", "failed", "unconfirmed":
				n += c
				sum[status] += c
			default:
				t.Errorf("message %s: %d recipients %s", id, c, status)
			}
		}
		if n != m.Total || m.Total != receiptFollowers {
			t.Errorf("message %s: %v add up to %d of %d (want %d)", id, m.Counts, n, m.Total, receiptFollowers)
		}
	}
	t.Logf("after the restart: %v", sum)
	if sum["unconfirmed"] == 0 {
		t.Errorf("no recipient unconfirmed (%v): the receipts were not lost, the test proves nothing", sum)
	}
	gw.stop(t)
	sim.stop(t)
}
