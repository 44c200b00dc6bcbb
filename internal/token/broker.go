package token

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Mode selects WeChat's token endpoint.
type Mode string

const (
	// ModeStable uses POST /cgi-bin/stable_token (the default).
	ModeStable Mode = "stable"
	// ModeClassic uses GET /cgi-bin/token.
	ModeClassic Mode = "classic"
)

// ParseMode reads a token_mode setting; "" is stable.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeStable:
		return ModeStable, nil
	case ModeClassic:
		return ModeClassic, nil
	}
	return "", fmt.Errorf("token mode must be stable or classic, got %q — token_mode 只能是 stable 或 classic", s)
}

// Defaults and WeChat's limits.
const (
	DefaultRefreshMargin = 4 * time.Minute
	// MaxStableRefreshMargin caps the margin in stable mode: WeChat rotates
	// a stable token only in its last 5 minutes.
	MaxStableRefreshMargin = 4*time.Minute + 30*time.Second
	DefaultLeaseTTL        = 30 * time.Second
	DefaultFreshWindow     = time.Minute
	ForceRefreshPerDay     = 20
	ForceRefreshSpacing    = 30 * time.Second

	// minValidity: a token with less left is not handed out from memory.
	minValidity = 10 * time.Second
	// stableRetry: the wait before asking again when WeChat handed back
	// the same stable token (not yet in its rotation window).
	stableRetry = 15 * time.Second
	// maxCheck: the loop re-reads the row at least this often.
	maxCheck         = time.Minute
	firstRetryDelay  = 5 * time.Second
	maxRetryDelay    = time.Minute
	firstPollBackoff = 10 * time.Millisecond
	maxPollBackoff   = 250 * time.Millisecond
)

// Fetcher gets tokens from WeChat; *wechat.Client is one.
type Fetcher interface {
	GetToken(ctx context.Context, appID, appSecret string) (wechat.AccessToken, error)
	GetStableToken(ctx context.Context, appID, appSecret string, forceRefresh bool) (wechat.AccessToken, error)
}

// Config describes the account a Broker serves.
type Config struct {
	Account   string
	AppID     string
	AppSecret string
	// Mode is ModeStable when empty.
	Mode Mode
	// RefreshMargin is how long before expiry the background loop
	// refreshes; DefaultRefreshMargin when zero, capped at
	// MaxStableRefreshMargin in stable mode.
	RefreshMargin time.Duration
	// LeaseTTL bounds how long an instance may hold the refresh lease; it
	// must exceed a token call's HTTP timeout. DefaultLeaseTTL when zero.
	LeaseTTL time.Duration
	// FreshWindow: a token fetched in answer to a rejection and rejected
	// again within this window opens the circuit breaker. DefaultFreshWindow when zero.
	FreshWindow time.Duration
}

// Options are shared by the brokers of one process.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// InstanceID names this process as the holder of the refresh lease; a random id when empty.
	InstanceID string
	// Metrics counts fetches; nil counts nothing.
	Metrics *Metrics
}

// Token is an access_token with its expiry.
type Token struct {
	Value     string
	ExpiresAt time.Time
	FetchedAt time.Time
	// Version grows by one with every new token value of the account.
	Version int64
}

// ExpiresIn is the time left at now.
func (t Token) ExpiresIn(now time.Time) time.Duration { return t.ExpiresAt.Sub(now) }

// origin says how the token in memory came to be, for the escalation of
// repeated rejections.
type origin int

const (
	originNormal      origin = iota // scheduled, first fetch, or read from the database
	originReplaced                  // fetched after a rejection: a different token
	originReconfirmed               // stable: fetched after a rejection, WeChat handed back the same token
	originForced                    // stable: force_refresh after the reconfirmed token was rejected
)

type current struct {
	Token
	origin origin
}

// Broker hands out one account's access_token. It implements
// wechat.TokenSource.
type Broker struct {
	cfg     Config
	margin  time.Duration
	fetch   Fetcher
	st      store
	log     *slog.Logger
	now     func() time.Time
	holder  string
	metrics *Metrics

	cur atomic.Pointer[current]
	sf  singleflight.Group
	brk breaker

	mu         sync.Mutex
	retryDelay time.Duration // background backoff after a failed refresh

	// onWait, when set (tests), is called each time the lease is found taken.
	onWait func()
}

var _ wechat.TokenSource = (*Broker)(nil)

