package token

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Registry holds the brokers and API clients of every account of a
// gateway process.
type Registry struct {
	db   *db.DB
	opts Options

	mu      sync.RWMutex
	brokers map[string]*Broker
	clients map[string]*wechat.Client
}

// NewRegistry returns an empty registry; add accounts with Add or AddAccount.
func NewRegistry(d *db.DB, opts Options) *Registry {
	if opts.InstanceID == "" {
		opts.InstanceID = defaultInstanceID()
	}
	return &Registry{db: d, opts: opts, brokers: map[string]*Broker{}, clients: map[string]*wechat.Client{}}
}

// Add registers an account whose tokens come from client (token and
// stable_token need no token source). Client(cfg.Account) then returns
// client wired to the account's broker.
func (r *Registry) Add(cfg Config, client *wechat.Client) (*Broker, error) {
	b, err := New(r.db, client, cfg, r.opts)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.brokers[cfg.Account]; dup {
		return nil, fmt.Errorf("token: account %q registered twice", cfg.Account)
	}
	r.brokers[cfg.Account] = b
	r.clients[cfg.Account] = client.WithTokenSource(b)
	return b, nil
}

// AccountOptions tune AddAccount.
type AccountOptions struct {
	// Mode is the token mode (until the config has a token_mode key);
	// empty means stable.
	Mode Mode
	// RefreshMargin; zero means DefaultRefreshMargin.
	RefreshMargin time.Duration
	// HTTPClient for WeChat's API; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// FailoverCooldown for the account's API domains; zero means the default.
	FailoverCooldown time.Duration
}

// AddAccount builds the API client of a configured account (its
// api_base_urls, in order) and registers its broker.
func (r *Registry) AddAccount(a config.Account, o AccountOptions) (*Broker, error) {
	log := r.opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := wechat.NewClient(wechat.ClientOptions{
		BaseURLs:         a.APIBaseURLs,
		HTTPClient:       o.HTTPClient,
		Logger:           log.With(slog.String("account", a.Name)),
		Now:              r.opts.Now,
		FailoverCooldown: o.FailoverCooldown,
	})
	return r.Add(Config{
		Account: a.Name, AppID: a.AppID, AppSecret: a.AppSecret,
		Mode: o.Mode, RefreshMargin: o.RefreshMargin,
	}, client)
}

// Broker returns the broker of an account.
func (r *Registry) Broker(account string) (*Broker, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.brokers[account]
	return b, ok
}

// Client returns the account's API client, which takes its tokens from the
// account's broker and refreshes them on 40001/40014/42001.
func (r *Registry) Client(account string) (*wechat.Client, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.clients[account]
	return c, ok
}

// Accounts lists the registered account names, sorted.
func (r *Registry) Accounts() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.brokers))
	for n := range r.brokers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Token returns the current token of an account, fetching it if needed;
// `wxgate token` prints it.
func (r *Registry) Token(ctx context.Context, account string) (Token, error) {
	b, ok := r.Broker(account)
	if !ok {
		return Token{}, config.UnknownAccount(account)
	}
	return b.Current(ctx)
}

// Run runs every broker's background refresh until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	r.mu.RLock()
	brokers := make([]*Broker, 0, len(r.brokers))
	for _, b := range r.brokers {
		brokers = append(brokers, b)
	}
	r.mu.RUnlock()
	var wg sync.WaitGroup
	for _, b := range brokers {
		wg.Go(func() { b.Run(ctx) })
	}
	wg.Wait()
}

// Status reports an account's broker state (never the token).
func (r *Registry) Status(account string) (Status, bool) {
	b, ok := r.Broker(account)
	if !ok {
		return Status{}, false
	}
	return b.Status(), true
}

// History reads an account's refresh history; ok is false for an account
// without a broker (no AppSecret).
func (r *Registry) History(ctx context.Context, account string) (h History, ok bool, err error) {
	b, found := r.Broker(account)
	if !found {
		return History{}, false, nil
	}
	h, err = b.History(ctx)
	return h, err == nil, err
}
