package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Level is one concurrency level of a run.
type Level struct {
	Concurrency int
	// Requests is how many distinct pushes the level may send; all of them
	// unless Duration ends the level first.
	Requests int
	// Duration, when positive, ends the level after this long.
	Duration time.Duration
	// Warmup pushes are sent (and verified) before the timed part, at the
	// same concurrency, to open connections and fill caches.
	Warmup int
	// Stream builds each push just before sending it and verifies its
	// answer at once, for Duration, instead of building Requests ahead:
	// a sustained run holds no more than the latencies in memory. Meant
	// for a load generator on a core of its own.
	Stream bool
}

// Result is what one level measured. Latencies are in milliseconds, from
// sending the request to having read the whole answer.
type Result struct {
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"requests_per_second"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	Failures    int     `json:"failures"`
	// FailureKinds counts failures by kind (http_500, decrypt, transport, …).
	FailureKinds   map[string]int `json:"failure_kinds,omitempty"`
	WarmupRequests int            `json:"warmup_requests"`
	WarmupFailures int            `json:"warmup_failures"`
	// Exhausted is set when a timed level ran out of pushes before its
	// duration: raise -n.
	Exhausted bool `json:"exhausted,omitempty"`
	// ServerCPU is the server's CPU time per request during the timed part
	// (microseconds; 0 when its pid was not given), ClientCPU the load
	// generator's own. On a small machine both share the cores.
	ServerCPU float64 `json:"server_cpu_us_per_request,omitempty"`
	ClientCPU float64 `json:"client_cpu_us_per_request,omitempty"`
}

// NewClient is the one HTTP client of a run: keep-alive connections, at
// least as many idle ones per host as the highest concurrency, no
// compression, and a per-request timeout well above WeChat's 5 s.
func NewClient(maxConcurrency int) *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // 127.0.0.1 only; never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        maxConcurrency,
			MaxIdleConnsPerHost: maxConcurrency,
			MaxConnsPerHost:     maxConcurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Runner runs levels against one callback URL.
type Runner struct {
	// Client sends the burst levels' pushes. A sustained level does not use
	// it: each of its workers has a keep-alive connection of its own.
	Client   *http.Client
	Builder  *Builder
	Verifier *Verifier
	// Log receives examples of failures (the first of each kind).
	Log io.Writer
	// ServerPID, when set, is the server process whose CPU time is
	// measured over each timed part (Linux).
	ServerPID int

	examples map[string]bool
}

// RunLevel sends the level's warmup, then its timed pushes, and verifies
// every answer. Pushes are built before the timed part starts.
func (r *Runner) RunLevel(ctx context.Context, lv Level) (Result, error) {
	if lv.Stream {
		return r.runStream(ctx, lv)
	}
	if lv.Concurrency < 1 || lv.Requests < 1 {
		return Result{}, fmt.Errorf("a level needs concurrency ≥ 1 and requests ≥ 1 (got %d, %d)", lv.Concurrency, lv.Requests)
	}
	res := Result{Concurrency: lv.Concurrency}
	if lv.Warmup > 0 {
		warm, err := r.Builder.Build(lv.Warmup, time.Now())
		if err != nil {
			return res, err
		}
		samples, _, _ := fire(ctx, r.Client, warm, lv.Concurrency, 0)
		res.WarmupRequests = len(samples)
		res.WarmupFailures, _ = r.verify(warm, samples)
	}

	pushes, err := r.Builder.Build(lv.Requests, time.Now())
	if err != nil {
		return res, err
	}
	server0, serverErr := r.serverCPU()
	client0 := selfCPU()
	samples, elapsed, exhausted := fire(ctx, r.Client, pushes, lv.Concurrency, lv.Duration)
	client1 := selfCPU()
	server1, serverErr1 := r.serverCPU()
	if len(samples) > 0 {
		perRequest := func(d time.Duration) float64 {
			return math.Round(float64(d)/float64(time.Microsecond)/float64(len(samples))*10) / 10
		}
		res.ClientCPU = perRequest(client1 - client0)
		if serverErr == nil && serverErr1 == nil && r.ServerPID > 0 {
			res.ServerCPU = perRequest(server1 - server0)
		}
	}
	res.Requests = len(samples)
	res.Seconds = elapsed.Seconds()
	res.Exhausted = lv.Duration > 0 && exhausted
	if elapsed > 0 {
		res.RPS = float64(len(samples)) / elapsed.Seconds()
	}
	res.Failures, res.FailureKinds = r.verify(pushes, samples)

	lat := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		if s.err == nil {
			lat = append(lat, s.latency)
		}
	}
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.90)), ms(percentile(lat, 0.99))
	if len(lat) > 0 {
		res.Max = ms(lat[len(lat)-1])
	}
	return res, ctx.Err()
}