// New returns the broker of one account. It does not fetch anything; the
// first Token call or Run does.
func New(d *db.DB, fetch Fetcher, cfg Config, opts Options) (*Broker, error) {
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return nil, err
	}
	cfg.Mode = mode
	if cfg.AppID == "" || cfg.AppSecret == "" {
		return nil, fmt.Errorf("token: account %q needs an app_id and an app_secret", cfg.Account)
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = DefaultRefreshMargin
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.FreshWindow <= 0 {
		cfg.FreshWindow = DefaultFreshWindow
	}
	margin := cfg.RefreshMargin
	if mode == ModeStable && margin > MaxStableRefreshMargin {
		margin = MaxStableRefreshMargin
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InstanceID == "" {
		opts.InstanceID = defaultInstanceID()
	}
	opts.Metrics.Init(cfg.Account)
	return &Broker{
		cfg:     cfg,
		margin:  margin,
		fetch:   fetch,
		st:      store{db: d, appID: cfg.AppID, mode: mode, account: cfg.Account},
		log:     opts.Logger.With(slog.String("account", cfg.Account), slog.String("app_id", cfg.AppID), slog.String("token_mode", string(mode))),
		now:     opts.Now,
		holder:  opts.InstanceID,
		metrics: opts.Metrics,
	}, nil
}

func defaultInstanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Account is the name of the account.
func (b *Broker) Account() string { return b.cfg.Account }

// Mode is the token mode in use.
func (b *Broker) Mode() Mode { return b.cfg.Mode }

// AppID is the account's AppID.
func (b *Broker) AppID() string { return b.cfg.AppID }

// AppSecret is the account's AppSecret, for the WeChat calls that carry
// it instead of a token (jscode2session, the web sign-in's
// oauth2/access_token). Never log it.
func (b *Broker) AppSecret() string { return b.cfg.AppSecret }

// Token returns a valid access_token: from memory in the common case,
// after loading or refreshing it when memory has none with at least 10 s left.
func (b *Broker) Token(ctx context.Context) (string, error) {
	if c := b.cur.Load(); c != nil && b.now().Before(c.ExpiresAt.Add(-minValidity)) {
		return c.Value, nil
	}
	t, err := b.Current(ctx)
	return t.Value, err
}

// Current returns the token with its expiry and version.
func (b *Broker) Current(ctx context.Context) (Token, error) {
	if c := b.cur.Load(); c != nil && b.now().Before(c.ExpiresAt.Add(-minValidity)) {
		return c.Token, nil
	}
	c, err := b.refresh(ctx, "", false)
	if err != nil {
		return Token{}, err
	}
	return c.Token, nil
}

// Invalidate reports that WeChat rejected failedToken (40001, 40014,
// 42001). It replaces the token only if failedToken is still the current
// one; a caller then gets the replacement from Token.
func (b *Broker) Invalidate(ctx context.Context, failedToken string) error {
	c := b.cur.Load()
	if c != nil && c.Value != failedToken {
		return nil // already replaced
	}
	now := b.now()
	force := false
	if c != nil && c.origin != originNormal && now.Sub(c.FetchedAt) < b.cfg.FreshWindow {
		if c.origin == originReconfirmed && b.cfg.Mode == ModeStable {
			// WeChat rejected the token, then handed it back as current,
			// and rejects it again: only force_refresh gets a new one.
			force = true
		} else {
			return b.brk.open(now, b.cfg.Account, &FreshTokenRejectedError{
				Account: b.cfg.Account, Version: c.Version, Age: now.Sub(c.FetchedAt)})
		}
	}
	b.log.LogAttrs(ctx, slog.LevelInfo, "token: WeChat rejected the access_token, replacing it",
		slog.Int64("version", versionOf(c)), slog.Bool("force_refresh", force))
	_, err := b.refresh(ctx, failedToken, force)
	return err
}

func versionOf(c *current) int64 {
	if c == nil {
		return 0
	}
	return c.Version
}

// refresh coalesces concurrent refreshes of this instance: one per failed
// token (or one for "no usable token"). The shared work runs detached
// from the first caller's cancellation, bounded by the lease TTL; each
// caller stops waiting when its own context ends.
func (b *Broker) refresh(ctx context.Context, failed string, force bool) (*current, error) {
	key := "due"
	if failed != "" {
		key = "rejected:" + failed
	}
	ch := b.sf.DoChan(key, func() (any, error) {
		work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*b.cfg.LeaseTTL)
		defer cancel()
		return b.sync(work, failed, force)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*current), nil
	}
}

