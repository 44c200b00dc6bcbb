package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/queue"
)

// testArgs is a job whose worker fails its first Fail attempts and, when
// Block is set, waits for the test to release it.
type testArgs struct {
	Name  string `json:"name"`
	Fail  int    `json:"fail,omitempty"`
	Block bool   `json:"block,omitempty"`
}

func (testArgs) Kind() string { return "queue_test.job" }

type testWorker struct {
	river.WorkerDefaults[testArgs]

	mu      sync.Mutex
	runs    map[string]int
	started chan string   // receives Name when a blocking job starts
	release chan struct{} // closed to let blocking jobs finish
	// cancelled counts blocking jobs whose context ended before release.
	cancelled int
}

func (w *testWorker) Work(ctx context.Context, job *river.Job[testArgs]) error {
	w.mu.Lock()
	w.runs[job.Args.Name]++
	n := w.runs[job.Args.Name]
	w.mu.Unlock()
	if job.Args.Block {
		w.started <- job.Args.Name
		select {
		case <-w.release:
		case <-ctx.Done():
			w.mu.Lock()
			w.cancelled++
			w.mu.Unlock()
			return ctx.Err()
		}
	}
	if n <= job.Args.Fail {
		return fmt.Errorf("attempt %d fails on purpose", n)
	}
	return nil
}

func (w *testWorker) count(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runs[name]
}

// fixedRetry retries failed jobs after a short fixed delay.
type fixedRetry time.Duration

func (d fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(d)) }

type bundle struct {
	db     *db.DB
	q      *queue.Queue
	worker *testWorker
}

func setup(t *testing.T, d *db.DB, opts queue.Options) *bundle {
	t.Helper()
	w := &testWorker{runs: map[string]int{}, started: make(chan string, 16), release: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	opts.Workers = workers
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.RetryPolicy == nil {
		opts.RetryPolicy = fixedRetry(20 * time.Millisecond)
	}
	ctx := t.Context()
	q, err := queue.New(ctx, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		t.Fatal(err)
	}
	return &bundle{db: d, q: q, worker: w}
}

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jobState reads a job through the main pool, which works after Stop too.
func jobState(t *testing.T, d *db.DB, id int64) (state string, attempt int) {
	t.Helper()
	if err := d.QueryRowContext(context.Background(), `SELECT state, attempt FROM river_job WHERE id = $1`, id).Scan(&state, &attempt); err != nil {
		t.Fatalf("job %d: %v", id, err)
	}
	return state, attempt
}

func countJobs(t *testing.T, d *db.DB, kind string) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1`, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A job inserted in a transaction of the main pool exists only if the
// transaction commits, together with the row written beside it.
func TestInsertTx(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{})
		ctx := waitCtx(t)
		if _, err := d.ExecContext(ctx, `CREATE TABLE queue_test_rows (name TEXT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		write := func(name string, commit bool) *rivertype.JobInsertResult {
			t.Helper()
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `INSERT INTO queue_test_rows (name) VALUES ($1)`, name); err != nil {
				t.Fatal(err)
			}
			res, err := b.q.InsertTx(ctx, tx, testArgs{Name: name}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			return res
		}

		write("rolled-back", false)
		committed := write("committed", true)

		row, err := b.q.WaitJob(ctx, committed.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.State != rivertype.JobStateCompleted || row.Attempt != 1 {
			t.Errorf("committed job: state %s attempt %d, want completed after 1", row.State, row.Attempt)
		}
		if err := b.q.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.worker.count("committed"); n != 1 {
			t.Errorf("committed job ran %d times, want 1", n)
		}
		if n := b.worker.count("rolled-back"); n != 0 {
			t.Errorf("rolled-back job ran %d times", n)
		}
		if n := countJobs(t, d, testArgs{}.Kind()); n != 1 {
			t.Errorf("%d jobs in the table, want 1", n)
		}
		var rows int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM queue_test_rows`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("%d rows (%v), want 1", rows, err)
		}
		// River's times are in UTC and now, whatever the pool's time format.
		if age := time.Since(row.CreatedAt); row.CreatedAt.Location() != time.UTC || age < 0 || age > time.Minute {
			t.Errorf("created_at %v (age %v)", row.CreatedAt, age)
		}
	})
}

// A failing job is retried until it succeeds, its errors recorded.
func TestRetry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{})
		ctx := waitCtx(t)
		res, err := b.q.Insert(ctx, testArgs{Name: "flaky", Fail: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		row, err := b.q.WaitJob(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.State != rivertype.JobStateCompleted || row.Attempt != 3 || len(row.Errors) != 2 {
			t.Errorf("state %s attempt %d errors %d, want completed after 3 attempts with 2 errors", row.State, row.Attempt, len(row.Errors))
		}
		if n := b.worker.count("flaky"); n != 3 {
			t.Errorf("ran %d times, want 3", n)
		}

		// Out of attempts: discarded, not retried forever.
		res, err = b.q.Insert(ctx, testArgs{Name: "hopeless", Fail: 100}, &river.InsertOpts{MaxAttempts: 2})
		if err != nil {
			t.Fatal(err)
		}
		row, err = b.q.WaitJob(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.State != rivertype.JobStateDiscarded || row.Attempt != 2 {
			t.Errorf("hopeless job: state %s attempt %d, want discarded after 2", row.State, row.Attempt)
		}
	})
}

// Stop waits for running jobs to finish, and stops taking new ones.
func TestStopGraceful(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{})
		ctx := waitCtx(t)
		res, err := b.q.Insert(ctx, testArgs{Name: "slow", Block: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-b.worker.started

		stopped := make(chan error, 1)
		go func() { stopped <- b.q.Stop(ctx) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a job was running", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(b.worker.release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if state, attempt := jobState(t, d, res.Job.ID); state != "completed" || attempt != 1 {
			t.Errorf("job after a graceful stop: %s, attempt %d; want completed", state, attempt)
		}
		if n := b.worker.cancelled; n != 0 {
			t.Errorf("%d jobs cancelled by a graceful stop", n)
		}
	})
}

// A job still running at StopTimeout is cancelled and left to be retried,
// never lost.
func TestStopTimeout(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{StopTimeout: 300 * time.Millisecond})
		ctx := waitCtx(t)
		res, err := b.q.Insert(ctx, testArgs{Name: "stuck", Block: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-b.worker.started
		start := time.Now()
		if err := b.q.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 300*time.Millisecond || took > 10*time.Second {
			t.Errorf("Stop took %v, want about the stop timeout", took)
		}
		b.worker.mu.Lock()
		cancelled := b.worker.cancelled
		b.worker.mu.Unlock()
		if cancelled != 1 {
			t.Errorf("%d jobs cancelled, want 1", cancelled)
		}
		if state, _ := jobState(t, d, res.Job.ID); state != "retryable" && state != "available" {
			t.Errorf("interrupted job is %s, want it queued for a retry", state)
		}
	})
}

// A job scheduled ahead runs when due, not before: River's times and the
// database's compare correctly. A unique insert within its period is
// skipped.
func TestScheduledAndUnique(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{})
		ctx := waitCtx(t)
		at := time.Now().Add(700 * time.Millisecond)
		res, err := b.q.Insert(ctx, testArgs{Name: "later"}, &river.InsertOpts{ScheduledAt: at})
		if err != nil {
			t.Fatal(err)
		}
		row, err := b.q.WaitJob(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.AttemptedAt == nil || row.AttemptedAt.Before(at.Add(-10*time.Millisecond)) {
			t.Errorf("scheduled for %v, attempted at %v", at, row.AttemptedAt)
		}

		unique := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: time.Hour}}
		first, err := b.q.Insert(ctx, testArgs{Name: "once"}, unique)
		if err != nil {
			t.Fatal(err)
		}
		second, err := b.q.Insert(ctx, testArgs{Name: "once"}, unique)
		if err != nil {
			t.Fatal(err)
		}
		if first.UniqueSkippedAsDuplicate || !second.UniqueSkippedAsDuplicate || second.Job.ID != first.Job.ID {
			t.Errorf("unique insert: first skipped=%v, second skipped=%v (ids %d, %d)",
				first.UniqueSkippedAsDuplicate, second.UniqueSkippedAsDuplicate, first.Job.ID, second.Job.ID)
		}
		if err := b.q.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.worker.count("once"); n != 1 {
			t.Errorf("unique job ran %d times", n)
		}
	})
}

// Migrations are idempotent, and instances starting together do not trip
// over each other.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := waitCtx(t)
		n := 4
		if d.Dialect == db.SQLite {
			n = 1 // one process per SQLite file
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() { errs <- queue.Migrate(ctx, d, nil) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if err := queue.Migrate(ctx, d, nil); err != nil {
			t.Errorf("second migration: %v", err)
		}
		var jobs int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM river_job`).Scan(&jobs); err != nil {
			t.Errorf("river_job after migrating: %v", err)
		}
	})
}

