package push

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Metrics counts this instance's send calls and final failures. Build it
// once per registry (NewMetrics) and pass it in Options; a nil *Metrics
// counts nothing.
type Metrics struct {
	calls  *prometheus.CounterVec
	failed *prometheus.CounterVec
}

// NewMetrics registers wxgate_push_calls_total and wxgate_push_failed_total.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_push_calls_total",
			Help: "Send calls to WeChat by account, channel, result (ok, error) and errcode (0 when ok, \"network\" without an answer).",
		}, []string{"account", "channel", "result", "errcode"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_push_failed_total",
			Help: "Recipients failed for good, by account, channel and reason (not_subscribed, no_grant, invalid_template, outcome_unknown, …).",
		}, []string{"account", "channel", "reason"}),
	}
	reg.MustRegister(m.calls, m.failed)
	return m
}

// init makes the everyday series exist at zero for the alert rules.
func (m *Metrics) init(accounts []config.Account) {
	if m == nil {
		return
	}
	for _, a := range accounts {
		channels := []string{ChannelTemplate, ChannelSubscribe, ChannelCustom}
		if a.Kind == config.KindMiniProgram {
			channels = []string{ChannelMPSubscribe, ChannelCustom}
		}
		for _, ch := range channels {
			m.calls.WithLabelValues(a.Name, ch, "ok", "0")
			for _, reason := range failReasons {
				m.failed.WithLabelValues(a.Name, ch, reason)
			}
		}
	}
}

// failReasons are the reasons a recipient fails for good (failReason and
// the pipeline's own).
var failReasons = []string{"invalid_openid", "invalid_template", ReasonNotSubscribed, ReasonNoGrant, "invalid_data",
	ReasonOutsideWindow, "blacklisted", "wechat_error", "error", ReasonOutcomeUnknown}

func (m *Metrics) call(account, channel string, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.calls.WithLabelValues(account, channel, "ok", "0").Inc()
		return
	}
	code := "network"
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		code = strconv.Itoa(apiErr.Code)
	}
	m.calls.WithLabelValues(account, channel, "error", code).Inc()
}

func (m *Metrics) fail(account, channel, reason string) {
	if m == nil {
		return
	}
	m.failed.WithLabelValues(account, channel, reason).Inc()
}