// usable reports whether the row's token can be served without asking
// WeChat: present, not the rejected one, and not due.
func (b *Broker) usable(r *row, failed string, now time.Time) bool {
	return r.Token != "" && r.Token != failed && now.Before(r.ExpiresAt.Add(-b.margin))
}

// sync brings this instance a usable token: from the database when one
// is there, else by taking the lease and fetching, else by waiting for the
// instance holding the lease.
func (b *Broker) sync(ctx context.Context, failed string, force bool) (*current, error) {
	r, err := b.st.load(ctx)
	if err != nil {
		return nil, err
	}
	if b.usable(r, failed, b.now()) {
		return b.adopt(r), nil
	}
	if err := b.brk.check(b.now(), b.cfg.Account); err != nil {
		if c := b.cur.Load(); failed == "" && c != nil && b.now().Before(c.ExpiresAt.Add(-minValidity)) {
			return c, nil // keep serving a valid token while refreshes are paused
		}
		return nil, err
	}
	// Another instance's fetch just failed for a reason retrying cannot
	// fix: pause too, rather than repeat the call.
	if r.LastError != "" && opensBreakerCode(r.LastErrcode) && b.now().Sub(r.LastErrorAt) < breakerFirstPause {
		return nil, b.brk.openUntil(r.LastErrorAt.Add(breakerFirstPause), b.cfg.Account,
			&RefreshError{Account: b.cfg.Account, Code: r.LastErrcode, Msg: r.LastError, Remote: true})
	}
	seenErrAt, seenErr := r.LastErrorAt, r.LastError
	backoff := firstPollBackoff
	for {
		got, err := b.st.acquire(ctx, b.holder, b.now(), b.cfg.LeaseTTL)
		if err != nil {
			return nil, err
		}
		if got {
			return b.fetchUnderLease(ctx, failed, force)
		}
		// Another instance is refreshing: wait for its row.
		if b.onWait != nil {
			b.onWait()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("token: waiting for another instance to refresh the token of %s: %w", b.cfg.Account, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*3/2, maxPollBackoff)
		if r, err = b.st.load(ctx); err != nil {
			return nil, err
		}
		if b.usable(r, failed, b.now()) {
			return b.adopt(r), nil
		}
		if r.LastError != "" && (!r.LastErrorAt.Equal(seenErrAt) || r.LastError != seenErr) {
			free, err := b.st.leaseFree(ctx, b.now())
			if err != nil {
				return nil, err
			}
			if !free {
				continue
			}
			rerr := &RefreshError{Account: b.cfg.Account, Code: r.LastErrcode, Msg: r.LastError, Remote: true}
			if opensBreakerCode(r.LastErrcode) {
				return nil, b.brk.open(b.now(), b.cfg.Account, rerr)
			}
			return nil, rerr
		}
	}
}

// fetchUnderLease runs with the lease held: check the row once more, call
// WeChat, store the token and release the lease.
func (b *Broker) fetchUnderLease(ctx context.Context, failed string, force bool) (*current, error) {
	r, err := b.st.load(ctx)
	if err != nil {
		b.releaseQuietly(ctx, "", 0)
		return nil, err
	}
	start := b.now()
	if b.usable(r, failed, start) {
		b.releaseQuietly(ctx, "", 0)
		return b.adopt(r), nil
	}

	forceDay, forceCount, lastForce := r.ForceDay, r.ForceCount, r.LastForceAt
	today := wechat.QuotaDay(start)
	if forceDay != today {
		forceDay, forceCount = today, 0
	}
	if force {
		if err := checkForceBudget(b.cfg.Account, forceCount, lastForce, start); err != nil {
			b.releaseQuietly(ctx, err.Error(), 0)
			return nil, err
		}
	}

	// The call must end well inside the lease, or another instance could
	// take the lease over and call WeChat too.
	fetchCtx, cancel := context.WithTimeout(ctx, b.cfg.LeaseTTL*3/4)
	var at wechat.AccessToken
	switch {
	case b.cfg.Mode == ModeClassic:
		at, err = b.fetch.GetToken(fetchCtx, b.cfg.AppID, b.cfg.AppSecret)
	default:
		at, err = b.fetch.GetStableToken(fetchCtx, b.cfg.AppID, b.cfg.AppSecret, force)
	}
	cancel()
	if err != nil {
		code := 0
		var apiErr *wechat.APIError
		if errors.As(err, &apiErr) {
			code = apiErr.Code
		}
		if lerr := b.st.logFetch(ctx, b.st.db, start, false, force, code); lerr != nil {
			b.log.LogAttrs(ctx, slog.LevelWarn, "token: logging the failed fetch", slog.String("error", lerr.Error()))
		}
		b.metrics.fetched(b.cfg.Account, false)
		b.releaseQuietly(ctx, err.Error(), code)
		b.log.LogAttrs(ctx, slog.LevelWarn, "token: fetching the access_token failed", slog.String("error", err.Error()))
		if opensBreaker(err) {
			return nil, b.brk.open(b.now(), b.cfg.Account, err)
		}
		return nil, &RefreshError{Account: b.cfg.Account, Code: code, Msg: err.Error(), Err: err}
	}
	if force {
		forceCount++
		lastForce = start
	}

	o := originNormal
	switch {
	case force:
		o = originForced
	case failed != "" && at.Token == failed:
		o = originReconfirmed
	case failed != "":
		o = originReplaced
	}
	expires := start.Add(at.ExpiresIn)
	version, ok, err := b.st.save(ctx, b.holder, saved{
		Token: at.Token, ExpiresAt: expires, FetchedAt: start,
		ForceDay: forceDay, ForceCount: forceCount, LastForceAt: lastForce, Forced: force,
	})
	if err != nil {
		return nil, err
	}
	b.metrics.fetched(b.cfg.Account, true)
	if !ok {
		// The lease expired while WeChat answered and another instance
		// took it. Our token is valid; serve it until the row has a newer one.
		b.log.LogAttrs(ctx, slog.LevelWarn, "token: refresh lease lost before saving; the token was not stored")
		version = r.Version
	}
	c := &current{Token: Token{Value: at.Token, ExpiresAt: expires, FetchedAt: start, Version: version}, origin: o}
	b.cur.Store(c)
	if failed == "" {
		b.brk.reset()
	}
	b.log.LogAttrs(ctx, slog.LevelInfo, "token: new access_token",
		slog.Int64("version", version), slog.Time("expires_at", expires), slog.Bool("force_refresh", force),
		slog.Bool("same_as_before", at.Token == r.Token))
	return c, nil
}

func (b *Broker) releaseQuietly(ctx context.Context, errText string, code int) {
	if err := b.st.release(ctx, b.holder, b.now(), errText, code); err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "token: releasing the refresh lease failed", slog.String("error", err.Error()))
	}
}

