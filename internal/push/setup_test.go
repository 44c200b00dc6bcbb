package push_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// The test platform: an official account "main" and a mini program
// "shop-mp" on the simulator, with the demo's templates, a subscription
// notification template on the OA and a subscription template on the MP.
const (
	oaApp        = "wx00000000000000a1"
	mpApp        = "wx00000000000000b2"
	secret       = "test-secret-0123456789abcdef0123"
	tplVisit     = "Tm-NewVisitor-0000000000000000000000000001"
	tplWeather   = "Tm-Weather-00000000000000000000000000000001"
	tplOASub     = "Sb-OaNotice-00000000000000000000000000000001"
	tplMPSub     = "Sb-MpNotice-00000000000000000000000000000001"
	openPlatform = "test-open-platform"
)

func simApps() []wechatsim.AppConfig {
	return []wechatsim.AppConfig{
		{AppID: oaApp, AppSecret: secret, Kind: wechatsim.KindOfficialAccount, OpenPlatform: openPlatform,
			Templates: []wechatsim.TemplateConfig{
				{ID: tplVisit, Title: "新客户访问提醒", Content: "客户：{{thing1.DATA}}\n访问页面：{{thing2.DATA}}\n访问时间：{{time3.DATA}}"},
				{ID: tplWeather, Title: "每日天气", Content: "城市：{{thing1.DATA}}\n天气：{{phrase2.DATA}}\n气温：{{character_string3.DATA}}\n日期：{{date4.DATA}}"},
				{ID: tplOASub, Kind: wechatsim.TemplateKindSubscribe, Title: "预约提醒", Content: "事项：{{thing1.DATA}}\n时间：{{time2.DATA}}"},
			}},
		{AppID: mpApp, AppSecret: secret, Kind: wechatsim.KindMiniProgram, OpenPlatform: openPlatform,
			Templates: []wechatsim.TemplateConfig{
				{ID: tplMPSub, Title: "订单发货", Content: "订单号：{{character_string1.DATA}}\n商品：{{thing2.DATA}}"},
			}},
	}
}

// clock is a settable offset from the real time, shared by the simulator
// and the gateway.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) set(d time.Duration) { c.offset.Store(int64(d)) }
func (c *clock) untilBeijingMidnight() time.Duration {
	bj := time.FixedZone("CST", 8*3600)
	now := time.Now().In(bj)
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, bj).Sub(now)
}

type bundle struct {
	db      *db.DB
	sim     *wechatsim.Simulator
	simURL  string
	clock   *clock
	tokens  *token.Registry
	svc     *push.Service
	q       *queue.Queue
	events  *recordedEvents
	workers *river.Workers
	hooked  atomic.Pointer[push.Service]
	calls   *callRecorder
	opts    push.Options // what the service was built with
}

type setupOptions struct {
	opts   push.Options
	simCfg wechatsim.Config
	// work starts the queue with the send worker.
	work bool
	// apps replaces simApps().
	apps []wechatsim.AppConfig
	// media gives the service a media library, for messages naming files.
	media bool
}

func accounts(simURL string) []config.Account {
	return []config.Account{
		{Name: "main", Kind: config.KindOfficialAccount, AppID: oaApp, AppSecret: secret, APIBaseURLs: []string{simURL},
			MessageMode: config.ModePlaintext, Token: "tok"},
		{Name: "shop-mp", Kind: config.KindMiniProgram, AppID: mpApp, AppSecret: secret, APIBaseURLs: []string{simURL},
			MessageMode: config.ModePlaintext},
	}
}

