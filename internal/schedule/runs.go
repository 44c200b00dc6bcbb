package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// RunFilter selects runs of a schedule, newest first: id < Before (when
// set), at most Limit (default 20, at most 200).
type RunFilter struct {
	Before int64
	Limit  int
}

const runColumns = `id, schedule_id, kind, due_at, status, reason, recipients, source_calls, created_at, started_at, finished_at`

func scanRun(row interface{ Scan(...any) error }, loc *time.Location) (Run, error) {
	var (
		r                 Run
		started, finished sql.NullTime
	)
	if err := row.Scan(&r.ID, &r.ScheduleID, &r.Kind, &r.DueAt, &r.Status, &r.Reason, &r.Counts.Recipients, &r.SourceCalls,
		&r.CreatedAt, &started, &finished); err != nil {
		return r, err
	}
	r.DueAt = r.DueAt.In(loc)
	r.CreatedAt = r.CreatedAt.UTC()
	if started.Valid {
		t := started.Time.UTC()
		r.StartedAt = &t
	}
	if finished.Valid {
		t := finished.Time.UTC()
		r.FinishedAt = &t
	}
	return r, nil
}

// Runs lists the runs of a schedule with their counts, newest first.
func (s *Service) Runs(ctx context.Context, scheduleID int64, f RunFilter) ([]Run, error) {
	sc, err := s.Get(ctx, scheduleID)
	if err != nil {
		return nil, err
	}
	loc, _ := LoadZone(sc.TimeZone)
	f.Limit = db.PageLimit(f.Limit, 20, 200)
	query := `SELECT ` + runColumns + ` FROM schedule_runs WHERE schedule_id = $1`
	args := []any{scheduleID}
	if f.Before > 0 {
		query += ` AND id < $2`
		args = append(args, f.Before)
	}
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, f.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: runs of %d: %w", scheduleID, err)
	}
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows, loc)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("schedule: runs of %d: %w", scheduleID, err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schedule: runs of %d: %w", scheduleID, err)
	}
	if err := s.fillCounts(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRun returns one run of a schedule with its counts and a page of its
// recipients (id > after, at most limit; default 1000; none with limit < 0).
func (s *Service) GetRun(ctx context.Context, scheduleID, runID int64) (RunDetail, error) {
	return s.GetRunPage(ctx, scheduleID, runID, 0, 0)
}

// ErrRunNotFound is returned for an unknown run id.
var ErrRunNotFound = problem.NotFoundf("run_not_found", "run_id", "no such run of this schedule — 该定时任务没有这次运行")

// GetRunPage is GetRun with paging of the recipients.
func (s *Service) GetRunPage(ctx context.Context, scheduleID, runID, after int64, limit int) (RunDetail, error) {
	sc, err := s.Get(ctx, scheduleID)
	if err != nil {
		return RunDetail{}, err
	}
	loc, _ := LoadZone(sc.TimeZone)
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM schedule_runs WHERE id = $1 AND schedule_id = $2`, runID, scheduleID), loc)
	if errors.Is(err, sql.ErrNoRows) {
		return RunDetail{}, ErrRunNotFound
	}
	if err != nil {
		return RunDetail{}, fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	runs := []Run{r}
	if err := s.fillCounts(ctx, runs); err != nil {
		return RunDetail{}, err
	}
	d := RunDetail{Run: runs[0], Recipients: []RunRecipient{}}
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 {
		return d, nil
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`
SELECT r.id, r.to_kind, r.to_value, r.openid, r.data, r.status, r.reason, r.message_id, p.status, p.reason, p.errmsg
FROM schedule_run_recipients r LEFT JOIN push_recipients p ON r.status = 'accepted' AND p.message_id = r.message_id AND p.openid = r.openid
WHERE r.run_id = $1 AND r.id > $2 ORDER BY r.id LIMIT %d`, limit+1), runID, after)
	if err != nil {
		return RunDetail{}, fmt.Errorf("schedule: recipients of run %d: %w", runID, err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var (
			id                     int64
			kind, value, data      string
			rr                     RunRecipient
			pStatus, pReason, pMsg sql.NullString
		)
		if err := rows.Scan(&id, &kind, &value, &rr.OpenID, &data, &rr.Status, &rr.Reason, &rr.MessageID, &pStatus, &pReason, &pMsg); err != nil {
			return RunDetail{}, fmt.Errorf("schedule: recipients of run %d: %w", runID, err)
		}
		if len(d.Recipients) == limit {
			d.NextAfter = last
			break
		}
		last = id
		if kind == "external_id" {
			rr.ExternalID = value
		}
		if data != "" && data != "{}" {
			_ = json.Unmarshal([]byte(data), &rr.Data)
		}
		if rr.Status == rowAccepted {
			rr.Status = push.StatusQueued
			if pStatus.Valid {
				rr.Status = pStatus.String
				switch rr.Status {
				case push.StatusFailed, push.StatusBlocked, push.StatusSkipped:
					rr.Reason = strings.TrimSpace(strings.Join(nonEmpty(pReason.String, pMsg.String), ": "))
				}
			}
		}
		d.Recipients = append(d.Recipients, rr)
	}
	return d, rows.Err()
}

func nonEmpty(list ...string) []string {
	var out []string
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// fillCounts counts the recipients of runs by what became of them, from
// the run's own rows and, once handed over, from the push pipeline's.
func (s *Service) fillCounts(ctx context.Context, runs []Run) error {
	if len(runs) == 0 {
		return nil
	}
	byID := map[int64]*Run{}
	ids := make([]int64, len(runs))
	for i := range runs {
		byID[runs[i].ID] = &runs[i]
		ids[i] = runs[i].ID
	}
	query, args := inQuery(s.db.Dialect, `
SELECT r.run_id, r.status, COALESCE(p.status, ''), count(*)
FROM schedule_run_recipients r LEFT JOIN push_recipients p ON r.status = 'accepted' AND p.message_id = r.message_id AND p.openid = r.openid
WHERE r.run_id IN (%s) GROUP BY r.run_id, r.status, p.status`, nil, ids)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("schedule: run counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			runID          int64
			status, pushed string
			n              int
		)
		if err := rows.Scan(&runID, &status, &pushed, &n); err != nil {
			return fmt.Errorf("schedule: run counts: %w", err)
		}
		c := &byID[runID].Counts
		switch status {
		case rowSkipped:
			c.Skipped += n
		case rowPending:
			c.Pending += n
		case rowAccepted:
			switch pushed {
			case push.StatusSent, push.StatusUnconfirmed:
				c.Sent += n
			case push.StatusDelivered:
				c.Sent += n
				c.Delivered += n
			case push.StatusFailed, push.StatusBlocked:
				c.Failed += n
			case push.StatusSkipped:
				c.Skipped += n
			default:
				c.Pending += n
			}
		}
	}
	return rows.Err()
}
