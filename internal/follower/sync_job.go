package follower

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// SyncArgs is the job follower.sync: a full sync of one account's
// followers (Syncer.Run). A scheduler inserts it periodically, the API on
// demand; a failed or interrupted run is retried, and resumes.
type SyncArgs struct {
	Account string `json:"account" river:"unique"`
}

// Kind is the job's kind.
func (SyncArgs) Kind() string { return "follower.sync" }

// syncJobAttempts: with River's backoff, retries over about an hour.
const syncJobAttempts = 6

// InsertOpts: the follower queue, one unfinished sync job per account.
func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: syncJobAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true,
		ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

// SyncJobs starts syncs through the queue and reports their state.
type SyncJobs struct {
	jobs   JobInserter
	syncer *Syncer
}

// NewSyncJobs returns SyncJobs.
func NewSyncJobs(jobs JobInserter, syncer *Syncer) *SyncJobs {
	return &SyncJobs{jobs: jobs, syncer: syncer}
}

// Start queues a sync of account; running is true when one was queued or
// running already (no second one is queued).
func (s *SyncJobs) Start(ctx context.Context, account string) (jobID int64, running bool, err error) {
	res, err := s.jobs.Insert(ctx, SyncArgs{Account: account}, nil)
	if err != nil {
		return 0, false, err
	}
	return res.Job.ID, res.UniqueSkippedAsDuplicate, nil
}

// Status is the account's last or current sync (ErrNotFound: never).
func (s *SyncJobs) Status(ctx context.Context, account string) (SyncStatus, error) {
	return s.syncer.Status(ctx, account)
}

// SyncWorker runs follower.sync jobs.
type SyncWorker struct {
	river.WorkerDefaults[SyncArgs]
	syncer  *Syncer
	clients APIClients
	logger  *slog.Logger
}

// NewSyncWorker returns the worker; register it with river.AddWorker.
func NewSyncWorker(syncer *Syncer, clients APIClients, logger *slog.Logger) *SyncWorker {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SyncWorker{syncer: syncer, clients: clients, logger: logger}
}

// Work runs (or resumes) the sync.
func (w *SyncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	client, ok := w.clients.Client(job.Args.Account)
	if !ok {
		return river.JobCancel(fmt.Errorf("account %q has no API client (no app_secret, or no longer configured)", job.Args.Account))
	}
	_, err := w.syncer.Run(ctx, job.Args.Account, client, SyncOptions{})
	var running *SyncRunningError
	if errors.As(err, &running) {
		// Another process (a CLI sync) is at it: that one is the sync.
		w.logger.Info("follower sync job skipped: a sync is running elsewhere", "account", job.Args.Account, "holder", running.Holder)
		return river.JobCancel(err)
	}
	return err
}

// Timeout: a sync of a million followers takes minutes.
func (w *SyncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return 2 * time.Hour }