func (r *Runner) serverCPU() (time.Duration, error) {
	if r.ServerPID <= 0 {
		return 0, nil
	}
	return processCPU(r.ServerPID)
}

// verify checks every answer and counts the failures by kind, writing the
// first example of each kind to the log.
func (r *Runner) verify(pushes []Push, samples []sample) (int, map[string]int) {
	if r.examples == nil {
		r.examples = map[string]bool{}
	}
	kinds := map[string]int{}
	failures := 0
	for _, s := range samples {
		var f *Failure
		if s.err != nil {
			f = &Failure{Kind: "transport", Detail: s.err.Error()}
		} else {
			f = r.Verifier.Check(pushes[s.index], s.status, s.body)
		}
		if f == nil {
			continue
		}
		failures++
		kinds[f.Kind]++
		if !r.examples[f.Kind] && r.Log != nil {
			r.examples[f.Kind] = true
			fmt.Fprintf(r.Log, "failure (first of its kind) for MsgId %d: %v\n", pushes[s.index].MsgID, f)
		}
	}
	if len(kinds) == 0 {
		kinds = nil
	}
	return failures, kinds
}

type sample struct {
	index   int
	status  int
	body    []byte
	err     error
	latency time.Duration
}

// fire sends pushes from conc workers until they run out or dur passes
// (dur ≤ 0: until they run out). Answers are kept and verified afterwards,
// so the client spends as little CPU as possible while the clock runs.
func fire(ctx context.Context, client *http.Client, pushes []Push, conc int, dur time.Duration) ([]sample, time.Duration, bool) {
	var next atomic.Int64
	per := make([][]sample, conc)
	var wg sync.WaitGroup
	start := time.Now()
	var deadline time.Time
	if dur > 0 {
		deadline = start.Add(dur)
	}
	for w := range conc {
		per[w] = make([]sample, 0, len(pushes)/conc+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(pushes) {
					return
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				per[w] = append(per[w], send(ctx, client, pushes[i], i))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	exhausted := next.Load() >= int64(len(pushes))
	var n int
	for _, p := range per {
		n += len(p)
	}
	all := make([]sample, 0, n)
	for _, p := range per {
		all = append(all, p...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].index < all[j].index })
	return all, elapsed, exhausted
}

func send(ctx context.Context, client *http.Client, p Push, i int) sample {
	s := sample{index: i}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		s.err = err
		return s
	}
	req.Header.Set("Content-Type", "text/xml")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		return s
	}
	s.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	s.latency = time.Since(t0)
	s.status = resp.StatusCode
	if err != nil {
		s.err = err
	}
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// runStream is RunLevel for a sustained level: Warmup pushes, then
// pushes built, sent and verified one after the other by each worker until
// Duration has passed. Each worker has a connection of its own
// (keepAliveConn), kept from the warmup to the timed part.
func (r *Runner) runStream(ctx context.Context, lv Level) (Result, error) {
	if lv.Concurrency < 1 || lv.Duration <= 0 {
		return Result{}, fmt.Errorf("a sustained level needs concurrency ≥ 1 and a duration (got %d, %v)", lv.Concurrency, lv.Duration)
	}
	conns := make([]*keepAliveConn, lv.Concurrency)
	for i := range conns {
		c, err := newKeepAliveConn(r.Builder.base)
		if err != nil {
			return Result{}, err
		}
		conns[i] = c
		defer c.close()
		// A stopped run ends the exchanges in progress.
		defer context.AfterFunc(ctx, c.interrupt)()
	}
	res := Result{Concurrency: lv.Concurrency}
	if lv.Warmup > 0 {
		warm := r.stream(ctx, conns, lv.Warmup, 0)
		res.WarmupRequests, res.WarmupFailures = warm.requests, warm.failures
	}
	server0, serverErr := r.serverCPU()
	client0 := selfCPU()
	start := time.Now()
	timed := r.stream(ctx, conns, 0, lv.Duration)
	elapsed := time.Since(start)
	client1 := selfCPU()
	server1, serverErr1 := r.serverCPU()
	res.Requests, res.Failures, res.FailureKinds = timed.requests, timed.failures, timed.kinds
	res.Seconds = elapsed.Seconds()
	if timed.requests > 0 {
		perRequest := func(d time.Duration) float64 {
			return math.Round(float64(d)/float64(time.Microsecond)/float64(timed.requests)*10) / 10
		}
		res.ClientCPU = perRequest(client1 - client0)
		if serverErr == nil && serverErr1 == nil && r.ServerPID > 0 {
			res.ServerCPU = perRequest(server1 - server0)
		}
		res.RPS = float64(timed.requests) / elapsed.Seconds()
	}
	lat := timed.latencies
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.90)), ms(percentile(lat, 0.99))
	if len(lat) > 0 {
		res.Max = ms(lat[len(lat)-1])
	}
	return res, ctx.Err()
}

