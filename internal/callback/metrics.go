package callback

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unknownAccountLabel stands for every name that is not configured, so a
// scanner trying paths cannot grow the label set.
const unknownAccountLabel = "_unknown"

type metrics struct {
	requests   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	hookErrors *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_callback_requests_total",
			Help: "WeChat callback requests by account and outcome: verified, replied, empty, deferred, duplicate, or the error code of a refusal.",
		}, []string{"account", "outcome"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_callback_duplicates_total",
			Help: "Pushes recognised as WeChat retries of a push already logged.",
		}, []string{"account"}),
		hookErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_callback_hook_errors_total",
			Help: "Callback hooks (follower updates, profile fetches, …) that failed.",
		}, []string{"account"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wxgate_callback_duration_seconds",
			Help: "Time from receiving a callback to writing its answer.",
			// WeChat gives up at 5 s; the interesting range is well below.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 4, 5},
		}, []string{"account"}),
	}
	if reg == nil {
		return m
	}
	m.requests = register(reg, m.requests)
	m.duplicates = register(reg, m.duplicates)
	m.hookErrors = register(reg, m.hookErrors)
	m.duration = register(reg, m.duration)
	return m
}

// register registers c, or returns the collector already registered under
// its name, so two handlers on one registry (tests, a restart in-process)
// share the series instead of failing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// initAccount makes an account's everyday series exist at zero, so that
// rate() and the alert rules (deploy/prometheus) see them from the start.
func (m *metrics) initAccount(account string) {
	for _, outcome := range []string{outcomeVerified, outcomeReplied, outcomeEmpty, outcomeDeferred, outcomeDuplicate,
		CodeInvalidSignature, CodeInvalidMsgSignature, CodeDecryptFailed, CodeStorageUnavailable} {
		m.requests.WithLabelValues(account, outcome)
	}
	m.duplicates.WithLabelValues(account)
	m.hookErrors.WithLabelValues(account)
	m.duration.WithLabelValues(account)
}

func (m *metrics) observe(account, outcome string, start time.Time) {
	m.requests.WithLabelValues(account, outcome).Inc()
	m.duration.WithLabelValues(account).Observe(time.Since(start).Seconds())
}
