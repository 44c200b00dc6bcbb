package main

import (
	"fmt"
	"io"
)

type report struct {
	Label             string         `json:"label"`
	Database          string         `json:"database,omitempty"`
	Recipients        int            `json:"recipients"`
	Workers           int            `json:"workers,omitempty"`
	Instances         int            `json:"instances,omitempty"`
	Callbacks         bool           `json:"callbacks,omitempty"`
	Throughput        *phase         `json:"throughput,omitempty"`
	Steady            *phase         `json:"steady,omitempty"`
	SimOnly           *simOnlyResult `json:"sim_only,omitempty"`
	GatewayPeakRSSMiB float64        `json:"gateway_peak_rss_mib,omitempty"`
	GatewayErrors     bool           `json:"gateway_logged_errors,omitempty"`
	Verified          error          `json:"-"`
	VerifiedText      string         `json:"verified"`
}

type phase struct {
	Recipients           int     `json:"recipients"`
	Requests             int     `json:"requests"`
	RecipientsPerRequest int     `json:"recipients_per_request"`
	TargetPerSecond      float64 `json:"target_per_second,omitempty"`
	LateRequests         int     `json:"late_requests,omitempty"`
	// Seconds from the first request to the last sent_at; PerSecond is
	// Recipients over it.
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"per_second"`
	AcceptSeconds   float64 `json:"accept_seconds"`
	AcceptPerSecond float64 `json:"accept_per_second"`
	// SendPerSecond is Recipients over first to last sent_at.
	SendPerSecond  float64   `json:"send_per_second"`
	RequestLatency latencies `json:"request_latency"`
	// Latency is sent_at − queued_at of every recipient.
	Latency   latencies `json:"accept_to_sent"`
	NotSent   int       `json:"not_sent"`
	Retried   int       `json:"retried"`
	Resources resources `json:"resources"`
}

type resources struct {
	WallSeconds       float64 `json:"wall_seconds"`
	GatewayCPUSeconds float64 `json:"gateway_cpu_seconds"`
	SimCPUSeconds     float64 `json:"simulator_cpu_seconds"`
}

type simOnlyResult struct {
	Concurrency     int       `json:"concurrency"`
	Sends           int       `json:"sends"`
	Seconds         float64   `json:"seconds"`
	PerSecond       float64   `json:"per_second"`
	Latency         latencies `json:"latency"`
	SimCPUPerSendUS float64   `json:"simulator_cpu_per_send_us"`
	SimPeakRSSMiB   float64   `json:"simulator_peak_rss_mib"`
}

// checkStatuses fails when a recipient was not sent.
func (r *report) checkStatuses(total int) error {
	notSent := 0
	for _, p := range []*phase{r.Throughput, r.Steady} {
		if p != nil {
			notSent += p.NotSent
		}
	}
	if notSent > 0 {
		return verifyError{fmt.Sprintf("gateway: %d of %d recipients are not sent", notSent, total)}
	}
	return nil
}

func (r *report) verifyErr() error {
	r.VerifiedText = "every follower received exactly one card; every recipient sent"
	if r.SimOnly != nil {
		r.VerifiedText = "every follower received exactly one card"
	}
	if r.Verified != nil {
		r.VerifiedText = r.Verified.Error()
	}
	return r.Verified
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n%s — %d recipients", r.Label, r.Recipients)
	if r.Workers > 0 {
		fmt.Fprintf(w, ", push.workers %d", r.Workers)
	}
	if r.Instances > 1 {
		fmt.Fprintf(w, ", %d instances", r.Instances)
	}
	if r.Callbacks {
		fmt.Fprintf(w, ", delivery receipts on")
	}
	fmt.Fprintln(w)
	if s := r.SimOnly; s != nil {
		fmt.Fprintf(w, "| clients | sends | sends/s | p50 ms | p99 ms | max ms | sim CPU µs/send | sim peak RSS MiB |\n")
		fmt.Fprintf(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(w, "| %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f |\n", s.Concurrency, s.Sends, s.PerSecond,
			s.Latency.P50, s.Latency.P99, s.Latency.Max, s.SimCPUPerSendUS, s.SimPeakRSSMiB)
	}
	if r.Throughput != nil || r.Steady != nil {
		fmt.Fprintf(w, "| phase | recipients | per request | msg/s accept→sent | accepted/s | sent/s | accept→sent p50 ms | p99 ms | max ms | request p99 ms | gateway CPU s | sim CPU s |\n")
		fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range []struct {
			name string
			p    *phase
		}{{"throughput", r.Throughput}, {"steady", r.Steady}} {
			p := x.p
			if p == nil {
				continue
			}
			name := x.name
			if p.TargetPerSecond > 0 {
				name = fmt.Sprintf("steady %.0f/s", p.TargetPerSecond)
			}
			fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", name, p.Recipients, p.RecipientsPerRequest,
				p.PerSecond, p.AcceptPerSecond, p.SendPerSecond, p.Latency.P50, p.Latency.P99, p.Latency.Max, p.RequestLatency.P99,
				p.Resources.GatewayCPUSeconds, p.Resources.SimCPUSeconds)
		}
	}
	if p := r.Throughput; p != nil && p.Recipients > 0 {
		instances := max(r.Instances, 1)
		fmt.Fprintf(w, "gateway CPU per message: %.0f µs (all %d instances together; %.0f µs per instance per message)\n",
			p.Resources.GatewayCPUSeconds/float64(p.Recipients)*1e6, instances,
			p.Resources.GatewayCPUSeconds/float64(p.Recipients)*1e6/float64(instances))
	}
	if r.GatewayPeakRSSMiB > 0 {
		fmt.Fprintf(w, "gateway peak RSS: %.0f MiB\n", r.GatewayPeakRSSMiB)
	}
	for _, p := range []*phase{r.Throughput, r.Steady} {
		if p != nil && (p.Retried > 0 || p.LateRequests > 0) {
			fmt.Fprintf(w, "note: %d recipients needed more than one attempt; %d steady requests started late\n", p.Retried, p.LateRequests)
		}
	}
	fmt.Fprintf(w, "verification: %s\n", r.VerifiedText)
}
