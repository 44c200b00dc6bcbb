// Package queue runs wxgate's durable background jobs with River, on the
// gateway's own database: SQLite or PostgreSQL, one client type for both
// (*river.Client[*sql.Tx]).
//
// Domain packages (follower, push, …) declare their job args and workers
// and take a small inserter interface; the CLI registers their workers in
// one river.Workers, builds the Queue with New and starts it. Jobs that
// belong to rows are written in the same transaction as those rows with
// InsertTx, so a rolled-back request leaves no job behind and a committed
// one always has its job.
//
// Deployment: SQLite mode is one process per database file. River's
// SQLite driver is not built for several processes sharing a file (its
// notifications and leader election assume one writer process), and
// wxgate's other SQLite state is not either. So on SQLite, Start takes
// back at once the jobs a killed process left running. Several gateway instances
// share PostgreSQL, where River elects one leader for maintenance and
// every instance works jobs.
//
// SQLite: River gets a separate *sql.DB on the same file limited to one
// connection, as River's SQLite driver recommends (its background
// services would otherwise contend with each other for the write lock).
// That pool has the connection options of the main pool (WAL, busy_timeout,
// immediate transactions, times written in UTC) and shares its write gate
// (internal/db), so River's writers and wxgate's take turns in one line.
// InsertTx takes a transaction of the main pool: River then writes through
// that transaction's connection, not its own pool. Inside such a
// transaction never call Insert (without Tx): it would wait for the write
// gate the transaction holds, until the gate's timeout. River formats the
// times of its own tables itself ("2006-01-02 15:04:05.000", UTC, whatever
// the connection's _time_format), so on SQLite do not compare river_job
// times with wxgate's columns in SQL: the texts differ in format.
//
// PostgreSQL: River works through the main *sql.DB with its database/sql
// driver, plus one pgx connection of its own for LISTEN (database/sql
// cannot listen). A job inserted by any instance, with Insert or with
// InsertTx once the caller commits, notifies every instance, whose workers
// fetch it at once; PollInterval only bounds how late a missed notification
// or a retry coming due is seen. Poll-only, a send waited for the next poll
// at a low steady rate: a median of 425 ms (docs/benchmarks.md, "Push
// throughput").
//
// River's schema is migrated by New (and Migrate) with rivermigrate: it is
// idempotent, and on PostgreSQL instances starting together take turns
// behind an advisory lock.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db"
)

// Client is River's client as wxgate uses it, the same type on both
// dialects.
type Client = river.Client[*sql.Tx]

// DefaultQueue is River's default queue; jobs go there unless their args
// or insert options name another.
const DefaultQueue = river.QueueDefault

// Defaults of Options.
const (
	DefaultMaxWorkers   = 10
	DefaultPollInterval = time.Second
	DefaultStopTimeout  = 15 * time.Second
)

// fetchCooldown is the least time between two fetches of one queue. When
// jobs are short a queue runs at most its worker count per cooldown:
// River's default (100 ms) held the 50 push workers to 500 sends a second
// whatever the database could do (docs/benchmarks.md, "Push throughput").
// Fetches happen only when there is work (an insert, a finished job with
// slots free, the poll), so an idle queue costs nothing more.
const fetchCooldown = 10 * time.Millisecond

// Options configure a Queue. The zero value makes an insert-only queue
// (Start is then a no-op); give Workers to run jobs.
type Options struct {
	Logger *slog.Logger
	// Workers are the registered workers (river.AddWorker). Every job kind
	// inserted must have one, so an insert of an unknown kind fails at once
	// rather than sitting in the table.
	Workers *river.Workers
	// Queues maps a queue name to its number of concurrent workers in this
	// process. When Workers is set and Queues is empty, the default queue
	// runs with DefaultMaxWorkers.
	Queues map[string]int
	// PollInterval is how often queues are checked for jobs this process
	// was not told about (inserted by another instance, retries coming
	// due); DefaultPollInterval when zero.
	PollInterval time.Duration
	// StopTimeout is how long Stop lets running jobs finish before
	// cancelling their contexts; DefaultStopTimeout when zero.
	StopTimeout time.Duration
	// JobTimeout bounds one run of a job unless its worker says otherwise;
	// River's default (1 minute) when zero.
	JobTimeout time.Duration
	// RetryPolicy decides when a failed job runs again; River's default
	// (attempt⁴ seconds) when nil. Tests use a short fixed delay.
	RetryPolicy river.ClientRetryPolicy
	// ID identifies this process among River clients sharing a database;
	// generated when empty.
	ID string
}

// DefaultRescueAfter is how long a job may look "running" before another
// worker takes it over (its process is presumed dead): short enough that a
// retried send still falls inside WeChat's 10-minute client_msg_id window.
const DefaultRescueAfter = 2 * time.Minute

// rescueAfter keeps the rescue delay above the job timeout, as River
// requires, so a job still running legitimately is never taken over.
func rescueAfter(jobTimeout time.Duration) time.Duration {
	if jobTimeout <= 0 {
		jobTimeout = time.Minute // River's default job timeout
	}
	return max(DefaultRescueAfter, jobTimeout+30*time.Second)
}

// Queue is a River client on wxgate's database.
type Queue struct {
	client *Client
	// riverPool is River's own pool on SQLite, closed by Stop; nil on
	// PostgreSQL, where River uses the main pool.
	riverPool *sql.DB
	// listenPool holds River's LISTEN connection on PostgreSQL, closed by
	// Stop; nil on SQLite.
	listenPool *pgxpool.Pool
	logger     *slog.Logger
	working    bool
	stopOnce   sync.Once
	stopErr    error
}

