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
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Tokens is what the API needs of the token broker; *token.Registry is one.
type Tokens interface {
	Token(ctx context.Context, account string) (token.Token, error)
	Status(account string) (token.Status, bool)
}

// APIClients gives the WeChat API client of an account; *token.Registry
// is one.
type APIClients interface {
	Client(account string) (*wechat.Client, bool)
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
	// Followers reads followers, persons and bindings; Binder makes
	// bindings (QR codes, mini-program login); Messages reads the message
	// log; Webhooks manages event endpoints. Routes whose part is nil
	// answer 503 not_configured.
	Followers FollowerReader
	Binder    Binder
	Messages  MessageReader
	Webhooks  Webhooks
	// WebhookEvents sends a delivery again (*webhook.Publisher); nil
	// answers 503 on the redeliver route.
	WebhookEvents WebhookRedeliverer
	// Syncs queues full follower syncs (*follower.SyncJobs).
	Syncs FollowerSyncs
	// Tags manages user tags (*follower.Tags).
	Tags Tagger
	// Media uploads files to WeChat and fetches followers' files
	// (*media.Library); Mass sends mass messages (*mass.Service).
	Media MediaLibrary
	Mass  MassSender
	// Clients call WeChat for the menu routes (*token.Registry).
	Clients APIClients
	// Deliveries and Windows answer the conversation route (*push.Service,
	// *msglog.Windows).
	Deliveries DeliveryReader
	Windows    WindowChecker
	// Push sends messages and keeps the template registry and
	// subscription grants (*push.Service).
	Push Pusher
	// Schedules runs scheduled pushes and keeps follower attributes
	// (*schedule.Service).
	Schedules Schedules
	// Audit records every call (*AuditStore); nil records nothing.
	Audit AuditLog
	// KeyRate limits the requests of each API key per second (KeyBurst at
	// once); 0 means no limit. The gateway uses DefaultKeyRate.
	KeyRate  float64
	KeyBurst int
	// SharedLimits, a PostgreSQL database, holds the key buckets so the
	// rate holds across every instance; nil keeps them in this process.
	SharedLimits *db.DB
}

type handler struct {
	// routes are the patterns registered, in order, so that a test can hold
	// them against the OpenAPI document.
	routes []string
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	limits *auth.KeyLimiter
}

// New returns the handler of every /api/v1/ route; the server mounts it
// with mux.Handle("/api/v1/", api.New(…)).
func New(opts Options) http.Handler {
	_, hd := newHandler(opts)
	return hd
}