type streamed struct {
	requests, failures int
	kinds              map[string]int
	latencies          []time.Duration // of the verified answers
}

// stream runs a worker per connection that builds, sends and verifies
// pushes until n have been sent (n > 0) or dur has passed.
func (r *Runner) stream(ctx context.Context, conns []*keepAliveConn, n int, dur time.Duration) streamed {
	var sent atomic.Int64
	deadline := time.Now().Add(dur)
	per := make([]streamed, len(conns))
	var wg sync.WaitGroup
	var logMu sync.Mutex
	logFailure := func(format string, args ...any) {
		if r.Log != nil {
			logMu.Lock()
			fmt.Fprintf(r.Log, format, args...)
			logMu.Unlock()
		}
	}
	for w, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := &per[w]
			out.kinds = map[string]int{}
			var push pushBuffers
			var check checkBuffers
			// The end of an exchange is the time of the next push: the
			// verification in between takes microseconds.
			now := time.Now()
			for ctx.Err() == nil {
				if n > 0 && sent.Add(1) > int64(n) {
					return
				}
				if dur > 0 && !now.Before(deadline) {
					return
				}
				if err := r.Builder.build(&push, now); err != nil {
					logFailure("worker %d stops: %v\n", w, err)
					return
				}
				sentAt := time.Now()
				status, answer, err := conn.post(ctx, sentAt, push.query, push.body)
				now = time.Now()
				latency := now.Sub(sentAt)
				if ctx.Err() != nil && err != nil {
					return // interrupted: not the server's failure
				}
				out.requests++
				var f *Failure
				if err != nil {
					f = &Failure{Kind: "transport", Detail: err.Error()}
				} else {
					f = r.Verifier.check(&check, push.openID, status, answer)
				}
				if f == nil {
					out.latencies = append(out.latencies, latency)
					continue
				}
				out.failures++
				out.kinds[f.Kind]++
				if out.kinds[f.Kind] == 1 {
					logFailure("failure for MsgId %d: %v\n", push.msgID, f)
				}
			}
		}()
	}
	wg.Wait()
	all := streamed{kinds: map[string]int{}}
	for _, p := range per {
		all.requests += p.requests
		all.failures += p.failures
		all.latencies = append(all.latencies, p.latencies...)
		for k, v := range p.kinds {
			all.kinds[k] += v
		}
	}
	if len(all.kinds) == 0 {
		all.kinds = nil
	}
	return all
}
