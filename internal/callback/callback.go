// Package callback is the http.Handler WeChat calls at /wx/{account}: it
// verifies and decrypts each push, records it in the message log (which
// de-duplicates WeChat's retries), answers it by the auto-reply rules and
// runs the domain hooks (followers), always within the reply deadline.
package callback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// MessageLog records pushes and recognises retries (msglog.Store).
type MessageLog interface {
	// Begin queues the push and returns at once; the handler waits on the
	// result only until its deadline.
	Begin(ctx context.Context, e msglog.Entry) *msglog.Pending
	SetOutcome(ctx context.Context, account, dedupKey string, status msglog.Status, replyBody []byte) error
}

// arrivals is a message log that is told of the pushes on their way to
// Begin (msglog.Store.Expect), so its writer need not wait for others.
type arrivals interface {
	Expect()
	Arrived()
}

func (h *Handler) expect() {
	if h.arrivals != nil {
		h.arrivals.Expect()
	}
}

func (h *Handler) arrived() {
	if h.arrivals != nil {
		h.arrivals.Arrived()
	}
}

// Replier picks the passive reply for a push, or nil for none (reply.Store).
// It answers from memory: it is called on every push.
type Replier interface {
	Reply(account string, m *wechat.Message) wechat.Reply
}

// FollowerEvents applies subscribe, unsubscribe and SCAN (follower.Store).
type FollowerEvents interface {
	ApplyEvent(ctx context.Context, account string, m *wechat.Message) error
}

// Responder answers a push itself, instead of the reply rules, when the
// push is its business (handled true; a nil reply then answers "success").
// It runs on the request's goroutine before the push is logged, within
// part of the reply deadline (its ctx carries that deadline), so WeChat's
// retries reach it again: it must be idempotent. What the first delivery
// answered is what every retry gets. An error falls back to the rules.
type Responder func(ctx context.Context, account string, m *wechat.Message) (reply wechat.Reply, handled bool, err error)

// Hook is extra work for new (non-duplicate) pushes, run after the
// built-in ones. A hook that outlives the reply deadline keeps running in
// the background; the push is then answered "success" and logged deferred.
type Hook struct {
	// Wants tells, on the request's goroutine and without I/O, whether the
	// hook has anything to do with m; nil means every push. Most hooks care
	// about a few events only, and a push no hook wants is answered
	// without starting the goroutine the hooks run on.
	Wants func(m *wechat.Message) bool
	// Run does the work.
	Run func(ctx context.Context, account string, m *wechat.Message) error
}

func (k Hook) wants(m *wechat.Message) bool { return k.Wants == nil || k.Wants(m) }

// Options builds a Handler. Log is required; the rest may be left out.
type Options struct {
	Accounts []config.Account
	Settings config.CallbackConfig
	Log      MessageLog
	Replies  Replier
	// Responder, when set, is asked first (e.g. the scan of a binding QR
	// code, answered with its confirmation).
	Responder Responder
	Followers FollowerEvents
	// Profiles, when set, is asked to fetch the profile of each new
	// subscriber (user/info), through the queue.
	Profiles follower.ProfileFetcher
	Hooks    []Hook
	Logger   *slog.Logger
	// Now is the protocol clock: timestamp window, reply CreateTime,
	// received_at. Defaults to time.Now.
	Now        func() time.Time
	Registerer prometheus.Registerer
	// BackgroundTimeout bounds the work that continues after the deadline
	// (default 1 minute).
	BackgroundTimeout time.Duration
}

// Defaults for settings left at zero.
const (
	defaultTimestampWindow   = 5 * time.Minute
	defaultMaxBodyBytes      = 256 << 10
	defaultReplyDeadline     = 4 * time.Second
	defaultBackgroundTimeout = time.Minute
)

// account is one configured account, ready to serve.
type account struct {
	cfg     config.Account
	mode    config.MessageMode
	crypter *wechat.Crypter // nil in plaintext mode without a key
}

