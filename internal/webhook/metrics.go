package webhook

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/db"
)

// Collector reports the webhook backlog of every instance (deliveries not
// yet accepted by their receiver) from the shared table at scrape time.
type Collector struct {
	db      *db.DB
	now     func() time.Time
	pending *prometheus.Desc
	age     *prometheus.Desc
}

// NewCollector reads webhook_deliveries of d; register it on the metrics
// registry.
func NewCollector(d *db.DB, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{db: d, now: now,
		pending: prometheus.NewDesc("wxgate_webhook_pending_deliveries", "Webhook deliveries waiting for their receiver to accept them (first try or a retry).", nil, nil),
		age:     prometheus.NewDesc("wxgate_webhook_oldest_pending_age_seconds", "Age of the oldest pending webhook delivery (0 when none).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.age
}

// Collect implements prometheus.Collector; a failed read reports nothing
// (the queue collector's wxgate_queue_scrape_failed tells the database is
// unreachable).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&n); err != nil {
		return
	}
	// The column itself, not min(): SQLite's aggregate loses the column's
	// DATETIME type and the driver would hand back text.
	var oldest sql.NullTime
	err := c.db.QueryRowContext(ctx, `SELECT created_at FROM webhook_deliveries WHERE status = 'pending' ORDER BY created_at LIMIT 1`).Scan(&oldest)
	if err != nil && err != sql.ErrNoRows {
		return
	}
	age := 0.0
	if oldest.Valid && c.now().After(oldest.Time) {
		age = c.now().Sub(oldest.Time).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, age)
}
