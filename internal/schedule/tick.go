package schedule

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// TickArgs is the River job of the periodic tick: it turns the due times
// that have come into runs.
type TickArgs struct{}

// Kind implements river.JobArgs.
func (TickArgs) Kind() string { return "schedule_tick" }

// RunArgs is the River job of one run, unique by schedule and due time.
type RunArgs struct {
	ScheduleID int64     `json:"schedule_id"`
	DueAt      time.Time `json:"due_at"`
}

// Kind implements river.JobArgs.
func (RunArgs) Kind() string { return "schedule_run" }

// maxMissedRecorded bounds the missed runs recorded for one schedule by
// one tick (a gateway down for a week with a cron of every minute).
const maxMissedRecorded = 100

// maxCatchUp bounds the due times one tick walks through for a schedule.
const maxCatchUp = 1_000_000

// everyMinute fires on each minute boundary, so that a schedule due at
// 07:30 runs within about a second of 07:30:00.
type everyMinute struct{}

func (everyMinute) Next(t time.Time) time.Time { return t.Truncate(time.Minute).Add(time.Minute) }

// PeriodicJob is the tick, for the River client of every instance:
// River's elected leader inserts it at each minute (and once at start),
// unique per minute, and any instance works it. Register it with
// queue.Client().PeriodicJobs().Add before Start.
func (s *Service) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(everyMinute{}, func() (river.JobArgs, *river.InsertOpts) {
		return TickArgs{}, &river.InsertOpts{Queue: s.opts.Queue, MaxAttempts: 3,
			UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
	}, &river.PeriodicJobOpts{ID: "schedule_tick", RunOnStart: true})
}

// runInsertOpts are the options of a run job: unique by its args
// (schedule and due time), the River side of the exactly-once guard.
func (s *Service) runInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: s.opts.Queue, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// TickResult says what a tick did.
type TickResult struct {
	Queued int `json:"queued"`
	Missed int `json:"missed"`
}