// Handler serves GET (URL verification) and POST (pushes) at /wx/{account}.
type Handler struct {
	accounts map[string]*account
	window   time.Duration
	maxBody  int64
	deadline time.Duration
	bgTime   time.Duration

	log       MessageLog
	arrivals  arrivals // log, when it counts arrivals
	replies   Replier
	responder Responder
	followers FollowerEvents
	profiles  follower.ProfileFetcher
	hooks     []Hook
	logger    *slog.Logger
	now       func() time.Time
	metrics   *metrics
	mux       *http.ServeMux

	// Background work (hooks, and pushes that outlived their deadline) is
	// tracked so shutdown can wait for it.
	wg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New builds the handler. It fails on an account whose encryption mode
// cannot work (no or a broken EncodingAESKey).
func New(opts Options) (*Handler, error) {
	if opts.Log == nil {
		return nil, errors.New("callback: a message log is required")
	}
	h := &Handler{
		accounts:  make(map[string]*account, len(opts.Accounts)),
		window:    opts.Settings.TimestampWindow,
		maxBody:   opts.Settings.MaxBodyBytes,
		deadline:  opts.Settings.ReplyDeadline,
		bgTime:    opts.BackgroundTimeout,
		log:       opts.Log,
		replies:   opts.Replies,
		responder: opts.Responder,
		followers: opts.Followers,
		profiles:  opts.Profiles,
		hooks:     opts.Hooks,
		logger:    opts.Logger,
		now:       opts.Now,
	}
	h.arrivals, _ = opts.Log.(arrivals)
	if h.window <= 0 {
		h.window = defaultTimestampWindow
	}
	if h.maxBody <= 0 {
		h.maxBody = defaultMaxBodyBytes
	}
	if h.deadline <= 0 {
		h.deadline = defaultReplyDeadline
	}
	if h.bgTime <= 0 {
		h.bgTime = defaultBackgroundTimeout
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	for _, cfg := range opts.Accounts {
		a := &account{cfg: cfg, mode: cfg.MessageMode}
		if a.mode == "" {
			a.mode = config.ModePlaintext
		}
		if a.mode != config.ModePlaintext || cfg.EncodingAESKey != "" {
			c, err := wechat.NewCrypter(cfg.AppID, cfg.EncodingAESKey, cfg.PreviousEncodingAESKey)
			if err != nil {
				return nil, fmt.Errorf("callback: account %q: %w", cfg.Name, err)
			}
			a.crypter = c
		}
		h.accounts[cfg.Name] = a
	}
	h.metrics = newMetrics(opts.Registerer)
	for name := range h.accounts {
		h.metrics.initAccount(name)
	}
	h.bgCtx, h.bgCancel = context.WithCancel(context.Background())

	h.mux = http.NewServeMux()
	h.Register(h.mux)
	return h, nil
}

// Register adds GET and POST /wx/{account} to mux, so a server routes
// callbacks with its own mux instead of through ServeHTTP's.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /wx/{account}", h.verify)
	mux.HandleFunc("POST /wx/{account}", h.receive)
}

// ServeHTTP routes GET and POST /wx/{account}; other methods get 405.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Wait blocks until the background work of every push has finished, or ctx
// ends; then the work still running is cancelled and ctx's error returned.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.bgCancel()
		return ctx.Err()
	}
}

func (h *Handler) lookup(r *http.Request) (*account, *problem.Error) {
	a, ok := h.accounts[r.PathValue("account")]
	if !ok {
		return nil, errUnknownAccount
	}
	return a, nil
}

// verify answers WeChat's URL verification: the raw echostr when the
// signature matches, nothing of it otherwise.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a, e := h.lookup(r)
	if e == nil {
		e = checkVerification(a, r)
	}
	if e != nil {
		h.refuse(w, r, a, e, start)
		return
	}
	echostr := r.URL.Query().Get("echostr")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(echostr))
	h.metrics.observe(a.cfg.Name, outcomeVerified, start)
	h.logger.Info("callback URL verified", "account", a.cfg.Name)
}

func checkVerification(a *account, r *http.Request) *problem.Error {
	q := r.URL.Query()
	signature := q.Get("signature")
	if signature == "" || q.Get("timestamp") == "" {
		return errMissingSignature
	}
	if !wechat.VerifySignature(a.cfg.Token, q.Get("timestamp"), q.Get("nonce"), signature) {
		return errInvalidSignature
	}
	if q.Get("echostr") == "" {
		return errMissingEchostr
	}
	return nil
}

// refuse answers a refused request. Nothing has been stored for it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, a *account, e *problem.Error, start time.Time) {
	name := unknownAccountLabel
	if a != nil {
		name = a.cfg.Name
	}
	writeError(w, e)
	h.metrics.observe(name, e.Code, start)
	h.logger.Warn("callback refused", "account", name, "method", r.Method, "code", e.Code, "status", e.Status(), "remote", r.RemoteAddr)
}
