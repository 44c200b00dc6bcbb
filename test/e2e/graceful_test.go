package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

const (
	gracefulAppID     = "wx00000graceful01"
	gracefulAppSecret = "graceful-secret-0123456789abcdef0"
	gracefulTemplate  = "Tm-Graceful-Notice-000000000000000000001"
	gracefulFollowers = 400
)

// SIGTERM in the middle of a send and of followers' messages: the gateway
// answers the pushes it has begun, lets the calls to WeChat in flight end
// (each takes 1.5 s here), hands the rest back to the queue and exits well
// within its stop bounds; no job is left running without an owner. The
// restarted gateway then sends the rest: every follower has exactly one
// card, and every push the stopping gateway answered is in the log.
func TestGracefulStopMidSend(t *testing.T) {
	if testing.Short() {
		t.Skip("a gateway stopped in the middle of a send; takes about half a minute")
	}
	t.Parallel()
	bin := wxgateBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	dir := t.TempDir()
	databaseURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "wxgate.db"))
	// WeChat reaches the gateway through a front that cuts the connection
	// when the gateway is gone.
	front := &roundRobin{backends: make([]string, 1)}
	frontSrv := httptest.NewServer(front)
	defer frontSrv.Close()
	setup := newSendSetup(t, ctx, bin, dir, sendSetupSpec{appID: gracefulAppID, secret: gracefulAppSecret, originalID: "gh_graceful00001",
		template: gracefulTemplate, callbackToken: "gracefultoken", followers: gracefulFollowers, databaseURL: databaseURL,
		callbackURL: frontSrv.URL + "/wx/main", extraConfig: "push:\n  workers: 20\n  rate_per_account: 0\n"})
	simURL, cfg, key, openids := setup.simURL, setup.cfg, setup.key, setup.openids

	gw := startProc(t, "gateway", bin, filepath.Join(dir, "gateway-1.log"), "serve", "--config", cfg)
	base := gw.waitLine(t, "wxgate is listening on")
	front.set(0, base)
	// WeChat's answers to template/send take 1.5 s.
	call(t, ctx, "POST", simURL+"/sim/api/faults", "", map[string]any{"app_id": gracefulAppID, "path": "/cgi-bin/message/template/send",
		"latency_ms": 1500}, http.StatusCreated, nil)

	var accepted struct {
		ID string `json:"id"`
	}
	call(t, ctx, "POST", base+"/api/v1/messages", key, map[string]any{"account": "main", "to": map[string]any{"openids": openids},
		"channel": "template", "template": gracefulTemplate, "data": map[string]string{"thing1": "停机演练", "time2": "2026-12-07 10:00"}},
		http.StatusAccepted, &accepted)

	// Followers keep writing until the gateway is gone.
	type pushed struct{ status, attempts int }
	var (
		mu     sync.Mutex
		pushes []pushed
	)
	stopWriting := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for n := w; ; n += 4 {
				select {
				case <-stopWriting:
					return
				default:
				}
				var res struct {
					Delivery *struct {
						Status   int   `json:"status"`
						Attempts []any `json:"attempts"`
					} `json:"delivery"`
				}
				if err := postJSON(ctx, simURL+"/sim/api/users/"+openids[n%gracefulFollowers]+"/actions",
					map[string]any{"app_id": gracefulAppID, "type": "text", "content": fmt.Sprintf("留言 %d", n)}, &res); err != nil || res.Delivery == nil {
					t.Errorf("push %d: %v", n, err)
					return
				}
				mu.Lock()
				pushes = append(pushes, pushed{res.Delivery.Status, len(res.Delivery.Attempts)})
				mu.Unlock()
			}
		})
	}

	// SIGTERM once some cards are out and calls are in flight.
	for inboxStatsOf(t, ctx, simURL, gracefulAppID, gracefulTemplate).Items < 20 {
		sleep(t, ctx, 20*time.Millisecond)
	}
	stopAsked := time.Now()
	if err := gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw.done:
	case <-time.After(40 * time.Second):
		t.Fatal("the gateway did not stop within 40 s of SIGTERM")
	}
	stopTook := time.Since(stopAsked)
	if code := gw.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the gateway exited %d after SIGTERM", code)
	}
	// The HTTP drain (20 s) and the queue's stop (15 s) bound it; the
	// calls in flight take 1.5 s.
	if stopTook > 36*time.Second {
		t.Errorf("the stop took %s", stopTook)
	}
	close(stopWriting)
	writers.Wait()
	delivered := inboxStatsOf(t, ctx, simURL, gracefulAppID, gracefulTemplate).Items

	database, err := db.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var running, inFlight, answered int
	if err := database.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE state = 'running'`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if err := database.QueryRowContext(ctx, `SELECT count(*) FROM push_recipients WHERE in_flight_at IS NOT NULL`).Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	if running != 0 || inFlight != 0 {
		t.Errorf("after the stop: %d jobs still running, %d recipients in flight", running, inFlight)
	}
	for _, p := range pushes {
		switch {
		case p.status == http.StatusOK:
			answered++
		case p.status != 0:
			t.Errorf("a push got HTTP %d from the stopping gateway", p.status)
		}
	}
	var logged int
	if err := database.QueryRowContext(ctx, `SELECT count(*) FROM inbound_messages WHERE msg_type = 'text'`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	database.Close()
	if logged != answered {
		t.Errorf("%d pushes answered, %d logged", answered, logged)
	}
	if delivered >= gracefulFollowers {
		t.Fatalf("everything was sent before the stop (%d cards); the test needs it in the middle", delivered)
	}

	// The restarted gateway sends the rest, once each.
	call(t, ctx, "DELETE", simURL+"/sim/api/faults", "", nil, http.StatusNoContent, nil)
	gw = startProc(t, "gateway", bin, filepath.Join(dir, "gateway-2.log"), "serve", "--config", cfg)
	base = gw.waitLine(t, "wxgate is listening on")
	front.set(0, base)
	for {
		var m struct {
			Counts map[string]int `json:"counts"`
		}
		call(t, ctx, "GET", base+"/api/v1/messages/"+accepted.ID+"?limit=1", key, nil, http.StatusOK, &m)
		if m.Counts["queued"] == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("still queued after the restart: %v", m.Counts)
		}
		sleep(t, ctx, 200*time.Millisecond)
	}
	st := inboxStatsOf(t, ctx, simURL, gracefulAppID, gracefulTemplate)
	if st.Users != gracefulFollowers || st.Items != gracefulFollowers || st.Histogram["1"] != gracefulFollowers {
		t.Errorf("simulator: %d followers, %d cards, cards per follower %v; want exactly one each", st.Users, st.Items, st.Histogram)
	}
	t.Logf("SIGTERM with %d of %d cards out: stopped in %s; %d follower pushes answered (and logged) up to the stop", delivered,
		gracefulFollowers, stopTook.Round(10*time.Millisecond), answered)
	gw.stop(t)
	setup.sim.stop(t)
}

// postJSON posts body and decodes a 2xx answer into out; it does not stop
// the test, so goroutines may use it.
func postJSON(ctx context.Context, u string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
