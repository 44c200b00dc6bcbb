// Package push sends messages to people on WeChat and follows them to the
// delivery receipt: the template registry and its value rules, send
// requests with their recipients (resolved from openids, unionids and
// external ids), the River job and worker that call WeChat, receipts and
// subscription grants from the callback, and the webhooks they raise.
//
// Data path: Send validates a request, resolves its recipients, and writes
// the message, one row per recipient and one River job per queued
// recipient in one transaction. The worker sends one recipient with a
// client_msg_id derived from its row and classifies WeChat's answer:
// sent; retried with backoff (-1, 5xx, timeouts, token errors the client
// could not fix with its one refresh); snoozed until the quota resets
// (45009, Beijing midnight); failed for good (40003, 40037, 43004, 43101,
// 47003 …). The callback hook turns a sent row into delivered, blocked or
// failed when the receipt arrives, and records subscription grants. A
// periodic sweep ends, as unconfirmed, the sent rows whose receipt has not
// come within ReceiptTimeout; a late receipt still upgrades them.
package push

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Clients hands out each account's API client; *token.Registry is one.
type Clients interface {
	Client(account string) (*wechat.Client, bool)
}

// JobInserter writes River jobs inside a transaction; *queue.Queue is one.
type JobInserter interface {
	InsertManyTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Queue is the River queue of send jobs, apart from the other jobs so
// that a large send does not hold them up.
const Queue = "push"

// QueueWorkers is a sensible number of concurrent sends per process: a
// send waits on WeChat most of its time.
const QueueWorkers = 50

// Defaults of Options.
const (
	DefaultRate          = 500.0 // sends per second per account
	DefaultBurst         = 50
	DefaultCallTimeout   = 10 * time.Second
	DefaultRetryBase     = time.Second
	DefaultRetryMax      = 10 * time.Minute
	DefaultMaxRecipients = 100_000
	DefaultMaxAttempts   = 25
	// DefaultReceiptTimeout is push.receipt_timeout's default.
	DefaultReceiptTimeout = 10 * time.Minute
)

// Options build a Service. DB and Accounts are required; Clients and Jobs
// are needed to send (a Service without them validates and previews only).
type Options struct {
	DB       *db.DB
	Accounts []config.Account
	Clients  Clients
	Jobs     JobInserter
	// Resolver maps unionids and external ids to openids (the follower
	// store: followers, mini-program users, bindings). Required: the
	// composition root passes the one store it built.
	Resolver Resolver
	// Windows tells whose customer-service window is open (the message
	// log). Required.
	Windows WindowChecker
	// Events receives message.sent, message.delivered, message.failed and
	// message.unconfirmed inside the transaction that changes the status;
	// nil drops them.
	Events EventSink
	Logger *slog.Logger
	// Now is the clock (quota day, windows, timestamps); time.Now when nil.
	Now func() time.Time
	// Metrics counts send calls and failures; nil counts nothing.
	Metrics *Metrics
	// Rate and Burst limit sends per account: across every instance on
	// PostgreSQL (a token bucket in the database), in this process on
	// SQLite. Rate < 0 means unlimited, 0 means DefaultRate.
	Rate  float64
	Burst int
	// CallTimeout bounds one call to WeChat (default 10 s).
	CallTimeout time.Duration
	// RetryBase and RetryMax shape the backoff of retryable failures:
	// RetryBase·2^(attempt-1) with jitter, at most RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxAttempts of a send job before it is failed (default 25).
	MaxAttempts int
	// MaxRecipients of one request (default 100 000).
	MaxRecipients int
	// Queue is the River queue of send jobs; Queue ("push") when empty.
	Queue string
	// ReceiptTimeout is how long a sent recipient waits for its receipt
	// before the sweep marks it unconfirmed (DefaultReceiptTimeout).
	ReceiptTimeout time.Duration
	// Files uploads the local files a customer-service message names
	// (*media.Library); nil refuses such messages.
	Files Files
}

// Files uploads a local file and gives its media_id.
type Files interface {
	ForFile(ctx context.Context, account, typ, path string) (string, error)
}

// Service is the push pipeline of a gateway.
type Service struct {
	opts     Options
	db       *db.DB
	log      *slog.Logger
	now      func() time.Time
	accounts map[string]config.Account
	resolver Resolver
	windows  WindowChecker
	limits   limiter
}

// New builds the service. DB, Resolver and Windows are required.
func New(opts Options) (*Service, error) {
	switch {
	case opts.DB == nil:
		return nil, errors.New("push: Options.DB is required")
	case opts.Resolver == nil:
		return nil, errors.New("push: Options.Resolver is required")
	case opts.Windows == nil:
		return nil, errors.New("push: Options.Windows is required")
	}
	if opts.ReceiptTimeout <= 0 {
		opts.ReceiptTimeout = DefaultReceiptTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.Queue == "" {
		opts.Queue = Queue
	}
	s := &Service{
		opts:     opts,
		db:       opts.DB,
		log:      opts.Logger,
		now:      opts.Now,
		accounts: make(map[string]config.Account, len(opts.Accounts)),
		resolver: opts.Resolver,
		windows:  opts.Windows,
		limits:   newLimiter(opts.DB, opts.Rate, opts.Burst),
	}
	opts.Metrics.init(opts.Accounts)
	for _, a := range opts.Accounts {
		s.accounts[a.Name] = a
	}
	return s, nil
}

// account returns a configured account or a not-found error naming the field.
func (s *Service) account(name string) (config.Account, error) {
	if name == "" {
		return config.Account{}, problem.Invalidf("account_required", "account", "account is required — 请指定 account（账号名）")
	}
	a, ok := s.accounts[name]
	if !ok {
		return config.Account{}, problem.NotFoundf("account_not_found", "account", "unknown account %q — 账号 %q 不存在", name, name)
	}
	return a, nil
}

func (s *Service) stamp() time.Time { return db.Timestamp(s.now()) }