// New migrates River's schema and builds the client. It does not start
// working jobs; call Start.
func New(ctx context.Context, d *db.DB, opts Options) (*Queue, error) {
	if d == nil {
		return nil, errors.New("queue: a database is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}

	q := &Queue{logger: opts.Logger}
	var driver riverdriver.Driver[*sql.Tx]
	switch d.Dialect {
	case db.SQLite:
		pool, err := openRiverPool(ctx, d)
		if err != nil {
			return nil, err
		}
		q.riverPool = pool
		driver = riversqlite.New(pool)
	case db.Postgres:
		pool, err := d.OpenListenerPool(ctx)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		q.listenPool = pool
		driver = riverdatabasesql.NewWithPgxListener(d.DB, pool)
	default:
		return nil, fmt.Errorf("queue: unsupported database dialect %q", d.Dialect)
	}
	fail := func(err error) (*Queue, error) {
		q.closePools()
		return nil, err
	}

	if err := migrate(ctx, d, driver, opts.Logger); err != nil {
		return fail(err)
	}

	cfg := &river.Config{
		ID:                opts.ID,
		Logger:            opts.Logger,
		Workers:           opts.Workers,
		FetchPollInterval: opts.PollInterval,
		FetchCooldown:     min(fetchCooldown, opts.PollInterval),
		SoftStopTimeout:   opts.StopTimeout,
		JobTimeout:        opts.JobTimeout,
		RetryPolicy:       opts.RetryPolicy,
		// A job whose process died mid-run is retried after this. River's
		// default (1 h) is far beyond WeChat's 10-minute client_msg_id
		// window, so a send killed mid-call would risk a second delivery.
		RescueStuckJobsAfter: rescueAfter(opts.JobTimeout),
	}
	if opts.Workers != nil {
		queues := opts.Queues
		if len(queues) == 0 {
			queues = map[string]int{DefaultQueue: DefaultMaxWorkers}
		}
		cfg.Queues = make(map[string]river.QueueConfig, len(queues))
		for name, n := range queues {
			cfg.Queues[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
		}
		q.working = true
	} else if len(opts.Queues) > 0 {
		return fail(errors.New("queue: Queues are set but no Workers to run their jobs"))
	}
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return fail(fmt.Errorf("queue: creating the River client: %w", err))
	}
	q.client = client
	return q, nil
}

// Client is the underlying River client, for what Queue does not wrap
// (JobGet, JobCancel, InsertMany …).
func (q *Queue) Client() *Client { return q.client }

// Start starts working jobs; it returns once the client runs. Jobs go on
// until Stop (or until ctx ends, which stops the client too: pass a
// context that outlives the HTTP server's drain). A queue without Workers
// does nothing.
func (q *Queue) Start(ctx context.Context) error {
	if !q.working {
		return nil
	}
	if q.riverPool != nil {
		if err := q.resumeOrphans(ctx); err != nil {
			return err
		}
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	return nil
}

// resumeOrphans makes the jobs that a killed process left running
// available again, on SQLite. One process works a SQLite file, so a job
// still marked running when the queue starts was cut short by the death
// of the previous process: it runs again at once instead of after River's
// rescue delay (RescueStuckJobsAfter and the job's own timeout, minutes).
// A send retried this way keeps its client_msg_id, so WeChat does not
// deliver it twice. Jobs out of attempts are left to River's rescuer,
// which discards them. On PostgreSQL, where instances share the queue,
// only the rescuer can tell a dead instance's job from a live one's.
func (q *Queue) resumeOrphans(ctx context.Context) error {
	res, err := q.riverPool.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running' AND attempt < max_attempts`)
	if err != nil {
		return fmt.Errorf("queue: resuming jobs left running by a previous process: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		q.logger.Warn("queue: jobs left running by a previous process that stopped without finishing them run again now", "jobs", n)
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones: up to
// Options.StopTimeout they finish normally, then their contexts are
// cancelled (an interrupted job is retried later). If ctx ends first,
// running jobs are cancelled at once. Stop then releases what New opened
// (River's SQLite pool, its LISTEN connection on PostgreSQL); the database stays the caller's. Later calls
// return the first one's result.
func (q *Queue) Stop(ctx context.Context) error {
	q.stopOnce.Do(func() { q.stopErr = q.stop(ctx) })
	return q.stopErr
}

func (q *Queue) stop(ctx context.Context) error {
	var err error
	if q.working {
		if err = q.client.Stop(ctx); err != nil {
			q.logger.Warn("queue: jobs still running at the stop deadline; cancelling them", "err", err)
			hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err = q.client.StopAndCancel(hardCtx)
			cancel()
			if err != nil {
				err = fmt.Errorf("queue: stop: %w", err)
			}
		}
	}
	if cerr := q.closePools(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// closePools closes what New opened beside the caller's database.
func (q *Queue) closePools() error {
	if q.listenPool != nil {
		q.listenPool.Close()
	}
	if q.riverPool != nil {
		if err := q.riverPool.Close(); err != nil {
			return fmt.Errorf("queue: closing River's SQLite pool: %w", err)
		}
	}
	return nil
}

// Insert queues a job on its own. Use InsertTx when the job belongs to rows
// written in a transaction.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertTx queues a job inside tx, a transaction of the gateway's database
// (db.DB.BeginTx): the job exists if and only if tx commits.
func (q *Queue) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := q.client.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %s: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertManyTx queues several jobs inside tx.
func (q *Queue) InsertManyTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	res, err := q.client.InsertManyTx(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("queue: insert %d jobs: %w", len(params), err)
	}
	return res, nil
}
