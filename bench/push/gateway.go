package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// gatewayBench runs both phases against `wxgate serve` and verifies them.
func gatewayBench(ctx context.Context, o options, sim *proc, simc *simClient) (*report, error) {
	steadyN := int(o.steadyRate * o.steadyDuration.Seconds())
	steadyN -= steadyN % o.steadyBatch
	total := o.recipients + steadyN
	logf("creating %d followers in the simulator", total)
	openids, err := simc.bulkUsers(ctx, total)
	if err != nil {
		return nil, err
	}

	databaseURL := "sqlite://" + filepath.ToSlash(filepath.Join(o.dir, "data", "wxgate.db"))
	dialect := "SQLite"
	if o.postgres != "" {
		dialect = "PostgreSQL"
		u, drop, err := createDatabase(ctx, o.postgres)
		if err != nil {
			return nil, err
		}
		defer drop()
		databaseURL = u
	}
	label := o.label
	if label == "" {
		label = dialect
	}
	rep := &report{Label: label, Database: dialect, Recipients: total, Workers: o.workers, Callbacks: o.callbacks}

	cfgPath := filepath.Join(o.dir, "wxgate.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
database_url: %q
log_level: warn
metrics:
  listen: 127.0.0.1:0
push:
  rate_per_account: 0
  workers: %d
api:
  rate_per_key: 0
accounts:
  - name: %s
    app_id: %s
    app_secret: %s
    token: benchtoken
    message_mode: plaintext
    api_base_urls: [%s]
`, databaseURL, o.workers, account, appID, appSecret, simc.base)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// The operator's preparation, untimed: followers and templates known to
	// the gateway (the send checks follow state and template rules), a key.
	t0 := time.Now()
	if _, err := run(ctx, o.wxgate, "followers", "sync", "--account", account, "--config", cfgPath); err != nil {
		return nil, err
	}
	logf("followers sync of %d followers: %s", total, time.Since(t0).Round(time.Millisecond))
	if _, err := run(ctx, o.wxgate, "templates", "sync", "--account", account, "--config", cfgPath); err != nil {
		return nil, err
	}
	key, err := run(ctx, o.wxgate, "apikey", "create", "--name", "bench", "--scopes", "send,read", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	gw := &gatewayClient{key: strings.TrimSpace(key), http: newHTTPClient(256)}

	// One or more instances on the database; the client spreads its
	// requests over them in turn.
	var srvs []*proc
	for i := range max(o.instances, 1) {
		name := "gateway"
		if o.instances > 1 {
			name = fmt.Sprintf("gateway-%d", i+1)
		}
		srv, err := start(name, o.wxgate, filepath.Join(o.dir, name+".log"), "serve", "--config", cfgPath)
		if err != nil {
			return nil, err
		}
		defer srv.kill()
		base, err := srv.waitLine("wxgate is listening on", 60*time.Second)
		if err != nil {
			return nil, err
		}
		gw.bases = append(gw.bases, base)
		srvs = append(srvs, srv)
		logf("%s at %s (pid %d), %s", name, base, srv.pid(), dialect)
	}
	rep.Instances = len(srvs)
	if o.callbacks {
		if err := simc.setCallback(ctx, gw.bases[0]+"/wx/"+account); err != nil {
			return nil, err
		}
	}
	pids := make([]int, len(srvs))
	for i, srv := range srvs {
		pids[i] = srv.pid()
	}
	meter := newMeter(pids, sim.pid())

	// Throughput.
	logf("throughput: %d recipients, %d per request, %d requests in flight", o.recipients, o.batch, o.concurrency)
	tp, err := gw.throughput(ctx, openids[:o.recipients], o.batch, o.concurrency)
	if err != nil {
		return rep, err
	}
	tp.Resources = meter.lap()
	rep.Throughput = tp
	logf("throughput: %.0f msg/s accept→sent (accepted at %.0f/s, sent at %.0f/s)", tp.PerSecond, tp.AcceptPerSecond, tp.SendPerSecond)

	// Steady.
	if steadyN > 0 {
		logf("steady: %.0f recipients/s for %s, %d per request", o.steadyRate, o.steadyDuration, o.steadyBatch)
		st, err := gw.steady(ctx, openids[o.recipients:], o.steadyBatch, o.steadyRate)
		if err != nil {
			return rep, err
		}
		st.Resources = meter.lap()
		rep.Steady = st
		logf("steady: p50 %.1f ms, p99 %.1f ms accept→sent", st.Latency.P50, st.Latency.P99)
	}

	for _, srv := range srvs {
		rss, _ := peakRSS(srv.pid())
		rep.GatewayPeakRSSMiB = max(rep.GatewayPeakRSSMiB, mib(rss))
		if err := srv.stop(30 * time.Second); err != nil {
			return rep, fmt.Errorf("gateway: %w; log: %s", err, tail(srv.log))
		}
		if b, err := os.ReadFile(srv.log); err == nil && strings.Contains(string(b), "level=ERROR") {
			rep.GatewayErrors = true
			logf("the gateway logged errors; see %s", srv.log)
		}
	}

	st, err := simc.inboxStats(ctx)
	if err != nil {
		return rep, err
	}
	rep.Verified = st.checkExactlyOnce(total)
	if rep.Verified == nil {
		rep.Verified = rep.checkStatuses(total)
	}
	return rep, rep.verifyErr()
}

// createDatabase creates a database for the run on a PostgreSQL server and
// returns its URL and a function that drops it.
func createDatabase(ctx context.Context, serverURL string) (string, func(), error) {
	admin, err := db.Open(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	name := "wxgate_pushbench_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			logf("dropping database %s: %v", name, err)
		}
		admin.Close()
	}
	return u.String(), drop, nil
}

// gatewayClient calls the gateway's JSON API.
type gatewayClient struct {
	bases []string // the instances, taken in turn
	next  atomic.Uint64
	key   string
	http  *http.Client
}

// base is the instance for the next request.
func (g *gatewayClient) base() string {
	return g.bases[int(g.next.Add(1)-1)%len(g.bases)]
}

func (g *gatewayClient) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + g.key}}
}

type accepted struct {
	ID         string `json:"id"`
	Recipients []struct {
		Status string `json:"status"`
	} `json:"recipients"`
}

// send posts one message to openids and checks every one was queued.
func (g *gatewayClient) send(ctx context.Context, openids []string) (string, error) {
	body := map[string]any{"account": account, "to": map[string]any{"openids": openids}, "channel": "template", "template": templateID,
		"data": map[string]string{"thing1": "压测通知", "time2": "2026-11-24 10:00"}}
	var a accepted
	if err := doJSON(ctx, g.http, "POST", g.base()+"/api/v1/messages", g.header(), body, &a, http.StatusAccepted); err != nil {
		return "", err
	}
	for _, r := range a.Recipients {
		if r.Status != "queued" {
			return "", fmt.Errorf("message %s: a recipient is %s, want queued", a.ID, r.Status)
		}
	}
	if len(a.Recipients) != len(openids) {
		return "", fmt.Errorf("message %s: %d recipients, want %d", a.ID, len(a.Recipients), len(openids))
	}
	return a.ID, nil
}

type message struct {
	ID         string         `json:"id"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	Recipients []struct {
		Status   string     `json:"status"`
		Attempts int        `json:"attempts"`
		QueuedAt time.Time  `json:"queued_at"`
		SentAt   *time.Time `json:"sent_at"`
	} `json:"recipients"`
	NextAfter int `json:"next_after"`
}

func (g *gatewayClient) message(ctx context.Context, id string, after, limit int) (*message, error) {
	var m message
	u := fmt.Sprintf("%s/api/v1/messages/%s?after=%d&limit=%d", g.base(), id, after, limit)
	err := doJSON(ctx, g.http, "GET", u, g.header(), nil, &m, http.StatusOK)
	return &m, err
}

// waitSent polls the messages, oldest first, until none has a queued
// recipient.
func (g *gatewayClient) waitSent(ctx context.Context, ids []string) error {
	for i := 0; i < len(ids); {
		m, err := g.message(ctx, ids[i], 0, 1)
		if err != nil {
			return err
		}
		if m.Counts["queued"] == 0 {
			i++
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the sends: %w (message %d of %d still has %d queued)", ctx.Err(), i+1, len(ids), m.Counts["queued"])
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// recipientTimes reads every recipient of the messages: latency samples
// (sent_at − queued_at), the last sent_at, and problems.
type recipientTimes struct {
	latencies []time.Duration
	firstSent time.Time
	lastSent  time.Time
	notSent   int
	retried   int
}

func (g *gatewayClient) collect(ctx context.Context, ids []string) (*recipientTimes, error) {
	rt := &recipientTimes{}
	for _, id := range ids {
		after := 0
		for {
			m, err := g.message(ctx, id, after, 10000)
			if err != nil {
				return nil, err
			}
			for _, r := range m.Recipients {
				if r.SentAt == nil || r.Status != "sent" && r.Status != "delivered" {
					rt.notSent++
					continue
				}
				if r.Attempts > 1 {
					rt.retried++
				}
				rt.latencies = append(rt.latencies, r.SentAt.Sub(r.QueuedAt))
				if rt.firstSent.IsZero() || r.SentAt.Before(rt.firstSent) {
					rt.firstSent = *r.SentAt
				}
				if r.SentAt.After(rt.lastSent) {
					rt.lastSent = *r.SentAt
				}
			}
			if m.NextAfter == 0 {
				break
			}
			after = m.NextAfter
		}
	}
	return rt, nil
}

// throughput sends all openids as fast as the API takes them.
func (g *gatewayClient) throughput(ctx context.Context, openids []string, batch, concurrency int) (*phase, error) {
	var batches [][]string
	for i := 0; i < len(openids); i += batch {
		batches = append(batches, openids[i:min(i+batch, len(openids))])
	}
	ids := make([]string, len(batches))
	reqLat := make([]time.Duration, len(batches))
	work := make(chan int)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	begin := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t0 := time.Now()
				id, err := g.send(ctx, batches[i])
				if err != nil {
					errs <- err
					return
				}
				ids[i], reqLat[i] = id, time.Since(t0)
			}
		}()
	}
feed:
	for i := range batches {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return nil, err
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	acceptedAt := time.Since(begin)
	if err := g.waitSent(ctx, ids); err != nil {
		return nil, err
	}
	return g.summarize(ctx, ids, len(openids), begin, acceptedAt, reqLat)
}

// steady sends openids at rate recipients per second, batch per request.
func (g *gatewayClient) steady(ctx context.Context, openids []string, batch int, rate float64) (*phase, error) {
	n := len(openids) / batch
	interval := time.Duration(float64(time.Second) * float64(batch) / rate)
	ids := make([]string, n)
	reqLat := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		late     int
	)
	inflight := make(chan struct{}, 256)
	begin := time.Now()
	for i := range n {
		due := begin.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else if d < -interval {
			late++
		}
		mu.Lock()
		err := firstErr
		mu.Unlock()
		if err != nil {
			break
		}
		inflight <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			t0 := time.Now()
			id, err := g.send(ctx, openids[i*batch:(i+1)*batch])
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			ids[i], reqLat[i] = id, time.Since(t0)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	acceptedAt := time.Since(begin)
	if err := g.waitSent(ctx, ids); err != nil {
		return nil, err
	}
	p, err := g.summarize(ctx, ids, n*batch, begin, acceptedAt, reqLat)
	if err == nil {
		p.TargetPerSecond = rate
		p.LateRequests = late
	}
	return p, err
}

func (g *gatewayClient) summarize(ctx context.Context, ids []string, n int, begin time.Time, acceptedAt time.Duration, reqLat []time.Duration) (*phase, error) {
	rt, err := g.collect(ctx, ids)
	if err != nil {
		return nil, err
	}
	p := &phase{Recipients: n, Requests: len(ids), RecipientsPerRequest: n / max(len(ids), 1), NotSent: rt.notSent, Retried: rt.retried,
		AcceptSeconds: acceptedAt.Seconds(), RequestLatency: percentiles(reqLat), Latency: percentiles(rt.latencies)}
	if !rt.lastSent.IsZero() {
		p.Seconds = rt.lastSent.Sub(begin).Seconds()
		p.PerSecond = float64(n) / p.Seconds
		p.AcceptPerSecond = float64(n) / acceptedAt.Seconds()
		if span := rt.lastSent.Sub(rt.firstSent).Seconds(); span > 0 {
			p.SendPerSecond = float64(n) / span
		}
	}
	return p, nil
}

// meter reads the processes' CPU time between laps.
type meter struct {
	gwPIDs        []int
	simPID        int
	last          time.Time
	gwCPU, simCPU time.Duration
}

func newMeter(gwPIDs []int, simPID int) *meter {
	m := &meter{gwPIDs: gwPIDs, simPID: simPID}
	m.lap()
	return m
}

// lap returns the wall time and CPU (all gateway instances together) since
// the previous lap.
func (m *meter) lap() resources {
	now := time.Now()
	var gw time.Duration
	for _, pid := range m.gwPIDs {
		c, _ := processCPU(pid)
		gw += c
	}
	sim, _ := processCPU(m.simPID)
	r := resources{WallSeconds: now.Sub(m.last).Seconds(), GatewayCPUSeconds: (gw - m.gwCPU).Seconds(), SimCPUSeconds: (sim - m.simCPU).Seconds()}
	m.last, m.gwCPU, m.simCPU = now, gw, sim
	return r
}
