package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/api"
	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/mass"
	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/proxy"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/schedule"
	"github.com/wxgate/wxgate/internal/server"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/web"
	"github.com/wxgate/wxgate/internal/webhook"
)

// gatewayOptions carries what differs between `serve` and `demo`.
type gatewayOptions struct {
	// listener, when set, is used instead of listening on cfg.Listen.
	listener net.Listener
	// metricsListener, when set, is used instead of listening on
	// cfg.Metrics.Listen.
	metricsListener net.Listener
	// mount adds handlers under extra path patterns.
	mount map[string]http.Handler
	// secrets are looked up by schedules' data sources before the
	// WXGATE_SECRET_* environment (the demo's weather key).
	secrets schedule.Secrets
	// simulatorURL, when set (the demo), is linked from the console.
	simulatorURL string
}

// gateway is a running wxgate: database, HTTP server, background work.
type gateway struct {
	db        *db.DB
	tokens    *token.Registry
	jobs      *queue.Queue
	push      *push.Service
	schedules *schedule.Service
	replies   *reply.Store
	listener  net.Listener
	metrics   net.Listener // nil when metrics.listen is off
	done      chan error
}

// replyRefresh is how often reply rules are reloaded to pick up changes
// made by another process (the CLI, another instance).
const replyRefresh = 15 * time.Second

