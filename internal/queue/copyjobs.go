package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/db"
)

// storedJob is a job read back from river_job: its kind and arguments as
// stored, re-inserted as they are.
type storedJob struct {
	kind string
	args json.RawMessage
}

func (j storedJob) Kind() string                 { return j.kind }
func (j storedJob) MarshalJSON() ([]byte, error) { return j.args, nil }

// CopyPendingJobs re-inserts into to, inside tx, every job of from not
// finished yet (available, scheduled, retryable, and running ones, which
// the stopped source will never finish): same kind, arguments, queue,
// priority, attempts allowed, tags and due time. Finished jobs are history
// and stay behind; unique-job constraints are not carried over.
func CopyPendingJobs(ctx context.Context, from *db.DB, to *Queue, tx *sql.Tx) (int, error) {
	// River's SQLite driver stores args and tags as SQLite JSONB; json()
	// reads them back as text.
	rows, err := from.QueryContext(ctx, `SELECT kind, json(args), queue, priority, max_attempts, state, scheduled_at, json(tags)
		FROM river_job WHERE state IN ('available', 'scheduled', 'retryable', 'running') ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("queue: reading pending jobs: %w", err)
	}
	defer rows.Close()
	var params []river.InsertManyParams
	for rows.Next() {
		var (
			kind, queue, state string
			args, tags         []byte
			priority, attempts int
			scheduled          any
		)
		if err := rows.Scan(&kind, &args, &queue, &priority, &attempts, &state, &scheduled, &tags); err != nil {
			return 0, fmt.Errorf("queue: reading pending jobs: %w", err)
		}
		opts := &river.InsertOpts{Queue: queue, Priority: priority, MaxAttempts: attempts}
		if state == "scheduled" || state == "retryable" {
			if at, ok := riverTime(scheduled); ok {
				opts.ScheduledAt = at
			}
		}
		var tagList []string
		if len(tags) > 0 && json.Unmarshal(tags, &tagList) == nil {
			opts.Tags = tagList
		}
		params = append(params, river.InsertManyParams{Args: storedJob{kind: kind, args: json.RawMessage(args)}, InsertOpts: opts})
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("queue: reading pending jobs: %w", err)
	}
	for start := 0; start < len(params); start += 500 {
		if _, err := to.InsertManyTx(ctx, tx, params[start:min(start+500, len(params))]); err != nil {
			return 0, err
		}
	}
	return len(params), nil
}
