package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/server/servertest"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// fixedRetry retries failed jobs after a short fixed delay.
type fixedRetry time.Duration

func (r fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(r)) }

// A phone follows by scanning a parametric QR code: the real server on
// port 0 answers the simulator's subscribe push at once, and the
// follower.fetch_profile job fills the profile from user/info afterwards,
// with exactly one call.
func TestSubscribeFetchesProfileThroughTheQueue(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		const (
			appID    = "wx00000000000000e2"
			secret   = "e2e-secret-0123456789abcdef01234"
			cbToken  = "e2etoken"
			infoPath = "/cgi-bin/user/info"
			// infoLatency makes user/info slow: a callback answer that
			// waited for it would show.
			infoLatency = 1500 * time.Millisecond
		)
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{
			AppID: appID, AppSecret: secret, OpenPlatform: "group",
			CallbackURL: "http://" + ln.Addr().String() + "/wx/main", Token: cbToken, Mode: wechatsim.ModePlaintext,
		}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		api := httptest.NewServer(sim.Handler())
		t.Cleanup(api.Close)

		account := config.Account{Name: "main", AppID: appID, AppSecret: secret, Token: cbToken,
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{api.URL}}
		tokens := token.NewRegistry(d, token.Options{})
		if _, err := tokens.AddAccount(account, token.AccountOptions{HTTPClient: &http.Client{Timeout: 10 * time.Second}}); err != nil {
			t.Fatal(err)
		}

		workers := river.NewWorkers()
		river.AddWorker(workers, follower.NewProfileWorker(follower.NewStore(d, nil), tokens, nil))
		q, err := queue.New(ctx, d, queue.Options{
			Workers:      workers,
			Queues:       map[string]int{follower.Queue: follower.QueueWorkers},
			PollInterval: 50 * time.Millisecond,
			RetryPolicy:  fixedRetry(20 * time.Millisecond),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(context.WithoutCancel(ctx)); err != nil {
			t.Fatal(err)
		}

		cfg := config.Default()
		cfg.Accounts = []config.Account{account}
		srv, err := servertest.New(servertest.Options{Config: cfg, DB: d, Profiles: follower.NewProfileJobs(q, tokens, nil)})
		if err != nil {
			t.Fatal(err)
		}
		serveCtx, stopServing := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() {
			err := srv.Serve(serveCtx, ln)
			served <- errors.Join(err, srv.Close())
		}()
		t.Cleanup(func() {
			// The gateway's order: HTTP drains, then the queue stops.
			stopServing()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
			stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := q.Stop(stopCtx); err != nil {
				t.Errorf("queue stop: %v", err)
			}
		})

		client, _ := tokens.Client("main")
		qr, err := client.CreateQRCode(ctx, wechat.TempQRCode("S-1024", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		phone, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Language: "en"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sim.SetFault(wechatsim.Fault{AppID: appID, Path: infoPath, Latency: infoLatency}); err != nil {
			t.Fatal(err)
		}

		start := time.Now()
		res, err := sim.Act(ctx, phone.OpenID, wechatsim.Action{Type: wechatsim.ActionScan, Ticket: qr.Ticket})
		answered := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if res.Delivery == nil || res.Delivery.Status != http.StatusOK || len(res.Delivery.Attempts) != 1 {
			t.Fatalf("subscribe push: %+v", res.Delivery)
		}
		if answered >= infoLatency {
			t.Errorf("the callback took %v: it waited for user/info", answered)
		}
		followers := follower.NewStore(d, nil)
		f, err := followers.Get(ctx, "main", phone.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Subscribed || f.QRSceneStr != "S-1024" || f.ProfileFetchedAt != nil || f.UnionID != "" {
			t.Errorf("right after the answer (event only, no profile yet): %+v", f)
		}

		if err := q.WaitIdle(ctx, follower.FetchProfileArgs{}.Kind()); err != nil {
			t.Fatal(err)
		}
		f, err = followers.Get(ctx, "main", phone.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		if f.UnionID == "" || f.UnionID != phone.UnionID || f.SubscribeScene != follower.SceneQRCode || f.QRSceneStr != "S-1024" ||
			f.Language != "en" || f.ProfileFetchedAt == nil || !f.Subscribed {
			t.Errorf("after the profile job: %+v (phone %+v)", f, phone)
		}
		if n := sim.CallCount(appID, infoPath); n != 1 {
			t.Errorf("%d user/info calls, want exactly 1", n)
		}
	})
}