// adopt serves the row's token from memory, unless memory already has
// the same or a newer one.
func (b *Broker) adopt(r *row) *current {
	for {
		old := b.cur.Load()
		if old != nil && old.Value == r.Token {
			if old.ExpiresAt.Equal(r.ExpiresAt) {
				return old
			}
			// Same token, corrected expiry (a stable token asked for early).
			c := &current{Token: Token{Value: r.Token, ExpiresAt: r.ExpiresAt, FetchedAt: old.FetchedAt, Version: r.Version}, origin: old.origin}
			if b.cur.CompareAndSwap(old, c) {
				return c
			}
			continue
		}
		if old != nil && old.Version > r.Version {
			return old
		}
		c := &current{Token: Token{Value: r.Token, ExpiresAt: r.ExpiresAt, FetchedAt: r.FetchedAt, Version: r.Version}}
		if b.cur.CompareAndSwap(old, c) {
			return c
		}
	}
}

// RefreshIfDue is one step of the background loop: pick up a token
// another instance stored, refresh when the margin is reached, and say
// how long to wait before the next step.
func (b *Broker) RefreshIfDue(ctx context.Context) (time.Duration, error) {
	r, err := b.st.load(ctx)
	if err != nil {
		return b.failed(), err
	}
	now := b.now()
	if r.Token != "" && now.Before(r.ExpiresAt.Add(-minValidity)) {
		b.adopt(r)
	}
	if c := b.cur.Load(); c != nil && now.Before(c.ExpiresAt.Add(-b.margin)) {
		b.succeeded()
		return min(c.ExpiresAt.Add(-b.margin).Sub(now), maxCheck), nil
	}
	if err := b.brk.check(now, b.cfg.Account); err != nil {
		var open *BreakerOpenError
		errors.As(err, &open)
		return max(open.Until.Sub(now), firstRetryDelay), err
	}
	c, err := b.refresh(ctx, "", false)
	if err != nil {
		return b.failed(), err
	}
	b.succeeded()
	now = b.now()
	due := c.ExpiresAt.Add(-b.margin)
	if !now.Before(due) {
		// WeChat handed back the same stable token: not in its rotation
		// window yet by WeChat's clock.
		return stableRetry, nil
	}
	return min(due.Sub(now), maxCheck), nil
}

