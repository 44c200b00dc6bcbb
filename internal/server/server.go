// Package server assembles the gateway's HTTP side: the root mux with the
// WeChat callback, health, readiness and metrics; the middleware every
// request passes (request id, logging, panic recovery); and a graceful stop
// that drains callbacks, their background work and the message log writer.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/reply"
)

// Options builds a Server. Config and DB are required; the DB stays the
// caller's to close.
type Options struct {
	Config config.Config
	DB     *db.DB
	Logger *slog.Logger
	// Registry serves /metrics; a fresh one with the Go and process
	// collectors when nil.
	Registry *prometheus.Registry
	// Now is the protocol clock of the callback (tests inject WeChat's
	// example timestamps); time.Now when nil.
	Now func() time.Time
	// Mount adds handlers to the root mux, pattern → handler, e.g.
	// "/api/v1/" and "/admin/". Handle does the same after New.
	Mount map[string]http.Handler
	// Hooks run after the built-in ones for every new push.
	Hooks []callback.Hook
	// Profiles, when set, fetches new subscribers' profiles.
	Profiles follower.ProfileFetcher
	// Responder, when set, answers the pushes that are its business
	// before the reply rules (the scan of a binding QR code).
	Responder callback.Responder
	// MessageLog tunes the log's group commit.
	MessageLog msglog.Options
	// ShutdownTimeout bounds the graceful stop (default 20s).
	ShutdownTimeout time.Duration
	// RuleRefresh is how often reply rules are reloaded to pick up changes
	// made by another process (default 15s).
	RuleRefresh time.Duration
}

// Server is the gateway's HTTP server.
type Server struct {
	opts     Options
	logger   *slog.Logger
	mux      *http.ServeMux
	handler  http.Handler
	registry *prometheus.Registry

	callback  *callback.Handler
	messages  *msglog.Store
	replies   *reply.Store
	followers *follower.Store

	draining  atomic.Bool
	served    atomic.Bool
	closeOnce sync.Once
}

// New builds the server: stores, reply rules seeded from the configuration,
// the callback handler, routes and middleware.
func New(opts Options) (*Server, error) {
	if opts.DB == nil {
		return nil, errors.New("server: a database is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 20 * time.Second
	}
	if opts.RuleRefresh <= 0 {
		opts.RuleRefresh = 15 * time.Second
	}
	if opts.MessageLog.Now == nil {
		opts.MessageLog.Now = opts.Now
	}

	s := &Server{
		opts:      opts,
		logger:    opts.Logger,
		mux:       http.NewServeMux(),
		registry:  opts.Registry,
		replies:   reply.NewStore(opts.DB, opts.Now),
		followers: follower.NewStore(opts.DB, opts.Now),
	}

	seedCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.replies.Seed(seedCtx, opts.Config.Accounts); err != nil {
		return nil, fmt.Errorf("server: seeding reply rules: %w", err)
	}

	s.messages = msglog.NewStore(opts.DB, opts.MessageLog)
	cb, err := callback.New(callback.Options{
		Accounts:   opts.Config.Accounts,
		Settings:   opts.Config.Callback,
		Log:        s.messages,
		Replies:    s.replies,
		Responder:  opts.Responder,
		Followers:  s.followers,
		Profiles:   opts.Profiles,
		Hooks:      opts.Hooks,
		Logger:     opts.Logger.With("component", "callback"),
		Now:        opts.Now,
		Registerer: opts.Registry,
	})
	if err != nil {
		s.messages.Close()
		return nil, err
	}
	s.callback = cb

	cb.Register(s.mux)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	for pattern, h := range opts.Mount {
		s.mux.Handle(pattern, h)
	}
	s.handler = requestID(logRequests(s.logger, recoverPanics(s.logger, s.mux)))
	return s, nil
}

// Handle mounts another handler on the root mux (e.g. "/api/v1/", "/admin/").
// Call it before serving.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the root handler with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// Replies is the reply rule store, for the CLI and the API.
func (s *Server) Replies() *reply.Store { return s.replies }

// MessageLog is the inbound message log, for the API.
func (s *Server) MessageLog() *msglog.Store { return s.messages }

// Followers is the follower store, for the API.
func (s *Server) Followers() *follower.Store { return s.followers }

// ListenAndServe listens on the configured address and serves until ctx
// ends, then stops gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Config.Listen)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.opts.Config.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends. Then it stops accepting, lets the
// requests in flight finish, waits for callbacks' background work, flushes
// the message log and returns. It may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("server: Serve called twice")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}

	refreshCtx, stopRefresh := context.WithCancel(context.Background())
	defer stopRefresh()
	go s.replies.RefreshEvery(refreshCtx, s.opts.RuleRefresh, func(err error) {
		s.logger.Warn("reloading reply rules", "err", err)
	})

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}

	s.draining.Store(true)
	s.logger.Info("shutting down: draining requests and background work")
	stopCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(stopCtx); err != nil {
		errs = append(errs, fmt.Errorf("server: stopping HTTP: %w", err))
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("server: %w", err))
	}
	if err := s.callback.Wait(stopCtx); err != nil {
		errs = append(errs, fmt.Errorf("server: background work still running at shutdown: %w", err))
	}
	s.Close()
	s.logger.Info("stopped")
	return errors.Join(errs...)
}

// Close releases what New started (the message log writer, after flushing
// it) for a Server that is not served, or after Serve. It does not close
// the DB.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.messages.Close()
	})
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// readyz says whether this instance should get traffic: the database
// answers and the server is not shutting down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down — 服务正在停止")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.DB.PingContext(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database_unavailable",
			fmt.Sprintf("the %s database does not answer: %v — 数据库无法连接", s.opts.DB.Dialect, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}
