package push_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/token"
)

// instanceHeader names the instance that made a call to the simulator.
const instanceHeader = "X-Test-Instance"

// callRecorder records when each call reached the simulator and from
// which instance.
type callRecorder struct {
	mu    sync.Mutex
	calls []recordedCall
}

type recordedCall struct {
	path     string
	instance string
	at       time.Time
}

func (c *callRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.calls = append(c.calls, recordedCall{path: r.URL.Path, instance: r.Header.Get(instanceHeader), at: time.Now()})
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *callRecorder) of(path string) []recordedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recordedCall
	for _, rc := range c.calls {
		if rc.path == path {
			out = append(out, rc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// tagTransport marks each request with the instance that sent it.
type tagTransport struct {
	name string
	next http.RoundTripper
}

func (t tagTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(instanceHeader, t.name)
	return t.next.RoundTrip(r)
}

// peer is a second gateway instance on the bundle's database and
// simulator: its own token registry, River client and push service.
type peer struct {
	svc *push.Service
	q   *queue.Queue
}

// peer builds a second instance; start starts its workers.
func (b *bundle) peer(t *testing.T, name string, start bool) *peer {
	t.Helper()
	tokens := token.NewRegistry(b.db, token.Options{Now: b.clock.Now})
	hc := &http.Client{Transport: tagTransport{name: name, next: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for _, a := range accounts(b.simURL) {
		if _, err := tokens.AddAccount(a, token.AccountOptions{HTTPClient: hc, FailoverCooldown: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	workers := river.NewWorkers()
	q, err := queue.New(context.Background(), b.db, queue.Options{PollInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second,
		Workers: workers, Queues: map[string]int{queue.DefaultQueue: 2, push.Queue: 20}})
	if err != nil {
		t.Fatal(err)
	}
	opts := b.opts
	opts.Clients, opts.Jobs, opts.Events = tokens, q, &recordedEvents{}
	opts.Windows = msglog.NewWindows(b.db)
	svc, err := push.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	river.AddWorker(workers, svc.Worker())
	p := &peer{svc: svc, q: q}
	if start {
		p.start(t)
	}
	return p
}

func (p *peer) start(t *testing.T) {
	t.Helper()
	if err := p.q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.q.Stop(ctx)
	})
}

// Two instances on one PostgreSQL database send, together, no faster than
// the account's rate: the bucket is the database's, not each process's.
func TestClusterRateLimitHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	const (
		rate  = 20.0
		burst = 4
		n     = 60
	)
	d := dbtest.Postgres(t)
	b := setup(t, d, setupOptions{work: true, opts: push.Options{Rate: rate, Burst: burst}})
	b.peer(t, "second", true)
	b.ready(t)
	var openids []string
	for i := range n {
		openids = append(openids, b.follower(t, fmt.Sprintf("f%d", i)))
	}
	before := len(b.calls.of(templatePath))
	res := b.send(t, visitRequest(openids...), push.SendOptions{})
	m := b.wait(t, res.Accepted.ID, 30*time.Second, "sent", "delivered")
	if m.Counts["sent"]+m.Counts["delivered"] != n {
		t.Fatalf("counts = %v", m.Counts)
	}
	calls := b.calls.of(templatePath)[before:]
	if len(calls) != n {
		t.Fatalf("%d template sends reached WeChat, want %d", len(calls), n)
	}
	byInstance := map[string]int{}
	for _, c := range calls {
		byInstance[c.instance]++
	}
	if byInstance[""] == 0 || byInstance["second"] == 0 {
		t.Errorf("sends by instance = %v; both should have sent", byInstance)
	}
	// In any stretch of time, no more sends than the burst plus what the
	// rate refills. The simulator stamps a call when it arrives, which on a
	// loaded machine can lag the bucket's grant, so calls granted apart may
	// arrive bunched: the window is widened by that lag (jitter) and one
	// send of tolerance. Two unshared buckets would send 2x the rate and
	// still fail this by far.
	const (
		tolerance = 1
		jitter    = 300 * time.Millisecond
	)
	worst := 0.0
	for i := range calls {
		for j := i; j < len(calls); j++ {
			allowed := burst + rate*(calls[j].at.Sub(calls[i].at)+jitter).Seconds()
			worst = max(worst, float64(j-i+1)-allowed)
		}
	}
	if worst > tolerance {
		t.Errorf("the combined rate went over the limit by %.1f sends (sends by instance %v)", worst, byInstance)
	}
	span := calls[len(calls)-1].at.Sub(calls[0].at)
	if minSpan := time.Duration(float64(n-burst-tolerance)/rate*float64(time.Second)) - jitter; span < minSpan {
		t.Errorf("%d sends took %s, at %v/s they need at least %s", n, span, rate, minSpan)
	}
	t.Logf("%d sends in %s by instance %v; worst excess %.2f", n, span, byInstance, worst)
}

// WeChat's 45009 seen by one instance makes the other wait for the quota
// reset too, without calling WeChat.
func TestClusterDailyQuotaSnoozesEveryInstance(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	apps := simApps()
	apps[0].Quotas = map[string]int{templatePath: 2}
	b := setup(t, d, setupOptions{work: true, apps: apps})
	second := b.peer(t, "second", false)
	b.ready(t)
	var openids []string
	for i := range 5 {
		openids = append(openids, b.follower(t, fmt.Sprintf("f%d", i)))
	}
	// The first instance alone uses the quota up: two sent, one 45009.
	first := b.send(t, visitRequest(openids[:3]...), push.SendOptions{})
	b.waitQuota(t, first.Accepted.ID, 1, 10*time.Second)
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.q.Stop(stop); err != nil {
		t.Fatal(err)
	}
	callsBefore := b.sim.CallCount(oaApp, templatePath)

	// The second instance alone works the next send.
	second.start(t)
	res := b.send(t, visitRequest(openids[3:]...), push.SendOptions{})
	m := b.waitQuota(t, res.Accepted.ID, 2, 10*time.Second)
	for _, r := range m.Recipients {
		if r.Attempts != 0 {
			t.Errorf("recipient %s: %d attempts; none should have called WeChat", r.OpenID, r.Attempts)
		}
	}
	if n := b.sim.CallCount(oaApp, templatePath); n != callsBefore {
		t.Errorf("the second instance called template/send %d times despite the quota", n-callsBefore)
	}
	for _, c := range b.calls.of(templatePath) {
		if c.instance == "second" {
			t.Errorf("the second instance called WeChat at %s", c.at)
		}
	}
}
