package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/db"
)

// Collector reports the shared queue as every instance sees it: jobs by
// queue and state, and how long the oldest available job has waited. It
// reads river_job at scrape time, so one instance's figures are the
// cluster's; each scrape costs two grouped queries.
type Collector struct {
	db    *db.DB
	now   func() time.Time
	jobs  *prometheus.Desc
	age   *prometheus.Desc
	fails *prometheus.Desc
}

// NewCollector reads river_job of d; register it on the metrics registry.
func NewCollector(d *db.DB, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{
		db:  d,
		now: now,
		jobs: prometheus.NewDesc("wxgate_queue_jobs", "Jobs in the shared queue by queue and state (available, scheduled, retryable, running).",
			[]string{"queue", "state"}, nil),
		age: prometheus.NewDesc("wxgate_queue_oldest_available_age_seconds", "How long the oldest job ready to run has waited for a worker, by queue (0 when none waits).",
			[]string{"queue"}, nil),
		fails: prometheus.NewDesc("wxgate_queue_scrape_failed", "1 when the last read of the queue's figures failed.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.age
	ch <- c.fails
}

// watchedStates are the states of work not done yet; completed, cancelled
// and discarded jobs are history.
var watchedStates = []string{"available", "scheduled", "retryable", "running"}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if err := c.collect(ctx, ch); err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.fails, prometheus.GaugeValue, failed)
}

func (c *Collector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.QueryContext(ctx, `SELECT queue, state, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY queue, state`)
	if err != nil {
		return fmt.Errorf("queue: counting jobs: %w", err)
	}
	counts := map[[2]string]float64{}
	queues := map[string]bool{DefaultQueue: true}
	for rows.Next() {
		var queue, state string
		var n float64
		if err := rows.Scan(&queue, &state, &n); err != nil {
			rows.Close()
			return fmt.Errorf("queue: counting jobs: %w", err)
		}
		counts[[2]string{queue, state}] = n
		queues[queue] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("queue: counting jobs: %w", err)
	}
	for q := range queues {
		for _, st := range watchedStates {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, counts[[2]string{q, st}], q, st)
		}
	}

	// River writes its own times on SQLite as text in UTC; they are read
	// back as whichever type the driver gives.
	rows, err = c.db.QueryContext(ctx, `SELECT queue, min(scheduled_at) FROM river_job WHERE state = 'available' GROUP BY queue`)
	if err != nil {
		return fmt.Errorf("queue: oldest job: %w", err)
	}
	defer rows.Close()
	oldest := map[string]time.Time{}
	for rows.Next() {
		var queue string
		var at any
		if err := rows.Scan(&queue, &at); err != nil {
			return fmt.Errorf("queue: oldest job: %w", err)
		}
		if t, ok := riverTime(at); ok {
			oldest[queue] = t
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("queue: oldest job: %w", err)
	}
	now := c.now()
	for q := range queues {
		age := 0.0
		if t, ok := oldest[q]; ok && now.After(t) {
			age = now.Sub(t).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age, q)
	}
	return nil
}

// riverTime reads a river_job timestamp: time.Time on PostgreSQL, text
// on SQLite.
func riverTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case []byte:
		return riverTime(string(x))
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
