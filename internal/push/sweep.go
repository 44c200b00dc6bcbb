package push

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
)

// ReasonReceiptMissing is the reason of an unconfirmed recipient.
const ReasonReceiptMissing = "receipt_missing"

// sweepBatch bounds one transaction of the sweep, so that a large backlog
// (a gateway down during a big send) does not hold the write lock long.
const sweepBatch = 500

// ReceiptSweepArgs is the periodic job that ends the wait of sent
// recipients whose receipt never came: WeChat pushes a receipt only a few
// times within seconds, so one pushed while no gateway listened is lost,
// and WeChat offers no API to ask for it.
type ReceiptSweepArgs struct{}

// Kind is River's job kind.
func (ReceiptSweepArgs) Kind() string { return "push_receipt_sweep" }

// ReceiptSweepWorker runs ReceiptSweepArgs.
type ReceiptSweepWorker struct {
	river.WorkerDefaults[ReceiptSweepArgs]
	s *Service
}

// ReceiptSweepWorker returns the worker to register:
// river.AddWorker(workers, svc.ReceiptSweepWorker()).
func (s *Service) ReceiptSweepWorker() *ReceiptSweepWorker { return &ReceiptSweepWorker{s: s} }

// Work sweeps until no recipient is left overdue.
func (w *ReceiptSweepWorker) Work(ctx context.Context, _ *river.Job[ReceiptSweepArgs]) error {
	_, err := w.s.SweepReceipts(ctx)
	return err
}

// sweepEvery is how often the sweep runs: a fifth of the timeout, so a
// recipient ends at most 20% after its deadline, between 1 s and 1 min.
func sweepEvery(timeout time.Duration) time.Duration {
	return min(max(timeout/5, time.Second), time.Minute)
}

type interval time.Duration

func (i interval) Next(t time.Time) time.Time { return t.Add(time.Duration(i)) }

// ReceiptSweepJob is the periodic sweep, for the River client of every
// instance: River's leader inserts it, unique per period, and any instance
// works it. Two sweeps running at once are harmless too: each recipient
// moves by a conditional UPDATE, so only one of them raises its event.
// Register it with queue.Client().PeriodicJobs().Add before Start.
func (s *Service) ReceiptSweepJob() *river.PeriodicJob {
	every := sweepEvery(s.opts.ReceiptTimeout)
	return river.NewPeriodicJob(interval(every), func() (river.JobArgs, *river.InsertOpts) {
		// The default queue: a large send must not hold the sweep up.
		return ReceiptSweepArgs{}, &river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: 3,
			UniqueOpts: river.UniqueOpts{ByPeriod: every}}
	}, &river.PeriodicJobOpts{ID: "push_receipt_sweep", RunOnStart: true})
}

// SweepReceipts marks unconfirmed every recipient sent longer than the
// receipt timeout ago without a receipt, in batches, raising
// message.unconfirmed for each; it returns how many it marked.
func (s *Service) SweepReceipts(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepOnce(ctx)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// sweepOnce marks one batch in one transaction. The UPDATE rechecks the
// status, so a receipt applied meanwhile, or another instance's sweep,
// wins: on PostgreSQL a second UPDATE of a row waits for the first and
// then finds it no longer sent; SQLite runs one writer at a time.
func (s *Service) sweepOnce(ctx context.Context) (int, error) {
	now := s.stamp()
	cutoff := now.Add(-s.opts.ReceiptTimeout)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("push: begin sweep: %w", err)
	}
	defer tx.Rollback()
	// status = 'sent' is written out so both databases use the partial
	// index push_recipients_awaiting_receipt.
	rows, err := tx.QueryContext(ctx, `UPDATE push_recipients SET status = $1, reason = $2, done_at = $3, updated_at = $3
WHERE id IN (SELECT id FROM push_recipients WHERE status = 'sent' AND sent_at < $4 ORDER BY sent_at LIMIT $5)
  AND status = 'sent'
RETURNING id, account`, StatusUnconfirmed, ReasonReceiptMissing, now, cutoff, sweepBatch)
	if err != nil {
		return 0, fmt.Errorf("push: sweep receipts: %w", err)
	}
	type marked struct {
		id      int64
		account string
	}
	var list []marked
	for rows.Next() {
		var m marked
		if err := rows.Scan(&m.id, &m.account); err != nil {
			rows.Close()
			return 0, fmt.Errorf("push: sweep receipts: %w", err)
		}
		list = append(list, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("push: sweep receipts: %w", err)
	}
	for _, m := range list {
		if err := s.emit(ctx, tx, EventMessageUnconfirmed, m.account, m.id); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("push: commit sweep: %w", err)
	}
	if len(list) > 0 {
		s.log.Info("recipients unconfirmed: no receipt within the timeout", "count", len(list), "receipt_timeout", s.opts.ReceiptTimeout)
	}
	return len(list), nil
}
