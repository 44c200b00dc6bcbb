package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/schedule"
	"github.com/wxgate/wxgate/internal/server"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/webhook"
)

// gatewayOptions carries what differs between `serve` and `demo`.
type gatewayOptions struct {
	// listener, when set, is used instead of listening on cfg.Listen.
	listener net.Listener
	// mount adds handlers under extra path patterns (the demo mounts nothing
	// extra today; kept for the API and admin UI).
	mount map[string]http.Handler
	// secrets are looked up by schedules' data sources before the
	// WXGATE_SECRET_* environment (the demo's weather key).
	secrets schedule.Secrets
}

// gateway is a running wxgate: database, HTTP server, background work.
type gateway struct {
	db        *db.DB
	tokens    *token.Registry
	jobs      *queue.Queue
	push      *push.Service
	schedules *schedule.Service
	listener  net.Listener
	done      chan error
}

// startGateway opens and migrates the database, then serves HTTP until ctx is
// cancelled. Wait returns when the server has stopped gracefully.
func startGateway(ctx context.Context, cfg config.Config, logger *slog.Logger, opts gatewayOptions) (*gateway, error) {
	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := database.Migrate(ctx); err != nil {
		database.Close()
		return nil, err
	}
	tokens, err := newTokenRegistry(cfg, database, logger, time.Now)
	if err != nil {
		database.Close()
		return nil, err
	}
	workers := river.NewWorkers()
	jobs, err := newQueue(ctx, database, tokens, logger, workers, cfg.Push.Workers)
	if err != nil {
		database.Close()
		return nil, err
	}
	// closeAll undoes the above when starting fails.
	closeAll := func() {
		_ = jobs.Stop(context.WithoutCancel(ctx))
		database.Close()
	}
	webhooks := webhook.NewStore(database, time.Now)
	binder := follower.NewBinder(follower.BinderOptions{DB: database, Accounts: cfg.Accounts, Clients: tokens,
		Events: webhook.NewPublisher(webhooks, jobs), Logger: logger.With("component", "bindings")})
	events := webhook.NewPublisher(webhooks, jobs)
	pusher := push.New(push.Options{DB: database, Accounts: cfg.Accounts, Clients: tokens, Jobs: jobs,
		Resolver: binder.Store(),
		Events:   events, Logger: logger.With("component", "push"),
		Rate: pushRate(cfg.Push), Burst: cfg.Push.Burst, CallTimeout: cfg.Push.CallTimeout})
	river.AddWorker(workers, pusher.Worker())
	scheduler := schedule.New(schedule.Options{DB: database, Accounts: cfg.Accounts, Push: pusher, Jobs: jobs, Bindings: binder.Store(),
		Secrets: schedule.ChainSecrets(opts.secrets, schedule.EnvSecrets(os.Environ())), Logger: logger.With("component", "schedule")})
	scheduler.Register(workers)
	jobs.Client().PeriodicJobs().Add(scheduler.PeriodicJob())
	for _, job := range followerSyncJobs(cfg) {
		jobs.Client().PeriodicJobs().Add(job)
	}
	mount := map[string]http.Handler{}
	for pattern, h := range opts.mount {
		mount[pattern] = h
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := server.New(server.Options{
		Config:    cfg,
		DB:        database,
		Logger:    logger,
		Registry:  registry,
		Now:       time.Now,
		Mount:     mount,
		Profiles:  follower.NewProfileJobs(jobs, tokens, logger.With("component", "follower")),
		Responder: binder.Respond,
		Hooks:     []callback.Hook{pusher.Hook, webhook.NewInboundHook(events).Hook},
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	// Mounted after New: the API reads the server's message log.
	srv.Handle("/api/v1/", api.New(api.Options{
		Accounts:  cfg.Accounts,
		PublicURL: cfg.PublicURL,
		Tokens:    tokens,
		Auth:      auth.NewStore(database, nil),
		Logger:    logger.With("component", "api"),
		Followers: binder.Store(),
		Binder:    binder,
		Messages:  srv.MessageLog(),
		Webhooks:  webhooks,
		Syncs:     follower.NewSyncJobs(jobs, follower.NewSyncer(database, time.Now, logger.With("component", "follower"))),
		Push:      pusher,
		Schedules: scheduler,
		Audit:     api.NewAuditStore(database),
		KeyRate:   cfg.API.RatePerKey,
		KeyBurst:  cfg.API.BurstPerKey,
	}))
	ln := opts.listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			srv.Close()
			closeAll()
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	// The queue outlives ctx: it is stopped below once HTTP has drained,
	// so jobs queued by the last callbacks are not cut short.
	if err := jobs.Start(context.WithoutCancel(ctx)); err != nil {
		ln.Close()
		srv.Close()
		closeAll()
		return nil, err
	}
	g := &gateway{db: database, listener: ln, done: make(chan error, 1), tokens: tokens, jobs: jobs, push: pusher, schedules: scheduler}
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		tokens.Run(ctx)
	}()
	go func() {
		defer func() { <-refreshDone }()
		err := srv.Serve(ctx, ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), queueStopTimeout+5*time.Second)
		if qerr := jobs.Stop(stopCtx); err == nil && qerr != nil {
			err = qerr
		}
		cancel()
		if cerr := database.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
		g.done <- err
	}()
	logger.Info("gateway started", "listen", ln.Addr().String(), "database", database.URL, "accounts", len(cfg.Accounts))
	return g, nil
}

// newTokenRegistry registers a token broker for every account that has an
// AppSecret; accounts without one answer callbacks but make no API calls.
func newTokenRegistry(cfg config.Config, database *db.DB, logger *slog.Logger, now func() time.Time) (*token.Registry, error) {
	reg := token.NewRegistry(database, token.Options{Logger: logger.With("component", "token"), Now: now})
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

// queueStopTimeout is how long running jobs may finish at shutdown before
// their contexts are cancelled (they are retried at the next start).
const queueStopTimeout = 15 * time.Second

// newQueue builds the job queue (migrating River's tables) with the
// workers of every job kind the gateway runs. Workers that need the queue
// themselves (push) are added to workers after, before Start.
func newQueue(ctx context.Context, database *db.DB, tokens *token.Registry, logger *slog.Logger, workers *river.Workers, pushWorkers int) (*queue.Queue, error) {
	river.AddWorker(workers, follower.NewProfileWorker(follower.NewStore(database, time.Now), tokens, logger.With("component", "follower")))
	river.AddWorker(workers, follower.NewSyncWorker(follower.NewSyncer(database, time.Now, logger.With("component", "follower")), tokens,
		logger.With("component", "follower")))
	river.AddWorker(workers, webhook.NewWorker(webhook.NewSender(webhook.NewStore(database, time.Now), nil, logger.With("component", "webhook"))))
	return queue.New(ctx, database, queue.Options{
		Logger:      logger.With("component", "queue"),
		Workers:     workers,
		Queues:      map[string]int{queue.DefaultQueue: queue.DefaultMaxWorkers, follower.Queue: follower.QueueWorkers, push.Queue: pushWorkers},
		StopTimeout: queueStopTimeout,
	})
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

// Wait blocks until the gateway has stopped.
func (g *gateway) Wait() error { return <-g.done }
