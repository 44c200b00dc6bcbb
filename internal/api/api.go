// Package api is wxgate's JSON API under /api/v1. This file is the route
// table; each resource has its own file, and errors.go is the one place
// where errors become HTTP statuses.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/token"
)

// Tokens is what the API needs of the token broker; *token.Registry is one.
type Tokens interface {
	Token(ctx context.Context, account string) (token.Token, error)
	Status(account string) (token.Status, bool)
}

// Authenticator checks API keys; *auth.Store is one.
type Authenticator interface {
	RequireScope(scope auth.Scope, onError auth.ErrorWriter) func(http.Handler) http.Handler
}

// Options are what the API is built from.
type Options struct {
	Accounts []config.Account
	// PublicURL is where WeChat reaches the gateway; empty means the
	// request's own scheme and host.
	PublicURL string
	Tokens    Tokens
	Auth      Authenticator
	Logger    *slog.Logger
	Now       func() time.Time
}

type handler struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
}

// New returns the handler of every /api/v1/ route; the server mounts it
// with mux.Handle("/api/v1/", api.New(…)).
func New(opts Options) http.Handler {
	h := &handler{opts: opts, log: opts.Logger, now: opts.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	need := func(scope auth.Scope, f http.HandlerFunc) http.Handler {
		return opts.Auth.RequireScope(scope, h.writeError)(f)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/accounts", need(auth.ScopeRead, h.listAccounts))
	mux.Handle("GET /api/v1/accounts/{name}/token", need(auth.ScopeToken, h.accountToken))
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, errNotFound("no such API route: "+r.Method+" "+r.URL.Path+" — 接口不存在"))
	})
	return mux
}
