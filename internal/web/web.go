// Package web is the admin console at /admin/: server-rendered pages in
// Chinese and English over the same domain services as /api/v1. This file
// is the route table and the plumbing every page shares (sessions, CSRF,
// security headers, rendering); each page has its own file.
package web

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/schedule"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/webhook"
)

// Prefix is where the console is mounted.
const Prefix = "/admin/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are the services the console drives; they are the gateway's own
// (built once in the composition root), so a rule lives in one place.
// Pages whose service is nil show "not configured".
type Options struct {
	Accounts []config.Account
	// PublicURL is where WeChat reaches the gateway; empty means the
	// request's own scheme and host.
	PublicURL string
	Admins    *auth.AdminStore
	Keys      *auth.Store
	Followers *follower.Store
	Binder    *follower.Binder
	Syncs     *follower.SyncJobs
	// Tags lists the user tags the composer offers as recipients.
	Tags     *follower.Tags
	Messages *msglog.Store
	// Windows tells whose customer-service window is open (the follower
	// page's reply box).
	Windows   *msglog.Windows
	Push      *push.Service
	Schedules *schedule.Service
	Replies   *reply.Store
	Webhooks  *webhook.Store
	// WebhookEvents redelivers webhook deliveries.
	WebhookEvents *webhook.Publisher
	Tokens        *token.Registry
	// SimulatorURL, when set (wxgate demo), is linked as the phone to try
	// things on.
	SimulatorURL string
	// OpenAPI is /api/v1's contract document, shown rendered at /admin/api.
	OpenAPI []byte
	Logger  *slog.Logger
	Now     func() time.Time
}

// Console is the /admin/ handler.
type Console struct {
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	views map[string]*viewSet // by language
	// catalog is every text of the console: key → {Chinese, English}.
	catalog map[string][2]string
	mux     *http.ServeMux
	// routes are the patterns registered, for the handler tests.
	routes []string
}

// New builds the console; the server mounts it at Prefix.
func New(opts Options) (*Console, error) {
	if opts.Admins == nil {
		return nil, fmt.Errorf("web: the console needs the admin store")
	}
	c := &Console{opts: opts, log: opts.Logger, now: opts.Now, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	catalog, err := buildCatalog()
	if err != nil {
		return nil, err
	}
	c.catalog = catalog
	views, err := parseViews(catalog)
	if err != nil {
		return nil, err
	}
	c.views = views

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	c.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", cacheStatic(http.FileServerFS(static))))

	// Open to everyone: signing in and choosing the language.
	c.open("GET /admin/login", c.loginPage)
	c.open("POST /admin/login", c.login)
	c.open("GET /admin/login/link", c.loginLink)
	c.open("GET /admin/lang", c.switchLanguage)
	c.page("POST /admin/logout", c.logout)
	c.page("GET /admin/{$}", c.home)

	// Each page file adds its routes.
	c.dashboardRoutes()
	c.followerRoutes()
	c.sendRoutes()
	c.messageRoutes()
	c.templateRoutes()
	c.scheduleRoutes()
	c.bindingRoutes()
	c.replyRoutes()
	c.keyRoutes()
	c.accountRoutes()
	c.auditRoutes()
	c.apiContractRoutes()

	// Unknown pages are shown inside the console, for signed-in admins.
	c.mux.Handle("/admin/", c.requireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, errPageNotFound)
	})))
	return c, nil
}

// Routes lists the registered patterns.
func (c *Console) Routes() []string { return c.routes }

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere: everything comes from /admin/static/.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.mux.ServeHTTP(w, r)
}

// open registers a route that needs no session.
func (c *Console) open(pattern string, f http.HandlerFunc) {
	c.routes = append(c.routes, pattern)
	c.mux.Handle(pattern, noStore(f))
}

// page registers a route for signed-in admins. Every method but GET and
// HEAD must carry the session's CSRF token (form field csrf_token or
// header X-CSRF-Token).
func (c *Console) page(pattern string, f http.HandlerFunc) {
	c.routes = append(c.routes, pattern)
	c.mux.Handle(pattern, noStore(c.requireSession(f)))
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type ctxKey int

const sessionKey ctxKey = iota

// sessionFrom is the signed-in admin of a request that passed
// requireSession.
func sessionFrom(ctx context.Context) auth.Session {
	s, _ := ctx.Value(sessionKey).(auth.Session)
	return s
}

// home sends a signed-in admin to the dashboard.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/admin/dashboard", http.StatusSeeOther)
}
