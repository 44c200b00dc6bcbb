// Package servertest builds the callback side of a gateway (message log,
// reply rules, follower store, callback handler, server) for tests and
// benchmarks that need a real one without the queue and the API. The
// product's own wiring is cli's composition root.
package servertest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/server"
)

// Options are the parts a test sets; Config and DB are required.
type Options struct {
	Config config.Config
	DB     *db.DB
	Logger *slog.Logger
	// Registry receives the callback metrics and serves /metrics on the
	// main listener; a fresh one when nil.
	Registry *prometheus.Registry
	// Now is the protocol clock; time.Now when nil.
	Now       func() time.Time
	Hooks     []callback.Hook
	Responder callback.Responder
	Profiles  follower.ProfileFetcher
	Routes    map[string]http.Handler
	// Messages and Followers, when set, are the stores to use (a test's
	// Routes read them too); built when nil. Close closes Messages either way.
	Messages  *msglog.Store
	Followers *follower.Store
}

// Gateway is the server with the stores it was built on.
type Gateway struct {
	*server.Server
	Messages  *msglog.Store
	Followers *follower.Store
	Replies   *reply.Store
}

// New builds the stores (reply rules seeded from the configuration), the
// callback handler and the server.
func New(opts Options) (*Gateway, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	g := &Gateway{Messages: opts.Messages, Followers: opts.Followers, Replies: reply.NewStore(opts.DB, opts.Now)}
	if g.Messages == nil {
		g.Messages = msglog.NewStore(opts.DB, msglog.Options{Now: opts.Now})
	}
	if g.Followers == nil {
		g.Followers = follower.NewStore(opts.DB, opts.Now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Replies.Seed(ctx, opts.Config.Accounts); err != nil {
		g.Messages.Close()
		return nil, fmt.Errorf("servertest: seeding reply rules: %w", err)
	}
	cb, err := callback.New(callback.Options{
		Accounts:   opts.Config.Accounts,
		Settings:   opts.Config.Callback,
		Log:        g.Messages,
		Replies:    g.Replies,
		Responder:  opts.Responder,
		Followers:  g.Followers,
		Profiles:   opts.Profiles,
		Hooks:      opts.Hooks,
		Logger:     opts.Logger.With("component", "callback"),
		Now:        opts.Now,
		Registerer: opts.Registry,
	})
	if err != nil {
		g.Messages.Close()
		return nil, err
	}
	g.Server, err = server.New(server.Options{Logger: opts.Logger, DB: opts.DB, Callback: cb, Routes: opts.Routes,
		Registry: opts.Registry, MetricsOnPublicListener: true})
	if err != nil {
		g.Messages.Close()
		return nil, err
	}
	return g, nil
}

// Close flushes and closes the message log; call it after Serve returns
// (or instead of serving).
func (g *Gateway) Close() error { return g.Messages.Close() }