func newHandler(opts Options) (*handler, http.Handler) {
	h := &handler{opts: opts, log: opts.Logger, now: opts.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.limits = auth.NewKeyLimiter("api_key", opts.KeyRate, opts.KeyBurst, opts.SharedLimits, h.log)
	need := func(scope auth.Scope, f http.HandlerFunc) http.Handler {
		return opts.Auth.RequireScope(scope, h.writeError)(h.keyed(f))
	}

	mux := http.NewServeMux()
	handle := func(pattern string, hd http.Handler) {
		h.routes = append(h.routes, pattern)
		mux.Handle(pattern, hd)
	}
	// The contract needs no key: clients are generated from it before
	// anyone has one.
	handle("GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI))
	handle("GET /api/v1/accounts", need(auth.ScopeRead, h.listAccounts))
	handle("GET /api/v1/accounts/{name}/token", need(auth.ScopeToken, h.accountToken))

	handle("GET /api/v1/followers", need(auth.ScopeRead, h.listFollowers))
	handle("GET /api/v1/followers/{openid}", need(auth.ScopeRead, h.getFollower))
	handle("POST /api/v1/followers/sync", need(auth.ScopeAdmin, h.startFollowerSync))
	handle("GET /api/v1/followers/sync", need(auth.ScopeRead, h.followerSyncStatus))

	handle("POST /api/v1/bindings/qrcode", need(auth.ScopeSend, h.createBindQRCode))
	handle("GET /api/v1/bindings/qrcode/{ticket}", h.withPollToken(need(auth.ScopeRead, h.bindQRCodeStatus), h.bindQRCodeStatus))
	handle("GET /api/v1/bindings/qrcode/{ticket}/png", h.withPollToken(need(auth.ScopeRead, h.bindQRCodePNG), h.bindQRCodePNG))
	handle("GET /api/v1/bindings", need(auth.ScopeRead, h.listBindings))
	handle("GET /api/v1/bindings/{id}", need(auth.ScopeRead, h.getBinding))
	handle("DELETE /api/v1/bindings/{id}", need(auth.ScopeSend, h.deleteBinding))
	handle("POST /api/v1/miniprogram/login", need(auth.ScopeSend, h.miniProgramLogin))

	handle("GET /api/v1/webhooks", need(auth.ScopeAdmin, h.listWebhooks))
	handle("POST /api/v1/webhooks", need(auth.ScopeAdmin, h.createWebhook))
	handle("GET /api/v1/webhooks/{id}", need(auth.ScopeAdmin, h.getWebhook))
	handle("DELETE /api/v1/webhooks/{id}", need(auth.ScopeAdmin, h.deleteWebhook))
	handle("GET /api/v1/webhooks/{id}/deliveries", need(auth.ScopeAdmin, h.webhookDeliveries))
	handle("POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", need(auth.ScopeAdmin, h.redeliverWebhook))

	handle("POST /api/v1/messages", need(auth.ScopeSend, h.sendMessage))
	handle("GET /api/v1/messages", need(auth.ScopeRead, h.listMessages))
	handle("GET /api/v1/messages/{id}", need(auth.ScopeRead, h.getMessage))
	handle("POST /api/v1/messages/{id}/recipients/{seq}/resend", need(auth.ScopeSend, h.resendRecipient))
	handle("GET /api/v1/templates", need(auth.ScopeRead, h.listTemplates))
	handle("POST /api/v1/templates", need(auth.ScopeAdmin, h.putTemplate))
	handle("POST /api/v1/templates/sync", need(auth.ScopeAdmin, h.syncTemplates))
	handle("POST /api/v1/templates/preview", need(auth.ScopeSend, h.previewTemplate))
	handle("GET /api/v1/templates/aliases", need(auth.ScopeRead, h.listAliases))
	handle("GET /api/v1/templates/aliases/{account}/{alias}", need(auth.ScopeRead, h.getAlias))
	handle("PUT /api/v1/templates/aliases/{account}/{alias}", need(auth.ScopeAdmin, h.putAlias))
	handle("DELETE /api/v1/templates/aliases/{account}/{alias}", need(auth.ScopeAdmin, h.deleteAlias))
	handle("POST /api/v1/subscriptions/grants", need(auth.ScopeSend, h.reportGrants))
	handle("GET /api/v1/subscriptions/grants", need(auth.ScopeRead, h.listGrants))
	handle("GET /api/v1/schedules", need(auth.ScopeRead, h.withSchedules(h.listSchedules)))
	handle("POST /api/v1/schedules", need(auth.ScopeAdmin, h.withSchedules(h.createSchedule)))
	handle("GET /api/v1/schedules/{id}", need(auth.ScopeRead, h.withSchedules(h.getSchedule)))
	handle("PUT /api/v1/schedules/{id}", need(auth.ScopeAdmin, h.withSchedules(h.updateSchedule)))
	handle("DELETE /api/v1/schedules/{id}", need(auth.ScopeAdmin, h.withSchedules(h.deleteSchedule)))
	handle("POST /api/v1/schedules/{id}/pause", need(auth.ScopeAdmin, h.withSchedules(h.pauseSchedule)))
	handle("POST /api/v1/schedules/{id}/resume", need(auth.ScopeAdmin, h.withSchedules(h.resumeSchedule)))
	handle("POST /api/v1/schedules/{id}/run", need(auth.ScopeSend, h.withSchedules(h.runSchedule)))
	handle("POST /api/v1/schedules/{id}/try", need(auth.ScopeSend, h.withSchedules(h.trySchedule)))
	handle("GET /api/v1/schedules/{id}/next", need(auth.ScopeRead, h.withSchedules(h.nextScheduleTimes)))
	handle("GET /api/v1/schedules/{id}/runs", need(auth.ScopeRead, h.withSchedules(h.listScheduleRuns)))
	handle("GET /api/v1/schedules/{id}/runs/{run_id}", need(auth.ScopeRead, h.withSchedules(h.getScheduleRun)))
	handle("GET /api/v1/followers/{openid}/attributes", need(auth.ScopeRead, h.withSchedules(h.followerAttributes)))
	handle("PUT /api/v1/followers/{openid}/attributes", need(auth.ScopeAdmin, h.withSchedules(h.putFollowerAttributes)))
	handle("PATCH /api/v1/followers/{openid}/attributes", need(auth.ScopeAdmin, h.withSchedules(h.putFollowerAttributes)))
	handle("GET /api/v1/audit", need(auth.ScopeAdmin, h.listAudit))
	handle("POST /api/v1/followers/{openid}/typing", need(auth.ScopeSend, h.followerTyping))
	handle("GET /api/v1/followers/{openid}/conversation", need(auth.ScopeRead, h.followerConversation))
	handle("GET /api/v1/menus", need(auth.ScopeRead, h.getMenu))
	handle("PUT /api/v1/menus", need(auth.ScopeAdmin, h.putMenu))
	handle("DELETE /api/v1/menus", need(auth.ScopeAdmin, h.deleteMenu))
	handle("GET /api/v1/menus/match", need(auth.ScopeRead, h.matchMenu))
	handle("GET /api/v1/tags", need(auth.ScopeRead, h.listTags))
	handle("POST /api/v1/tags", need(auth.ScopeAdmin, h.createTag))
	handle("PUT /api/v1/tags/{id}", need(auth.ScopeAdmin, h.renameTag))
	handle("DELETE /api/v1/tags/{id}", need(auth.ScopeAdmin, h.deleteTag))
	handle("POST /api/v1/tags/{id}/members", need(auth.ScopeAdmin, h.changeTagMembers))
	handle("POST /api/v1/media", need(auth.ScopeAdmin, h.withMedia(h.uploadMedia)))
	handle("GET /api/v1/media", need(auth.ScopeRead, h.withMedia(h.listMedia)))
	handle("DELETE /api/v1/media/{media_id}", need(auth.ScopeAdmin, h.withMedia(h.deleteMedia)))
	handle("POST /api/v1/media/downloads", need(auth.ScopeSend, h.withMedia(h.fetchMedia)))
	handle("GET /api/v1/media/downloads/{media_id}", need(auth.ScopeRead, h.withMedia(h.downloadedMedia)))
	handle("POST /api/v1/mass", need(auth.ScopeSend, h.withMass(h.sendMass)))
	handle("GET /api/v1/mass", need(auth.ScopeRead, h.withMass(h.listMass)))
	handle("POST /api/v1/mass/preview", need(auth.ScopeSend, h.withMass(h.previewMass)))
	handle("GET /api/v1/mass/quota", need(auth.ScopeRead, h.withMass(h.massQuota)))
	handle("GET /api/v1/mass/{id}", need(auth.ScopeRead, h.withMass(h.getMass)))
	handle("DELETE /api/v1/mass/{id}", need(auth.ScopeAdmin, h.withMass(h.deleteMass)))
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, errNotFound("no such API route: "+r.Method+" "+r.URL.Path+" — 接口不存在"))
	})
	return h, h.audited(mux)
}