// Tick queues a run for every due time that has come, once: each
// schedule's cursor (next_due_at) is advanced in the transaction that
// inserts the run rows and their jobs, and UNIQUE (schedule_id, due_at)
// refuses a second row for the same due time, so several instances
// ticking together, or a restart in the due minute, queue one run. A due
// time older than the schedule's misfire grace (the gateway was down) is
// recorded as missed instead.
func (s *Service) Tick(ctx context.Context) (TickResult, error) {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM schedules WHERE enabled AND next_due_at <= $1 ORDER BY next_due_at`, db.Timestamp(now))
	if err != nil {
		return TickResult{}, fmt.Errorf("schedule: tick: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return TickResult{}, fmt.Errorf("schedule: tick: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return TickResult{}, fmt.Errorf("schedule: tick: %w", err)
	}
	var total TickResult
	var errs []error
	for _, id := range ids {
		res, err := s.tickOne(ctx, id, now)
		total.Queued += res.Queued
		total.Missed += res.Missed
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

func (s *Service) tickOne(ctx context.Context, id int64, now time.Time) (TickResult, error) {
	var res TickResult
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("schedule: tick %d: %w", id, err)
	}
	defer tx.Rollback()
	lock := ""
	if s.db.Dialect == db.Postgres {
		lock = " FOR UPDATE" // SQLite's BEGIN IMMEDIATE already serialises writers
	}
	var (
		expr, tz string
		enabled  bool
		grace    int64
		next     sql.NullTime
	)
	err = tx.QueryRowContext(ctx, `SELECT cron, timezone, enabled, misfire_grace_seconds, next_due_at FROM schedules WHERE id = $1`+lock, id).
		Scan(&expr, &tz, &enabled, &grace, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("schedule: tick %d: %w", id, err)
	}
	if !enabled || !next.Valid || next.Time.After(now) {
		return res, nil // another instance got here first
	}
	c, err := ParseCron(expr, tz)
	if err != nil {
		return res, fmt.Errorf("schedule: tick %d: %w", id, err)
	}
	graceD := time.Duration(grace) * time.Second
	stamp := db.Timestamp(now)
	var jobs []river.InsertManyParams
	due := next.Time
	missedUnrecorded := 0
	for steps := 0; !due.IsZero() && !due.After(now) && steps < maxCatchUp; steps++ {
		dueAt := db.Timestamp(due)
		if now.Sub(due) <= graceD {
			var runID int64
			err := tx.QueryRowContext(ctx, `
INSERT INTO schedule_runs (schedule_id, due_at, kind, status, created_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (schedule_id, due_at) DO NOTHING RETURNING id`, id, dueAt, KindCron, RunQueued, stamp).Scan(&runID)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				// Queued already.
			case err != nil:
				return TickResult{}, fmt.Errorf("schedule: tick %d: queue the run due %s: %w", id, due, err)
			default:
				jobs = append(jobs, river.InsertManyParams{Args: RunArgs{ScheduleID: id, DueAt: dueAt}, InsertOpts: s.runInsertOpts()})
				res.Queued++
				late := now.Sub(due).Truncate(time.Second)
				if late >= time.Minute {
					s.log.Info("schedule: running late after a misfire", "schedule", id, "due", due, "late", late.String())
				}
			}
		} else {
			res.Missed++
			if res.Missed <= maxMissedRecorded {
				reason := fmt.Sprintf("missed: the gateway was not running at the due time and the misfire grace (%s) had passed when it noticed (%s late) — 到期时网关未运行，且已超过补发宽限时间",
					graceD, now.Sub(due).Truncate(time.Second))
				if _, err := tx.ExecContext(ctx, `
INSERT INTO schedule_runs (schedule_id, due_at, kind, status, reason, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (schedule_id, due_at) DO NOTHING`, id, dueAt, KindCron, RunMissed, reason, stamp); err != nil {
					return TickResult{}, fmt.Errorf("schedule: tick %d: record the missed run due %s: %w", id, due, err)
				}
			} else {
				missedUnrecorded++
			}
		}
		due = c.Next(due)
	}
	if missedUnrecorded > 0 {
		s.log.Warn("schedule: many due times missed while the gateway was down; only the first are recorded",
			"schedule", id, "recorded", maxMissedRecorded, "not_recorded", missedUnrecorded)
	}
	var nextArg any
	if !due.IsZero() {
		nextArg = db.Timestamp(due)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schedules SET next_due_at = $1 WHERE id = $2`, nextArg, id); err != nil {
		return TickResult{}, fmt.Errorf("schedule: tick %d: %w", id, err)
	}
	if len(jobs) > 0 {
		if s.opts.Jobs == nil {
			return TickResult{}, errors.New("schedule: this gateway has no queue to run schedules with")
		}
		if _, err := s.opts.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
			return TickResult{}, fmt.Errorf("schedule: tick %d: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return TickResult{}, fmt.Errorf("schedule: tick %d: %w", id, err)
	}
	return res, nil
}

// RunNow queues a run of a schedule at once, paused or not (a manual run:
// its due time is now).
func (s *Service) RunNow(ctx context.Context, id int64) (Run, error) {
	if s.opts.Jobs == nil {
		return Run{}, errors.New("schedule: this gateway has no queue to run schedules with")
	}
	sc, err := s.Get(ctx, id)
	if err != nil {
		return Run{}, err
	}
	now := s.stamp()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Run{}, fmt.Errorf("schedule: run %d: %w", id, err)
	}
	defer tx.Rollback()
	// A manual run's due time is now, a microsecond later when a run of
	// the same instant exists (two quick clicks, a coarse clock).
	var runID int64
	for i := 0; ; i++ {
		err = tx.QueryRowContext(ctx, `
INSERT INTO schedule_runs (schedule_id, due_at, kind, status, created_at) VALUES ($1, $2, $3, $4, $2)
ON CONFLICT (schedule_id, due_at) DO NOTHING RETURNING id`, id, now, KindManual, RunQueued).Scan(&runID)
		if !errors.Is(err, sql.ErrNoRows) || i == 100 {
			break
		}
		now = now.Add(time.Microsecond)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, problem.New(problem.Conflict, "run_exists", "id",
			"a run of this schedule was queued at this very instant; try again — 此刻已有一次运行，请重试")
	}
	if err != nil {
		return Run{}, fmt.Errorf("schedule: run %d: %w", id, err)
	}
	if _, err := s.opts.Jobs.InsertManyTx(ctx, tx, []river.InsertManyParams{{Args: RunArgs{ScheduleID: id, DueAt: now}, InsertOpts: s.runInsertOpts()}}); err != nil {
		return Run{}, fmt.Errorf("schedule: run %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return Run{}, fmt.Errorf("schedule: run %d: %w", id, err)
	}
	d, err := s.GetRunPage(ctx, sc.ID, runID, 0, -1)
	return d.Run, err
}

// TickWorker works the tick job.
type TickWorker struct {
	river.WorkerDefaults[TickArgs]
	s *Service
}

// TickWorker returns the worker to register: river.AddWorker(workers, svc.TickWorker()).
func (s *Service) TickWorker() *TickWorker { return &TickWorker{s: s} }

// Work runs one tick.
func (w *TickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error {
	res, err := w.s.Tick(ctx)
	if res.Queued > 0 || res.Missed > 0 {
		w.s.log.Info("schedule: tick", "queued", res.Queued, "missed", res.Missed)
	}
	return err
}

// Register adds the tick and run workers to a River worker set.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, s.TickWorker())
	river.AddWorker(workers, s.RunWorker())
}
