package token

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the brokers' calls to WeChat's token endpoint. Build it
// once per registry (NewMetrics) and share it through Options; a nil
// *Metrics counts nothing.
type Metrics struct {
	fetches *prometheus.CounterVec
}

// NewMetrics registers wxgate_token_fetches_total on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wxgate_token_fetches_total",
		Help: "Calls of this instance to WeChat's token endpoint, by account and result (ok, error).",
	}, []string{"account", "result"})}
	reg.MustRegister(m.fetches)
	return m
}

// Init makes an account's series exist at zero, so that rate() and the
// alert rules see them before the first fetch.
func (m *Metrics) Init(account string) {
	if m == nil {
		return
	}
	m.fetches.WithLabelValues(account, "ok")
	m.fetches.WithLabelValues(account, "error")
}

func (m *Metrics) fetched(account string, ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.fetches.WithLabelValues(account, result).Inc()
}