// startGateway is the composition root: it builds every piece of the
// gateway once, in dependency order (database → token broker → stores →
// queue and its workers → bindings, push, schedules → callback and API
// handlers → HTTP server), then serves until ctx is cancelled. Wait
// returns when everything has stopped gracefully.
func startGateway(ctx context.Context, cfg config.Config, logger *slog.Logger, opts gatewayOptions) (_ *gateway, err error) {
	// undo holds what to release, in reverse, when starting fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	// The listener answers from the start: /readyz says 503 while the
	// migrations run (on PostgreSQL perhaps waiting for another instance's)
	// and the pieces are built, instead of refusing connections.
	ln := opts.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	starting := server.NewStarting(ln)
	handedOff := false
	undo = append(undo, func() {
		if !handedOff {
			starting.Close()
		}
	})

	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { database.Close() })
	starting.Step(server.StepMigrating)
	if err := database.Migrate(ctx); err != nil {
		return nil, err
	}
	starting.Step(server.StepStarting)
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The shared queue and webhook backlog are read from the database at
	// scrape time: every instance reports the cluster's figures.
	registry.MustRegister(queue.NewCollector(database, time.Now), webhook.NewCollector(database, time.Now))
	tokens, err := newTokenRegistry(cfg, database, logger, time.Now, token.NewMetrics(registry))
	if err != nil {
		return nil, err
	}

	// The stores, one of each.
	followers := follower.NewStore(database, time.Now)
	syncer := follower.NewSyncer(database, time.Now, logger.With("component", "follower"))
	messages := msglog.NewStore(database, msglog.Options{})
	undo = append(undo, func() { messages.Close() })
	replies := reply.NewStore(database, time.Now)
	if err := replies.Seed(ctx, cfg.Accounts); err != nil {
		return nil, fmt.Errorf("seeding reply rules: %w", err)
	}
	webhooks := webhook.NewStore(database, time.Now)
	mediaLibrary := media.New(media.Options{DB: database, Clients: tokens, Logger: logger.With("component", "media"),
		MaxDownload: cfg.Media.DownloadMaxBytes})
	replies.UseFiles(mediaLibrary, logger.With("component", "reply"))
	masses := mass.New(mass.Options{DB: database, Accounts: cfg.Accounts, Clients: tokens, Files: mediaLibrary,
		Logger: logger.With("component", "mass")})

	// The queue, with the workers of every job kind the gateway runs;
	// push's worker needs the queue itself and is added before Start.
	workers := river.NewWorkers()
	river.AddWorker(workers, follower.NewProfileWorker(followers, tokens, logger.With("component", "follower")))
	river.AddWorker(workers, follower.NewSyncWorker(syncer, tokens, logger.With("component", "follower")))
	river.AddWorker(workers, webhook.NewWorker(webhook.NewSender(webhooks, nil, logger.With("component", "webhook"))))
	river.AddWorker(workers, mediaLibrary.RenewWorker())
	jobs, err := queue.New(ctx, database, queue.Options{
		Logger:      logger.With("component", "queue"),
		Workers:     workers,
		Queues:      map[string]int{queue.DefaultQueue: queue.DefaultMaxWorkers, follower.Queue: follower.QueueWorkers, push.Queue: cfg.Push.Workers},
		StopTimeout: queueStopTimeout(cfg),
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = jobs.Stop(context.WithoutCancel(ctx)) })
	events := webhook.NewPublisher(webhooks, jobs)
	inbound := webhook.NewInboundHook(events)

	// The domains.
	tags := follower.NewTags(followers, tokens)
	binder := follower.NewBinder(follower.BinderOptions{Store: followers, Accounts: cfg.Accounts, Clients: tokens,
		Events: events, Logger: logger.With("component", "bindings")})
	pusher, err := push.New(push.Options{DB: database, Accounts: cfg.Accounts, Clients: tokens, Jobs: jobs,
		Resolver: followers, Windows: msglog.NewWindows(database),
		Events: events, Logger: logger.With("component", "push"), Metrics: push.NewMetrics(registry),
		Rate: pushRate(cfg.Push), Burst: cfg.Push.Burst, CallTimeout: cfg.Push.CallTimeout,
		ReceiptTimeout: cfg.Push.ReceiptTimeout, Files: mediaLibrary})
	if err != nil {
		return nil, err
	}
	river.AddWorker(workers, pusher.Worker())
	river.AddWorker(workers, pusher.ReceiptSweepWorker())
	jobs.Client().PeriodicJobs().Add(pusher.ReceiptSweepJob())
	jobs.Client().PeriodicJobs().Add(mediaLibrary.RenewJob())
	scheduler := schedule.New(schedule.Options{DB: database, Accounts: cfg.Accounts, Push: pusher, Jobs: jobs, Bindings: followers,
		Secrets: schedule.ChainSecrets(opts.secrets, schedule.EnvSecrets(os.Environ())), Logger: logger.With("component", "schedule")})
	scheduler.Register(workers)
	jobs.Client().PeriodicJobs().Add(scheduler.PeriodicJob())
	for _, job := range followerSyncJobs(cfg) {
		jobs.Client().PeriodicJobs().Add(job)
	}

	// The HTTP handlers.
	callbacks, err := callback.New(callback.Options{
		Accounts:  cfg.Accounts,
		Settings:  cfg.Callback,
		Log:       messages,
		Replies:   replies,
		Responder: binder.Respond,
		Followers: followers,
		Profiles:  follower.NewProfileJobs(jobs, tokens, logger.With("component", "follower")),
		Hooks: []callback.Hook{
			{Wants: push.WantsPush, Run: pusher.Hook},
			{Wants: mass.WantsPush, Run: masses.Hook},
			{Wants: inbound.Wants, Run: inbound.Hook},
		},
		Logger:     logger.With("component", "callback"),
		Registerer: registry,
	})
	if err != nil {
		return nil, err
	}
	syncJobs := follower.NewSyncJobs(jobs, syncer)
	keys := auth.NewStore(database, nil)
	admins := auth.NewAdminStore(database, nil)
	console, err := web.New(web.Options{
		Accounts: cfg.Accounts, PublicURL: cfg.PublicURL, Admins: admins, Keys: keys,
		Followers: followers, Binder: binder, Syncs: syncJobs, Tags: tags, Messages: messages, Windows: msglog.NewWindows(database), Push: pusher,
		Schedules: scheduler, Replies: replies, Webhooks: webhooks, WebhookEvents: events, Tokens: tokens,
		SimulatorURL: opts.simulatorURL, OpenAPI: api.OpenAPI(), Logger: logger.With("component", "console"),
	})
	if err != nil {
		return nil, err
	}
	routes := map[string]http.Handler{
		web.Prefix: console,
		"/api/v1/": api.New(api.Options{
			Accounts:      cfg.Accounts,
			PublicURL:     cfg.PublicURL,
			Tokens:        tokens,
			Auth:          keys,
			Logger:        logger.With("component", "api"),
			Followers:     followers,
			Binder:        binder,
			Messages:      messages,
			Webhooks:      webhooks,
			WebhookEvents: events,
			Syncs:         syncJobs,
			Tags:          tags,
			Media:         mediaLibrary,
			Mass:          masses,
			Clients:       tokens,
			Deliveries:    pusher,
			Windows:       msglog.NewWindows(database),
			Push:          pusher,
			Schedules:     scheduler,
			Audit:         api.NewAuditStore(database),
			KeyRate:       cfg.API.RatePerKey,
			KeyBurst:      cfg.API.BurstPerKey,
			SharedLimits:  sharedLimits(database),
		}),
		proxy.Prefix: proxy.New(proxy.Options{
			Tokens: tokens,
			Auth:   keys,
			DB:     database,
			Logger: logger.With("component", "proxy"),
			Rate:   proxyRate(cfg.Proxy.RatePerKey),
			Burst:  cfg.Proxy.BurstPerKey,
			// On PostgreSQL the per-key rate holds across every instance.
			SharedLimits: sharedLimits(database),
		}),
	}
	for pattern, h := range opts.mount {
		routes[pattern] = h
	}

	metricsLn := opts.metricsListener
	if metricsLn == nil && cfg.Metrics.Listen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return nil, fmt.Errorf("metrics.listen on %s: %w — metrics.listen 地址无法监听（可设为空以关闭）", cfg.Metrics.Listen, err)
		}
	}
	if metricsLn != nil {
		undo = append(undo, func() { metricsLn.Close() })
	}
	srv, err := server.New(server.Options{
		Logger:                  logger,
		DB:                      database,
		Callback:                callbacks,
		Routes:                  routes,
		Registry:                registry,
		MetricsListener:         metricsLn,
		MetricsOnPublicListener: cfg.Metrics.OnPublicListener,
		MetricsToken:            cfg.Metrics.Token,
		DrainDelay:              drainDelay(database),
		ShutdownTimeout:         httpStopTimeout(cfg),
	})
	if err != nil {
		return nil, err
	}
	// The queue outlives ctx: it is stopped below once HTTP has drained,
	// so jobs queued by the last callbacks are not cut short.
	if err := jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	handoffCtx, cancelHandoff := context.WithTimeout(ctx, 5*time.Second)
	ln = starting.Handoff(handoffCtx)
	cancelHandoff()
	handedOff = true

	g := &gateway{db: database, listener: ln, metrics: metricsLn, done: make(chan error, 1), tokens: tokens, jobs: jobs, push: pusher, schedules: scheduler, replies: replies}
	// The token refresh, the reply reload and the message log's retention
	// end with ctx, before the database closes.
	var background sync.WaitGroup
	background.Go(func() { tokens.Run(ctx) })
	background.Go(func() {
		replies.RefreshEvery(ctx, replyRefresh, func(err error) { logger.Warn("reloading reply rules", "err", err) })
	})
	background.Go(func() { messages.RunRetention(ctx, cfg.MsgLog.Retention, logger.With("component", "msglog")) })
	// The files reply rules name go up to WeChat before the first push
	// needs them.
	background.Go(func() { replies.Warm(ctx) })
	go func() {
		err := srv.Serve(ctx, ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		// In the order of their use: the callbacks' log (flushed), then the
		// queue, then the database.
		if cerr := messages.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close message log: %w", cerr)
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), queueStopTimeout(cfg)+5*time.Second)
		if qerr := jobs.Stop(stopCtx); err == nil && qerr != nil {
			err = qerr
		}
		cancel()
		background.Wait()
		if cerr := database.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
		g.done <- err
	}()
	attrs := []any{"listen", ln.Addr().String(), "database", database.URL, "accounts", len(cfg.Accounts)}
	if metricsLn != nil {
		attrs = append(attrs, "metrics", metricsLn.Addr().String())
	}
	logger.Info("gateway started", attrs...)
	return g, nil
}

