package schedule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// The test platform: one official account "main" on the simulator with
// the demo's weather template, followers made through the simulator (their
// subscribe callbacks write the followers rows), the push pipeline, and a
// schedule service on a clock the test sets.
const (
	oaApp      = "wx00000000000000c3"
	secret     = "test-secret-0123456789abcdef0123"
	tplWeather = "Tm-Weather-00000000000000000000000000000001"
	account    = "main"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// instance is one gateway process: its queue, push pipeline and scheduler.
type instance struct {
	q    *queue.Queue
	push *push.Service
	svc  *Service
}

type bundle struct {
	db     *db.DB
	sim    *wechatsim.Simulator
	simURL string
	clock  *clock
	tokens *token.Registry
	cfg    []config.Account
	// hooked receives the simulator's pushes (receipts) as the callback
	// would hand them to push.
	hooked *push.Service
	mu     sync.Mutex
}

func accounts(simURL string) []config.Account {
	return []config.Account{{Name: account, Kind: config.KindOfficialAccount, AppID: oaApp, AppSecret: secret,
		APIBaseURLs: []string{simURL}, MessageMode: config.ModePlaintext, Token: "tok"}}
}

func setup(t testing.TB, d *db.DB) *bundle {
	t.Helper()
	b := &bundle{db: d, clock: &clock{t: time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)}}
	followers := follower.NewStore(d, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, err := wechat.ParseMessage(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := followers.ApplyEvent(r.Context(), account, m); err != nil {
			t.Errorf("callback: followers: %v", err)
		}
		b.mu.Lock()
		hooked := b.hooked
		b.mu.Unlock()
		if hooked != nil {
			if err := hooked.Hook(r.Context(), account, m); err != nil {
				t.Errorf("callback: push hook: %v", err)
			}
		}
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(cb.Close)
	sim, err := wechatsim.New(wechatsim.Config{
		Apps: []wechatsim.AppConfig{{AppID: oaApp, AppSecret: secret, Kind: wechatsim.KindOfficialAccount,
			CallbackURL: cb.URL + "/wx/" + account, Token: "tok",
			Templates: []wechatsim.TemplateConfig{{ID: tplWeather, Title: "每日天气",
				Content: "城市：{{thing1.DATA}}\n天气：{{phrase2.DATA}}\n气温：{{character_string3.DATA}}\n日期：{{date4.DATA}}"}}}},
		JobFinishDelay: 20 * time.Millisecond,
		// The weather follows the schedule's clock.
		Now: b.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	b.sim, b.simURL = sim, srv.URL
	b.cfg = accounts(srv.URL)
	// Tokens on the real clock: the simulator's tokens expire by its own.
	b.tokens = token.NewRegistry(d, token.Options{Now: b.clock.Now})
	for _, a := range b.cfg {
		if _, err := b.tokens.AddAccount(a, token.AccountOptions{FailoverCooldown: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// fixedRetry retries failed jobs after a short fixed delay.
type fixedRetry time.Duration

func (d fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(d)) }

type instanceOptions struct {
	// work starts the queue with the push and schedule workers; otherwise
	// it only inserts jobs.
	work bool
	// periodic registers the tick as a River periodic job.
	periodic bool
	// sender wraps the push service's Send.
	sender func(Sender) Sender
}

// instance starts a gateway process on the shared database.
func (b *bundle) instance(t testing.TB, o instanceOptions) *instance {
	t.Helper()
	ctx := context.Background()
	workers := river.NewWorkers()
	qopts := queue.Options{PollInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second, RetryPolicy: fixedRetry(100 * time.Millisecond)}
	if o.work {
		qopts.Workers = workers
		qopts.Queues = map[string]int{queue.DefaultQueue: 4, push.Queue: 10}
	}
	q, err := queue.New(ctx, b.db, qopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(stop)
	})
	p, err := push.New(push.Options{DB: b.db, Accounts: b.cfg, Clients: b.tokens, Jobs: q, Rate: -1,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, CallTimeout: 2 * time.Second,
		Resolver: follower.NewStore(b.db, nil), Windows: msglog.NewWindows(b.db)})
	if err != nil {
		t.Fatal(err)
	}
	var sender Sender = p
	if o.sender != nil {
		sender = o.sender(p)
	}
	svc := New(Options{DB: b.db, Accounts: b.cfg, Push: sender, Jobs: q, Bindings: follower.NewStore(b.db, nil),
		Secrets: MapSecrets{"QWEATHER_KEY": b.sim.WeatherKey()}, Now: b.clock.Now, SourceBackoff: 10 * time.Millisecond})
	b.mu.Lock()
	if b.hooked == nil {
		b.hooked = p
	}
	b.mu.Unlock()
	river.AddWorker(workers, p.Worker())
	svc.Register(workers)
	if o.periodic {
		q.Client().PeriodicJobs().Add(svc.PeriodicJob())
	}
	if o.work {
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &instance{q: q, push: p, svc: svc}
}

// ready syncs the templates and names the weather template.
func (b *bundle) ready(t testing.TB, in *instance) {
	t.Helper()
	ctx := context.Background()
	if _, err := in.push.SyncTemplates(ctx, account); err != nil {
		t.Fatal(err)
	}
	if _, err := in.push.PutAlias(ctx, push.Alias{Account: account, Alias: "daily_weather", TemplateID: tplWeather, Truncate: true}); err != nil {
		t.Fatal(err)
	}
}

// follower makes a simulated follower and gives them attributes.
func (b *bundle) follower(t testing.TB, svc *Service, name string, attrs map[string]string) string {
	t.Helper()
	u, err := b.sim.CreateUser(context.Background(), wechatsim.CreateUserRequest{AppID: oaApp, Name: name, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs) > 0 {
		set := map[string]*string{}
		for k, v := range attrs {
			set[k] = &v
		}
		if _, err := svc.SetAttributes(context.Background(), account, u.OpenID, set, false); err != nil {
			t.Fatal(err)
		}
	}
	return u.OpenID
}

// cards returns the template cards a follower received.
func (b *bundle) cards(t testing.TB, openid string) []wechatsim.InboxItem {
	t.Helper()
	items, err := b.sim.Inbox(oaApp, openid)
	if err != nil {
		t.Fatal(err)
	}
	var out []wechatsim.InboxItem
	for _, it := range items {
		if it.Kind == wechatsim.ItemTemplate {
			out = append(out, it)
		}
	}
	return out
}

// waitRun polls a run until it is finished and none of its recipients is
// pending any more.
func waitRun(t testing.TB, svc *Service, scheduleID, runID int64) RunDetail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := svc.GetRun(context.Background(), scheduleID, runID)
		if err != nil {
			t.Fatal(err)
		}
		switch d.Status {
		case RunDone, RunFailed, RunMissed:
			if d.Counts.Pending == 0 {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d not finished: %s %+v", runID, d.Status, d.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// weatherInput is the README's recipe: 07:30 every day, each follower's
// city, the 3-day forecast of the simulator's QWeather-shaped API.
func weatherInput(simURL string) Input {
	retries := 1
	return Input{
		Name: "每日天气", Account: account, Cron: "30 7 * * *", TimeZone: "Asia/Shanghai",
		Spec: Spec{
			Audience: Audience{Kind: AudienceAll},
			Template: "daily_weather",
			Data: map[string]string{
				"thing1":            "{{.City}}",
				"phrase2":           `{{get .Response "daily.0.textDay"}}`,
				"character_string3": `{{get .Response "daily.0.tempMin"}}~{{get .Response "daily.0.tempMax"}}C`,
				"date4":             `{{date "2006年01月02日"}}`,
			},
			Source: &Source{Type: SourceHTTP,
				URL:     simURL + `/v7/weather/3d?location={{or .Attr.location .City | urlquery}}&key={{secret "QWEATHER_KEY"}}`,
				Expect:  map[string]string{"code": "200"},
				Timeout: Duration(2 * time.Second), Retries: &retries},
		},
	}
}

func countJobs(t testing.TB, d *db.DB, kind string) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1`, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
