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

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/server"
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
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := server.New(server.Options{
		Config:   cfg,
		DB:       database,
		Logger:   logger,
		Registry: registry,
		Now:      time.Now,
		Mount:    opts.mount,
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
	g := &gateway{db: database, listener: ln, done: make(chan error, 1)}
	go func() {
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

// URL is the base URL the gateway answers on.
func (g *gateway) URL() string { return "http://" + g.listener.Addr().String() }

// Wait blocks until the gateway has stopped.
func (g *gateway) Wait() error { return <-g.done }
