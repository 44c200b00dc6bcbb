package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wxgate/wxgate/internal/api"
	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/server"
	"github.com/wxgate/wxgate/internal/token"
)

// gatewayOptions carries what differs between `serve` and `demo`.
type gatewayOptions struct {
	// listener, when set, is used instead of listening on cfg.Listen.
	listener net.Listener
	// mount adds handlers under extra path patterns (the demo mounts nothing
	// extra today; kept for the API and admin UI).
	mount map[string]http.Handler
}

// gateway is a running wxgate: database, HTTP server, background work.
type gateway struct {
	db       *db.DB
	tokens   *token.Registry
	listener net.Listener
	done     chan error
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
	mount := map[string]http.Handler{
		"/api/v1/": api.New(api.Options{
			Accounts:  cfg.Accounts,
			PublicURL: cfg.PublicURL,
			Tokens:    tokens,
			Auth:      auth.NewStore(database, nil),
			Logger:    logger.With("component", "api"),
		}),
	}
	for pattern, h := range opts.mount {
		mount[pattern] = h
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := server.New(server.Options{
		Config:   cfg,
		DB:       database,
		Logger:   logger,
		Registry: registry,
		Now:      time.Now,
		Mount:    mount,
	})
	if err != nil {
		database.Close()
		return nil, err
	}
	ln := opts.listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			database.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	g := &gateway{db: database, listener: ln, done: make(chan error, 1), tokens: tokens}
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
	for _, a := range cfg.Accounts {
		if a.AppSecret == "" {
			continue
		}
		mode, err := token.ParseMode(string(a.TokenMode))
		if err != nil {
			return nil, fmt.Errorf("account %q: %w", a.Name, err)
		}
		if _, err := reg.AddAccount(a, token.AccountOptions{Mode: mode, RefreshMargin: a.TokenRefreshMargin}); err != nil {
			return nil, fmt.Errorf("account %q: token broker: %w", a.Name, err)
		}
	}
	return reg, nil
}

// URL is the base URL the gateway answers on.
func (g *gateway) URL() string { return "http://" + g.listener.Addr().String() }

// Wait blocks until the gateway has stopped.
func (g *gateway) Wait() error { return <-g.done }