func (b *Broker) failed() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retryDelay == 0 {
		b.retryDelay = firstRetryDelay
	} else {
		b.retryDelay = min(2*b.retryDelay, maxRetryDelay)
	}
	return b.retryDelay
}

func (b *Broker) succeeded() {
	b.mu.Lock()
	b.retryDelay = 0
	b.mu.Unlock()
}

// Run refreshes the token in the background until ctx ends.
func (b *Broker) Run(ctx context.Context) {
	for {
		wait, err := b.RefreshIfDue(ctx)
		if err != nil && ctx.Err() == nil {
			b.log.LogAttrs(ctx, slog.LevelWarn, "token: background refresh failed",
				slog.String("error", err.Error()), slog.Duration("retry_in", wait))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Status describes the broker for the API and the admin UI; it never
// contains the token.
type Status struct {
	Account   string    `json:"account"`
	AppID     string    `json:"app_id"`
	Mode      Mode      `json:"token_mode"`
	Version   int64     `json:"version"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// PausedUntil and PausedBecause are set while the circuit breaker is open.
	PausedUntil   time.Time `json:"paused_until,omitzero"`
	PausedBecause string    `json:"paused_because,omitempty"`
}

// Status reports the token in memory and the breaker.
func (b *Broker) Status() Status {
	s := Status{Account: b.cfg.Account, AppID: b.cfg.AppID, Mode: b.cfg.Mode}
	if c := b.cur.Load(); c != nil {
		s.Version, s.ExpiresAt = c.Version, c.ExpiresAt
	}
	if until, reason := b.brk.state(b.now()); reason != nil {
		s.PausedUntil, s.PausedBecause = until, reason.Error()
	}
	return s
}

func checkForceBudget(account string, usedToday int, last, now time.Time) error {
	if usedToday >= ForceRefreshPerDay {
		return &ForceRefreshError{Account: account, Reason: fmt.Sprintf("the %d force refreshes of today (Beijing time) are used up", ForceRefreshPerDay)}
	}
	if !last.IsZero() && now.Sub(last) < ForceRefreshSpacing {
		return &ForceRefreshError{Account: account, Reason: fmt.Sprintf("the previous force refresh was %s ago, WeChat needs %s between two",
			now.Sub(last).Round(time.Second), ForceRefreshSpacing)}
	}
	return nil
}

// History is what the shared tokens row tells of an account's refreshes,
// for the console: across every instance, never the token itself.
type History struct {
	// Refreshes counts the tokens fetched from WeChat so far (the row's
	// version).
	Refreshes int64
	// LastRefreshAt is when the current token was fetched.
	LastRefreshAt time.Time
	// ForceRefreshesToday counts today's (Beijing) force_refresh calls, of
	// ForceRefreshPerDay.
	ForceRefreshesToday int
	// Fetches24h and Fetches7d count the calls to WeChat's token
	// endpoint in the last 24 hours and 7 days, by outcome.
	Fetches24h, Fetches7d FetchCounts
	// LastError, LastErrcode and LastErrorAt describe the last failed
	// refresh; empty after a success.
	LastError   string
	LastErrcode int
	LastErrorAt time.Time
}

// History reads the broker's row.
func (b *Broker) History(ctx context.Context) (History, error) {
	r, err := b.st.load(ctx)
	if err != nil {
		return History{}, err
	}
	h := History{Refreshes: r.Version, LastRefreshAt: r.FetchedAt, LastError: r.LastError,
		LastErrcode: r.LastErrcode, LastErrorAt: r.LastErrorAt}
	now := b.now()
	if h.Fetches24h, err = b.st.fetchCounts(ctx, now.Add(-24*time.Hour)); err != nil {
		return History{}, err
	}
	if h.Fetches7d, err = b.st.fetchCounts(ctx, now.Add(-7*24*time.Hour)); err != nil {
		return History{}, err
	}
	if r.ForceDay == wechat.QuotaDay(b.now()) {
		h.ForceRefreshesToday = r.ForceCount
	}
	return h, nil
}
