package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// waitPoll is how often the Wait helpers look at the job table.
const waitPoll = 20 * time.Millisecond

// unfinished are the states of a job that may still run.
var unfinished = []rivertype.JobState{
	rivertype.JobStateAvailable,
	rivertype.JobStatePending,
	rivertype.JobStateRetryable,
	rivertype.JobStateRunning,
	rivertype.JobStateScheduled,
}

// WaitIdle blocks until no job of the given kinds (of any kind when none
// are given) may still run: none available, running, retryable or
// scheduled. A job snoozed or scheduled far ahead keeps it waiting until
// ctx ends. Meant for tests, the demo and tools, not request paths.
func (q *Queue) WaitIdle(ctx context.Context, kinds ...string) error {
	params := river.NewJobListParams().States(unfinished...).First(1)
	if len(kinds) > 0 {
		params = params.Kinds(kinds...)
	}
	ticker := time.NewTicker(waitPoll)
	defer ticker.Stop()
	for {
		res, err := q.client.JobList(ctx, params)
		if err != nil {
			return fmt.Errorf("queue: listing jobs: %w", err)
		}
		if len(res.Jobs) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			j := res.Jobs[0]
			return fmt.Errorf("queue: still waiting for job %d (%s, %s, attempt %d): %w", j.ID, j.Kind, j.State, j.Attempt, ctx.Err())
		case <-ticker.C:
		}
	}
}

// WaitJob blocks until a job is finalized (completed, cancelled or
// discarded) and returns its row.
func (q *Queue) WaitJob(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	ticker := time.NewTicker(waitPoll)
	defer ticker.Stop()
	for {
		j, err := q.client.JobGet(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("queue: job %d: %w", id, err)
		}
		if j.FinalizedAt != nil {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("queue: job %d still %s after attempt %d: %w", id, j.State, j.Attempt, ctx.Err())
		case <-ticker.C:
		}
	}
}
