package token

// The broker against the simulator: counts of upstream calls are the
// simulator's own.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	simApp    = "wx00000000000000c3"
	simSecret = "sim-secret-0123456789abcdef012345"
)

type simBundle struct {
	sim     *wechatsim.Simulator
	clock   *clock
	url     string
	brokers []*Broker
	clients []*wechat.Client // one per broker, wired to it
	raw     *wechat.Client
}

// setupSim starts a simulator and n broker instances of one account on d.
func setupSim(t testing.TB, d *db.DB, n int, mode Mode, app wechatsim.AppConfig) *simBundle {
	t.Helper()
	c := newClock()
	if app.AppID == "" {
		app = wechatsim.AppConfig{AppID: simApp, AppSecret: simSecret}
	}
	sim, err := wechatsim.New(wechatsim.Config{Now: c.Now, Apps: []wechatsim.AppConfig{app}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	sb := &simBundle{sim: sim, clock: c, url: srv.URL}
	newClient := func() *wechat.Client {
		return wechat.NewClient(wechat.ClientOptions{BaseURLs: []string{srv.URL}, HTTPClient: hc, Now: c.Now})
	}
	sb.raw = newClient()
	for i := range n {
		client := newClient()
		b, err := New(d, client, Config{Account: "main", AppID: app.AppID, AppSecret: app.AppSecret, Mode: mode},
			Options{Now: c.Now, InstanceID: fmt.Sprintf("instance-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		sb.brokers = append(sb.brokers, b)
		sb.clients = append(sb.clients, client.WithTokenSource(b))
	}
	return sb
}

func tokenPath(mode Mode) string {
	if mode == ModeClassic {
		return "/cgi-bin/token"
	}
	return "/cgi-bin/stable_token"
}

func TestSimStormAtExpiry(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{ModeStable, ModeClassic} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				t.Parallel()
				sb := setupSim(t, d, 3, mode, wechatsim.AppConfig{})
				count := func() int { return sb.sim.CallCount(simApp, tokenPath(mode)) }
				run := func(label string) {
					before := count()
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i := range 1000 {
						c := sb.clients[i%3]
						wg.Go(func() {
							<-start
							if _, err := c.CallbackIPs(context.Background()); err != nil {
								t.Errorf("%s: %v", label, err)
							}
						})
					}
					close(start)
					wg.Wait()
					if n := count() - before; n != 1 {
						t.Fatalf("%s: %d upstream token calls, want 1", label, n)
					}
				}
				run("first start")
				sb.clock.Advance(7200 * time.Second) // every instance's token expires
				run("at expiry")
				if n := sb.sim.CallCount(simApp, "/cgi-bin/getcallbackip"); n != 2000 {
					t.Errorf("%d API calls, want 2000 (none rejected)", n)
				}
			})
		})
	}
}

func TestSimInjected40001(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		sb := setupSim(t, d, 1, ModeStable, wechatsim.AppConfig{})
		ctx := t.Context()
		if _, err := sb.clients[0].CallbackIPs(ctx); err != nil {
			t.Fatal(err)
		}
		tokens, calls := sb.sim.CallCount(simApp, "/cgi-bin/stable_token"), sb.sim.CallCount(simApp, "/cgi-bin/getcallbackip")
		if _, err := sb.sim.SetFault(wechatsim.Fault{AppID: simApp, Path: "/cgi-bin/getcallbackip", ErrCode: 40001, Times: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := sb.clients[0].CallbackIPs(ctx); err != nil {
			t.Fatal(err)
		}
		if n := sb.sim.CallCount(simApp, "/cgi-bin/stable_token") - tokens; n != 1 {
			t.Errorf("%d token refreshes, want 1", n)
		}
		if n := sb.sim.CallCount(simApp, "/cgi-bin/getcallbackip") - calls; n != 2 {
			t.Errorf("%d API calls, want 2 (the failed one and one retry)", n)
		}
	})
}

func TestSimForeignRefreshRecovered(t *testing.T) {
	t.Parallel()
	foreign := []struct {
		name string
		do   func(t *testing.T, sb *simBundle)
	}{
		{"another program force-refreshes", func(t *testing.T, sb *simBundle) {
			if _, err := sb.raw.GetStableToken(t.Context(), simApp, simSecret, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"WeChat invalidates the tokens", func(t *testing.T, sb *simBundle) {
			if err := sb.sim.InvalidateTokens(simApp); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, f := range foreign {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				t.Parallel()
				sb := setupSim(t, d, 2, ModeStable, wechatsim.AppConfig{})
				ctx := t.Context()
				for _, c := range sb.clients {
					if _, err := c.CallbackIPs(ctx); err != nil {
						t.Fatal(err)
					}
				}
				f.do(t, sb)
				tokens := sb.sim.CallCount(simApp, "/cgi-bin/stable_token")
				// Both instances hit the rejection; one refresh between them.
				for _, c := range sb.clients {
					if _, err := c.CallbackIPs(ctx); err != nil {
						t.Fatalf("not recovered: %v", err)
					}
				}
				if n := sb.sim.CallCount(simApp, "/cgi-bin/stable_token") - tokens; n != 1 {
					t.Errorf("%d token calls to recover, want 1", n)
				}
			})
		})
	}
}

func TestSimWhitelistOpensBreaker(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	sb := setupSim(t, d, 1, ModeStable, wechatsim.AppConfig{AppID: simApp, AppSecret: simSecret, IPWhitelist: []string{"198.51.100.7"}})
	ctx := t.Context()
	for range 5 {
		_, err := sb.clients[0].CallbackIPs(ctx)
		var open *BreakerOpenError
		if !errors.As(err, &open) || !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(err.Error(), "IP白名单") {
			t.Fatalf("err = %v", err)
		}
	}
	if n := sb.sim.CallCount(simApp, "/cgi-bin/stable_token"); n != 1 {
		t.Fatalf("%d token calls while paused, want 1", n)
	}
}
