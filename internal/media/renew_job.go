package media

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// RenewArgs is the hourly job that uploads again the temporary files reply
// rules name, before WeChat forgets them.
type RenewArgs struct{}

// Kind is River's job kind.
func (RenewArgs) Kind() string { return "media_renew" }

// RenewWorker runs RenewArgs.
type RenewWorker struct {
	river.WorkerDefaults[RenewArgs]
	l *Library
}

// RenewWorker returns the worker to register.
func (l *Library) RenewWorker() *RenewWorker { return &RenewWorker{l: l} }

// Work renews what is due.
func (w *RenewWorker) Work(ctx context.Context, _ *river.Job[RenewArgs]) error {
	_, err := w.l.Renew(ctx)
	return err
}

type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// RenewJob is the periodic renewal: River's leader inserts it once per
// hour for the cluster. Two renewals at once would upload a file twice,
// which is harmless (the row keeps the newer id).
func (l *Library) RenewJob() *river.PeriodicJob {
	return river.NewPeriodicJob(every(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
		return RenewArgs{}, &river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: 3,
			UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}
	}, &river.PeriodicJobOpts{ID: "media_renew", RunOnStart: true})
}
