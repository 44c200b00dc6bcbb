package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/queue"
)

// A job left running by a killed process runs again as soon as the next
// process starts its queue on SQLite (one process per file), instead of
// after River's rescue delay of minutes. On PostgreSQL another instance may
// be running it: it is left to River's rescuer.
func TestStartResumesJobsOfAKilledProcess(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := waitCtx(t)
		inserter, err := queue.New(ctx, d, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = inserter.Stop(context.Background()) })
		orphan, err := inserter.Insert(ctx, testArgs{Name: "orphan"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		spent, err := inserter.Insert(ctx, testArgs{Name: "spent"}, &river.InsertOpts{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		// The previous process had fetched both and died mid-run.
		if _, err := d.ExecContext(ctx, `UPDATE river_job SET state = 'running', attempt = 1 WHERE id IN ($1, $2)`,
			orphan.Job.ID, spent.Job.ID); err != nil {
			t.Fatal(err)
		}

		b := setup(t, d, queue.Options{})
		if d.Dialect == db.Postgres {
			time.Sleep(300 * time.Millisecond) // several polls
			if state, _ := jobState(t, d, orphan.Job.ID); state != string(rivertype.JobStateRunning) {
				t.Errorf("postgres: job of another instance is %s, want left running for River's rescuer", state)
			}
			if n := b.worker.count("orphan"); n != 0 {
				t.Errorf("postgres: ran %d times, want 0", n)
			}
			return
		}
		waitFor, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		row, err := b.q.WaitJob(waitFor, orphan.Job.ID)
		if err != nil {
			t.Fatalf("orphaned job not resumed at start: %v", err)
		}
		if row.State != rivertype.JobStateCompleted || row.Attempt != 2 {
			t.Errorf("orphaned job: state %s attempt %d, want completed at attempt 2", row.State, row.Attempt)
		}
		if n := b.worker.count("orphan"); n != 1 {
			t.Errorf("orphaned job ran %d times, want 1", n)
		}
		if state, _ := jobState(t, d, spent.Job.ID); state != string(rivertype.JobStateRunning) || b.worker.count("spent") != 0 {
			t.Errorf("job out of attempts: %s, ran %d times; want left to River's rescuer", state, b.worker.count("spent"))
		}
	})
}
