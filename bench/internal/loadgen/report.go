package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the JSON written by callbackload --json.
type Report struct {
	Label      string    `json:"label"`
	URL        string    `json:"url"`
	Started    time.Time `json:"started"`
	GoVersion  string    `json:"go_version"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	Levels     []Result  `json:"levels"`
}

// Failures is the total of failed answers, warmups included.
func (r *Report) Failures() int {
	n := 0
	for _, l := range r.Levels {
		n += l.Failures + l.WarmupFailures
	}
	return n
}

// WriteTable prints the levels as an aligned table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%s — %s\n", r.Label, r.URL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tfailures\tserver CPU µs/req\tclient CPU µs/req\t")
	for _, l := range r.Levels {
		note := ""
		if l.Exhausted {
			note = " (ran out of pushes: raise -n)"
		}
		server := "-"
		if l.ServerCPU > 0 {
			server = fmt.Sprintf("%.0f", l.ServerCPU)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%.0f\t%s\n",
			l.Concurrency, l.Requests, l.RPS, l.P50, l.P90, l.P99, l.Max, l.Failures+l.WarmupFailures, server, l.ClientCPU, note)
	}
	tw.Flush()
}

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteFile.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Target is the performance goal of the callback path: at Concurrency, the
// candidate's throughput is at least MinRatio of the baseline's and its p99
// latency is below MaxP99.
type Target struct {
	Concurrency int
	MinRatio    float64
	MaxP99      time.Duration
}

// Compare prints the candidate against the baseline level by level and the
// target check. It reports whether the target is met.
func Compare(w io.Writer, base, cand *Report, t Target) bool {
	fmt.Fprintf(w, "%s vs %s\n", cand.Label, base.Label)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "concurrency\t%s req/s\t%s req/s\tratio\t%s p99 ms\t%s p99 ms\t%s CPU µs/req\t%s CPU µs/req\t\n", base.Label, cand.Label, base.Label, cand.Label, base.Label, cand.Label)
	var at *Result
	var atRatio float64
	for i := range cand.Levels {
		c := &cand.Levels[i]
		b := base.level(c.Concurrency)
		if b == nil {
			fmt.Fprintf(tw, "%d\t-\t%.0f\t-\t-\t%.2f\t\n", c.Concurrency, c.RPS, c.P99)
			continue
		}
		ratio := 0.0
		if b.RPS > 0 {
			ratio = c.RPS / b.RPS
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f%%\t%.2f\t%.2f\t%s\t%s\t\n", c.Concurrency, b.RPS, c.RPS, 100*ratio, b.P99, c.P99, cpu(b.ServerCPU), cpu(c.ServerCPU))
		if c.Concurrency == t.Concurrency {
			at, atRatio = c, ratio
		}
	}
	tw.Flush()
	if at == nil {
		fmt.Fprintf(w, "target: no level at concurrency %d in both reports\n", t.Concurrency)
		return false
	}
	maxP99 := float64(t.MaxP99) / float64(time.Millisecond)
	okRatio, okP99 := atRatio >= t.MinRatio, at.P99 < maxP99
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(w, "target at concurrency %d: throughput ≥ %.0f%% of %s: %.0f%% — %s; p99 < %.0f ms: %.2f ms — %s\n",
		t.Concurrency, 100*t.MinRatio, base.Label, 100*atRatio, verdict(okRatio), maxP99, at.P99, verdict(okP99))
	ok := okRatio && okP99
	fmt.Fprintf(w, "target: %s\n", strings.ToUpper(verdict(ok)))
	return ok
}

// Round is one run of the baseline and the candidate, back to back.
type Round struct{ Base, Cand *Report }

// CompareRounds prints, for the target's concurrency, the candidate against
// the baseline in each round and the spread over the rounds, and checks the
// target on the medians: on a machine shared with other work each round
// varies, while the two servers of one round saw about the same machine.
// It reports whether the target is met.
func CompareRounds(w io.Writer, rounds []Round, t Target) bool {
	if len(rounds) == 0 {
		fmt.Fprintln(w, "target: no rounds")
		return false
	}
	var ratios, p99s, baseRPS, candRPS, baseCPU, candCPU []float64
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\t%s req/s\t%s req/s\tratio\t%s p99 ms\t%s p99 ms\t%s CPU µs/req\t%s CPU µs/req\t\n",
		rounds[0].Base.Label, rounds[0].Cand.Label, rounds[0].Base.Label, rounds[0].Cand.Label, rounds[0].Base.Label, rounds[0].Cand.Label)
	for i, r := range rounds {
		b, c := r.Base.level(t.Concurrency), r.Cand.level(t.Concurrency)
		if b == nil || c == nil || b.RPS <= 0 {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t-\t-\t-\t\n", i+1)
			continue
		}
		ratio := c.RPS / b.RPS
		ratios, p99s = append(ratios, ratio), append(p99s, c.P99)
		baseRPS, candRPS = append(baseRPS, b.RPS), append(candRPS, c.RPS)
		baseCPU, candCPU = append(baseCPU, b.ServerCPU), append(candCPU, c.ServerCPU)
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f%%\t%.2f\t%.2f\t%s\t%s\t\n", i+1, b.RPS, c.RPS, 100*ratio, b.P99, c.P99, cpu(b.ServerCPU), cpu(c.ServerCPU))
	}
	tw.Flush()
	if len(ratios) == 0 {
		fmt.Fprintf(w, "target: no level at concurrency %d in both reports of any round\n", t.Concurrency)
		return false
	}
	spread := func(v []float64, format string) string {
		lo, mid, hi := Spread(v)
		return fmt.Sprintf(format+"\t("+format+" – "+format+")", mid, lo, hi)
	}
	pct := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = 100 * x
		}
		return out
	}
	base, cand := rounds[0].Base.Label, rounds[0].Cand.Label
	fmt.Fprintf(w, "over %d rounds at concurrency %d: median (min – max)\n", len(ratios), t.Concurrency)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s req/s\t%s\n", base, spread(baseRPS, "%.0f"))
	fmt.Fprintf(tw, "  %s req/s\t%s\n", cand, spread(candRPS, "%.0f"))
	fmt.Fprintf(tw, "  ratio\t%s\n", spread(pct(ratios), "%.0f%%"))
	fmt.Fprintf(tw, "  %s p99 ms\t%s\n", cand, spread(p99s, "%.1f"))
	fmt.Fprintf(tw, "  %s server CPU µs/req\t%s\n", base, spread(baseCPU, "%.0f"))
	fmt.Fprintf(tw, "  %s server CPU µs/req\t%s\n", cand, spread(candCPU, "%.0f"))
	tw.Flush()
	_, ratio, _ := Spread(ratios)
	_, p99, _ := Spread(p99s)
	maxP99 := float64(t.MaxP99) / float64(time.Millisecond)
	okRatio, okP99 := ratio >= t.MinRatio, p99 < maxP99
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(w, "target at concurrency %d (medians): throughput ≥ %.0f%% of %s: %.0f%% — %s; p99 < %.0f ms: %.2f ms — %s\n",
		t.Concurrency, 100*t.MinRatio, base, 100*ratio, verdict(okRatio), maxP99, p99, verdict(okP99))
	ok := okRatio && okP99
	fmt.Fprintf(w, "target: %s\n", strings.ToUpper(verdict(ok)))
	return ok
}

// Spread returns the smallest, the median and the largest of v (the mean
// of the middle two for an even count); zeros for none.
func Spread(v []float64) (lo, median, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], median, s[n-1]
}

func cpu(us float64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", us)
}

func (r *Report) level(c int) *Result {
	for i := range r.Levels {
		if r.Levels[i].Concurrency == c {
			return &r.Levels[i]
		}
	}
	return nil
}