// An insert-only queue needs no workers and Start does nothing; an unknown
// kind is refused at insert.
func TestInsertOnly(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	ctx := waitCtx(t)
	q, err := queue.New(ctx, d, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop(ctx)
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Insert(ctx, testArgs{Name: "x"}, nil); err != nil {
		t.Fatalf("insert without workers: %v", err)
	}

	b := setup(t, dbtest.SQLite(t), queue.Options{})
	var unknown *river.UnknownJobKindError
	if _, err := b.q.Insert(ctx, otherArgs{}, nil); !errors.As(err, &unknown) {
		t.Errorf("unknown kind: %v", err)
	}
}

type otherArgs struct{}

func (otherArgs) Kind() string { return "queue_test.other" }

// A committed job starts at once, not at the next poll: on PostgreSQL the
// insert notifies every instance (LISTEN), including for a job another
// instance inserted; on SQLite the inserting client wakes its own workers.
// The poll here is an hour away, so a job that waited for it fails the test.
func TestCommittedJobsStartWithoutWaitingForThePoll(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, queue.Options{PollInterval: time.Hour})
		ctx := waitCtx(t)
		// River fetches once when it starts; let that pass first.
		time.Sleep(200 * time.Millisecond)

		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := b.q.InsertTx(ctx, tx, testArgs{Name: "in-tx"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if row, err := b.q.WaitJob(ctx, res.Job.ID); err != nil || row.State != rivertype.JobStateCompleted {
			t.Fatalf("a job committed after the start: %v %v", row, err)
		}

		if d.Dialect != db.Postgres {
			return
		}
		other, err := queue.New(ctx, d, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Stop(context.Background())
		res, err = other.Insert(ctx, testArgs{Name: "from-another-instance"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if row, err := b.q.WaitJob(ctx, res.Job.ID); err != nil || row.State != rivertype.JobStateCompleted {
			t.Fatalf("a job another instance inserted: %v %v", row, err)
		}
	})
}