func setup(t testing.TB, d *db.DB, so setupOptions) *bundle {
	t.Helper()
	b := &bundle{db: d, clock: &clock{}, events: &recordedEvents{}}
	// The callback: what the gateway's callback does for push, without
	// the callback package (signatures, log, replies).
	followers := follower.NewStore(d, b.clock.Now)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m, err := wechat.ParseMessage(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		account := r.URL.Path[len("/wx/"):]
		// A delivery the simulator gave up on (its callback timeout on a
		// loaded machine, or its shutdown) cancels the request: WeChat
		// retries it, so that is not a failure of the code under test.
		if err := followers.ApplyEvent(r.Context(), account, m); err != nil && r.Context().Err() == nil {
			t.Errorf("callback: followers: %v", err)
		}
		if svc := b.hooked.Load(); svc != nil {
			if err := svc.Hook(r.Context(), account, m); err != nil && r.Context().Err() == nil {
				t.Errorf("callback: push hook: %v", err)
			}
		}
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(cb.Close)
	cfg := so.simCfg
	cfg.Apps = so.apps
	if cfg.Apps == nil {
		cfg.Apps = simApps()
	}
	for i := range cfg.Apps {
		name := "main"
		if cfg.Apps[i].Kind == wechatsim.KindMiniProgram {
			name = "shop-mp"
		}
		cfg.Apps[i].CallbackURL, cfg.Apps[i].Token = cb.URL+"/wx/"+name, "tok"
	}
	cfg.Now = b.clock.Now
	if cfg.JobFinishDelay == 0 {
		cfg.JobFinishDelay = 50 * time.Millisecond
	}
	sim, err := wechatsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	b.calls = &callRecorder{}
	srv := httptest.NewServer(b.calls.wrap(sim.Handler()))
	t.Cleanup(srv.Close)
	b.sim, b.simURL = sim, srv.URL

	b.tokens = token.NewRegistry(d, token.Options{Now: b.clock.Now})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, a := range accounts(srv.URL) {
		if _, err := b.tokens.AddAccount(a, token.AccountOptions{HTTPClient: hc, FailoverCooldown: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}

	b.workers = river.NewWorkers()
	qopts := queue.Options{PollInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second}
	if so.work {
		qopts.Workers = b.workers
		qopts.Queues = map[string]int{queue.DefaultQueue: 2, push.Queue: 20}
	}
	ctx := context.Background()
	q, err := queue.New(ctx, d, qopts)
	if err != nil {
		t.Fatal(err)
	}
	b.q = q

	opts := so.opts
	opts.DB = d
	opts.Accounts = accounts(srv.URL)
	opts.Clients = b.tokens
	opts.Jobs = q
	opts.Now = b.clock.Now
	if opts.Events == nil {
		opts.Events = b.events
	}
	if opts.Resolver == nil {
		opts.Resolver = followers
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = 20 * time.Millisecond
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 200 * time.Millisecond
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = 2 * time.Second
	}
	if opts.Windows == nil {
		opts.Windows = msglog.NewWindows(b.db)
	}
	if so.media {
		opts.Files = media.New(media.Options{DB: d, Clients: b.tokens, Now: b.clock.Now})
	}
	svc, err := push.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.svc, b.opts = svc, opts
	b.hooked.Store(b.svc)
	river.AddWorker(b.workers, b.svc.Worker())
	if so.work {
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(stop)
	})
	return b
}

// follower creates a simulated follower and records it as the callback
// would (no gateway here).
func (b *bundle) follower(t *testing.T, name string) string {
	t.Helper()
	u, err := b.sim.CreateUser(context.Background(), wechatsim.CreateUserRequest{AppID: oaApp, Name: name, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	b.exec(t, `UPDATE followers SET unionid = $1 WHERE account = 'main' AND openid = $2`, u.UnionID, u.OpenID)
	return u.OpenID
}

func (b *bundle) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := b.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatal(err)
	}
}

// hook feeds a push from the simulator to the service as the callback
// would.
func (b *bundle) hook(t *testing.T, account string, m *wechat.Message) {
	t.Helper()
	if err := b.svc.Hook(context.Background(), account, m); err != nil {
		t.Fatal(err)
	}
}

// recordedEvents is an EventSink that keeps the events.
type recordedEvents struct {
	mu   sync.Mutex
	list []event
}

type event struct {
	Type, Account string
	Data          any
}

func (r *recordedEvents) PublishTx(_ context.Context, _ *sql.Tx, eventType, account string, data any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, event{Type: eventType, Account: account, Data: data})
	return nil
}