// newTokenRegistry registers a token broker for every account that has an
// AppSecret; accounts without one answer callbacks but make no API calls.
func newTokenRegistry(cfg config.Config, database *db.DB, logger *slog.Logger, now func() time.Time, metrics *token.Metrics) (*token.Registry, error) {
	reg := token.NewRegistry(database, token.Options{Logger: logger.With("component", "token"), Now: now, Metrics: metrics})
	httpClient := wechatHTTPClient(cfg.Push.Workers)
	for _, a := range cfg.Accounts {
		if a.AppSecret == "" {
			continue
		}
		mode, err := token.ParseMode(string(a.TokenMode))
		if err != nil {
			return nil, fmt.Errorf("account %q: %w", a.Name, err)
		}
		if _, err := reg.AddAccount(a, token.AccountOptions{Mode: mode, RefreshMargin: a.TokenRefreshMargin, HTTPClient: httpClient}); err != nil {
			return nil, fmt.Errorf("account %q: token broker: %w", a.Name, err)
		}
	}
	return reg, nil
}

// wechatHTTPClient is the client of the calls to WeChat's API. Go's
// default transport keeps 2 idle connections per host: with push.workers
// sends in flight to one API host, most calls opened a new connection (a
// TLS handshake on the real API) and the closed ones piled up in
// TIME_WAIT. Keeping one per concurrent call made sends about a fifth
// cheaper in CPU, for the gateway and the simulator alike
// (docs/benchmarks.md, "Push throughput"). The accounts share it; the
// timeout is the API client's default.
func wechatHTTPClient(pushWorkers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The push workers plus the other queues' workers and the token refresh.
	tr.MaxIdleConnsPerHost = pushWorkers + queue.DefaultMaxWorkers + follower.QueueWorkers + 2
	tr.MaxIdleConns = 2 * tr.MaxIdleConnsPerHost // the API domain and its backup
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// drainDelay is how long a stopping gateway keeps serving with /readyz
// at 503. On PostgreSQL there are usually several instances behind a load
// balancer that polls /readyz; a SQLite gateway is alone and stops at once.
func drainDelay(d *db.DB) time.Duration {
	if d.Dialect == db.Postgres {
		return postgresDrainDelay
	}
	return 0
}

// postgresDrainDelay covers two polls of a load balancer checking /readyz
// every second (a readinessProbe, an HAProxy or cloud balancer check).
const postgresDrainDelay = 2 * time.Second

// queueStopTimeout is how long running jobs may finish at shutdown before
// their contexts are cancelled (they are retried at the next start): what
// shutdown_timeout leaves after the HTTP drain, its half.
func queueStopTimeout(cfg config.Config) time.Duration {
	return shutdownTimeout(cfg) - httpStopTimeout(cfg)
}

// httpStopTimeout is how long requests in flight may finish at shutdown.
func httpStopTimeout(cfg config.Config) time.Duration { return shutdownTimeout(cfg) / 2 }

func shutdownTimeout(cfg config.Config) time.Duration {
	if cfg.ShutdownTimeout <= 0 {
		return config.Default().ShutdownTimeout
	}
	return cfg.ShutdownTimeout
}

// followerSyncJobs are the periodic full syncs (followers.sync_every) of
// the official accounts that can call WeChat. River's leader inserts them;
// SyncArgs is unique per account while one is queued or running, so a long
// sync is never doubled.
func followerSyncJobs(cfg config.Config) []*river.PeriodicJob {
	if cfg.Followers.SyncEvery <= 0 {
		return nil
	}
	var out []*river.PeriodicJob
	for _, a := range cfg.Accounts {
		if a.AppSecret == "" || a.Kind == config.KindMiniProgram {
			continue
		}
		args := follower.SyncArgs{Account: a.Name}
		out = append(out, river.NewPeriodicJob(river.PeriodicInterval(cfg.Followers.SyncEvery),
			func() (river.JobArgs, *river.InsertOpts) { return args, nil },
			&river.PeriodicJobOpts{ID: "follower_sync_" + a.Name}))
	}
	return out
}

// pushRate maps push.rate_per_account (0 = no limit) onto push.Options.Rate
// (negative = no limit).
func pushRate(c config.PushConfig) float64 {
	if c.RatePerAccount == 0 {
		return -1
	}
	return c.RatePerAccount
}

// URL is the base URL the gateway answers on.
func (g *gateway) URL() string { return "http://" + g.listener.Addr().String() }

// MetricsURL is the base URL of the metrics listener, "" when it is off.
func (g *gateway) MetricsURL() string {
	if g.metrics == nil {
		return ""
	}
	return "http://" + g.metrics.Addr().String()
}

// Wait blocks until the gateway has stopped.
func (g *gateway) Wait() error { return <-g.done }

// proxyRate turns the config's "0 means no limit" into proxy.Options',
// where 0 means the default and a negative rate no limit.
func proxyRate(perKey float64) float64 {
	if perKey == 0 {
		return -1
	}
	return perKey
}

// sharedLimits is the database holding rate buckets shared by every
// instance: PostgreSQL; nil on SQLite (one instance per file).
func sharedLimits(d *db.DB) *db.DB {
	if d.Dialect == db.Postgres {
		return d
	}
	return nil
}
