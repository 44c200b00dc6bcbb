package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/queue"
)

// The queue's figures are read from the shared table: a job waiting for a
// worker counts as available with its age, one due later as scheduled.
func TestCollector(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := waitCtx(t)
		q, err := queue.New(ctx, d, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Stop(ctx) })
		inserted := time.Now()
		if _, err := q.Insert(ctx, testArgs{Name: "now"}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Insert(ctx, testArgs{Name: "later"}, &river.InsertOpts{ScheduledAt: inserted.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		c := queue.NewCollector(d, func() time.Time { return inserted.Add(90 * time.Second) })
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		want := `
# HELP wxgate_queue_jobs Jobs in the shared queue by queue and state (available, scheduled, retryable, running).
# TYPE wxgate_queue_jobs gauge
wxgate_queue_jobs{queue="default",state="available"} 1
wxgate_queue_jobs{queue="default",state="retryable"} 0
wxgate_queue_jobs{queue="default",state="running"} 0
wxgate_queue_jobs{queue="default",state="scheduled"} 1
# HELP wxgate_queue_scrape_failed 1 when the last read of the queue's figures failed.
# TYPE wxgate_queue_scrape_failed gauge
wxgate_queue_scrape_failed 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "wxgate_queue_jobs", "wxgate_queue_scrape_failed"); err != nil {
			t.Error(err)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "wxgate_queue_oldest_available_age_seconds" {
				if age := f.GetMetric()[0].GetGauge().GetValue(); age < 85 || age > 95 {
					t.Errorf("oldest available job is %.1f s old, want about 90", age)
				}
				return
			}
		}
		t.Error("no wxgate_queue_oldest_available_age_seconds")
	})
}
