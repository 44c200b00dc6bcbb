package follower

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Queue is the River queue of follower jobs, apart from the sends so that
// a burst of either does not hold up the other.
const Queue = "follower"

// QueueWorkers is a sensible number of concurrent follower jobs per
// process: user/info calls are light, and WeChat's quota is per day.
const QueueWorkers = 4

// Profile job settings.
const (
	// fetchProfileUnique: subscribes of one follower within the same
	// period (River rounds the insert time down to a multiple of it) queue
	// one fetch.
	fetchProfileUnique = time.Minute
	// fetchProfileAttempts with River's attempt⁴-second backoff spread
	// retries over about eleven hours: long enough to outlast an outage or
	// a wrong AppSecret being fixed.
	fetchProfileAttempts = 12
	// quotaSnooze is the wait after user/info's daily quota (45009) ran
	// out; an administrator may reset the quota (clear_quota) earlier.
	quotaSnooze  = time.Hour
	userInfoPath = "/cgi-bin/user/info"
)

// FetchProfileArgs is the job follower.fetch_profile: fetch one
// follower's user/info and store it (Store.ApplyProfile).
type FetchProfileArgs struct {
	Account string `json:"account" river:"unique"`
	OpenID  string `json:"openid" river:"unique"`
}

// Kind is the job's kind.
func (FetchProfileArgs) Kind() string { return "follower.fetch_profile" }

// InsertOpts puts the job on the follower queue, unique per follower
// within a minute.
func (FetchProfileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Queue,
		MaxAttempts: fetchProfileAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByPeriod: fetchProfileUnique},
	}
}

// JobInserter queues jobs; *queue.Queue (and River's client) is one.
type JobInserter interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// APIClients gives an account's WeChat API client, wired to its token
// broker; *token.Registry is one.
type APIClients interface {
	Client(account string) (*wechat.Client, bool)
}

// ProfileJobs is the ProfileFetcher of the callback: it queues a
// follower.fetch_profile job and returns, so that the HTTP answer never
// waits on WeChat's API.
type ProfileJobs struct {
	jobs    JobInserter
	clients APIClients
	logger  *slog.Logger
}

// NewProfileJobs returns a ProfileJobs queuing on jobs. Accounts without
// an API client in clients (no AppSecret) get no jobs; clients may be nil
// to queue for every account.
func NewProfileJobs(jobs JobInserter, clients APIClients, logger *slog.Logger) *ProfileJobs {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ProfileJobs{jobs: jobs, clients: clients, logger: logger}
}

// FetchProfile queues a profile fetch for a follower.
func (p *ProfileJobs) FetchProfile(ctx context.Context, account, openid string) error {
	if !p.canFetch(account) {
		return nil
	}
	res, err := p.jobs.Insert(ctx, FetchProfileArgs{Account: account, OpenID: openid}, nil)
	return p.inserted(account, openid, res, err)
}

// FetchProfileTx queues a profile fetch inside tx, with the rows it
// belongs to (e.g. a full sync's page of followers).
func (p *ProfileJobs) FetchProfileTx(ctx context.Context, tx *sql.Tx, account, openid string) error {
	if !p.canFetch(account) {
		return nil
	}
	res, err := p.jobs.InsertTx(ctx, tx, FetchProfileArgs{Account: account, OpenID: openid}, nil)
	return p.inserted(account, openid, res, err)
}

func (p *ProfileJobs) canFetch(account string) bool {
	if p.clients == nil {
		return true
	}
	_, ok := p.clients.Client(account)
	if !ok {
		p.logger.Debug("no profile fetch: the account has no API client (no app_secret)", "account", account)
	}
	return ok
}

func (p *ProfileJobs) inserted(account, openid string, res *rivertype.JobInsertResult, err error) error {
	if err != nil {
		return fmt.Errorf("follower: queuing the profile fetch of %s: %w", openid, err)
	}
	if res.UniqueSkippedAsDuplicate {
		p.logger.Debug("profile fetch already queued", "account", account, "openid", openid, "job_id", res.Job.ID)
	}
	return nil
}

// ProfileWorker runs follower.fetch_profile jobs.
//
// Outcomes: stored → completed. Transport errors, -1, 5xx, timeouts, token
// errors (the client has already replaced a rejected token and retried
// once) and a missing token → an error, retried by River with backoff.
// Quota used up (45009) → snoozed for an hour. Refused for good (40003:
// the openid is not of this app, 48001 …) or an account that has no API
// client any more → cancelled, with the reason logged and kept in the
// job's errors.
type ProfileWorker struct {
	river.WorkerDefaults[FetchProfileArgs]
	store   *Store
	clients APIClients
	logger  *slog.Logger
}

// NewProfileWorker returns the worker; register it with
// river.AddWorker(workers, w) and run Queue.
func NewProfileWorker(store *Store, clients APIClients, logger *slog.Logger) *ProfileWorker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ProfileWorker{store: store, clients: clients, logger: logger}
}

// Work fetches and stores one profile.
func (w *ProfileWorker) Work(ctx context.Context, job *river.Job[FetchProfileArgs]) error {
	a := job.Args
	log := w.logger.With("account", a.Account, "openid", a.OpenID, "job_id", job.ID, "attempt", job.Attempt)
	client, ok := w.clients.Client(a.Account)
	if !ok {
		err := fmt.Errorf("account %q has no API client (no app_secret, or no longer configured)", a.Account)
		log.Warn("profile fetch cancelled", "reason", err.Error())
		return river.JobCancel(err)
	}
	seen, err := w.store.Snapshot(ctx, a.Account, a.OpenID)
	if err != nil {
		return err
	}
	calledAt := w.store.now()
	info, err := client.UserInfo(ctx, a.OpenID, "")
	if err != nil {
		return w.failed(log, err)
	}
	switch info.OpenID {
	case "":
		info.OpenID = a.OpenID
	case a.OpenID:
	default:
		err := fmt.Errorf("user/info for %s answered for openid %s", a.OpenID, info.OpenID)
		log.Warn("profile fetch cancelled", "reason", err.Error())
		return river.JobCancel(err)
	}
	outcome, err := w.store.ApplyProfile(ctx, a.Account, seen, info, calledAt)
	if err != nil {
		return err
	}
	log.Debug("profile fetched", "outcome", string(outcome))
	return nil
}

// failed turns a user/info error into the job's outcome.
func (w *ProfileWorker) failed(log *slog.Logger, err error) error {
	var apiErr *wechat.APIError
	// Only an answer of user/info itself says anything about this job; a
	// failed token fetch (wrong secret, paused refreshes …) is retried.
	if errors.As(err, &apiErr) && apiErr.Path == userInfoPath {
		switch apiErr.Class() {
		case wechat.ClassQuota:
			log.Warn("user/info quota used up; fetching later", "errcode", apiErr.Code, "snooze", quotaSnooze)
			return river.JobSnooze(quotaSnooze)
		case wechat.ClassPermanent:
			// A missing IP whitelist entry is fixed by an administrator:
			// keep retrying.
			if apiErr.Code != wechat.CodeIPNotInWhitelist {
				log.Warn("profile fetch cancelled: WeChat refused it", "errcode", apiErr.Code, "reason", err.Error())
				return river.JobCancel(err)
			}
		}
	}
	log.Info("profile fetch failed; retrying later", "class", string(wechat.ClassOf(err)), "err", err)
	return err
}
