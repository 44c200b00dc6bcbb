package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

const (
	clusterAppID     = "wx000000cluster001"
	clusterAppSecret = "cluster-secret-0123456789abcdef01"
	clusterTemplate  = "Tm-Cluster-Notice-00000000000000000000001"
	// clusterScheduleTemplate is the template of the every-minute schedule.
	clusterScheduleTemplate = "Tm-Cluster-Minute-00000000000000000000002"
	clusterRequests         = 40  // of clusterFollowers/clusterRequests recipients each
	clusterRate             = 400 // push.rate_per_account, shared by the instances
	clusterBurst            = 40  // push.burst
)

// roundRobin spreads requests over the live instances, moving on to the
// next one when an instance does not answer (it was just killed). Sends
// carry an Idempotency-Key, so trying one again elsewhere is safe.
type roundRobin struct {
	mu       sync.Mutex
	backends []string // base URLs; "" while an instance is down
	next     int
	dropped  int // callbacks cut off at a dead instance
	// loseEvery, when set, loses the answer of every loseEvery-th callback
	// after the instance gave it, so WeChat sends that push again to the
	// next instance; lost counts them.
	loseEvery, callbacks, lost int
	lostBodies                 map[[32]byte]bool
}

func (rr *roundRobin) set(i int, base string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.backends[i] = base
}

func (rr *roundRobin) pick() []string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	var out []string
	for k := range rr.backends {
		if b := rr.backends[(rr.next+k)%len(rr.backends)]; b != "" {
			out = append(out, b)
		}
	}
	rr.next++
	return out
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.URL.Path, "/wx/") {
		rr.callback(w, r, body)
		return
	}
	for attempt := 0; attempt < 20; attempt++ {
		for _, base := range rr.pick() {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	http.Error(w, "no instance answered", http.StatusBadGateway)
}

// callback forwards a WeChat push to one instance, the next in turn. When
// it does not answer (killed), the connection is dropped without an
// answer, as a balancer in front of a dead instance would: WeChat (the
// simulator) then sends the push again, and the round-robin takes that
// retry to another instance.
func (rr *roundRobin) callback(w http.ResponseWriter, r *http.Request, body []byte) {
	// A push whose answer was lost once is not lost again: its retry
	// shows whether another instance answers it from the log.
	sum := sha256.Sum256(append([]byte(r.URL.Path), body...))
	rr.mu.Lock()
	rr.callbacks++
	lose := rr.loseEvery > 0 && rr.callbacks%rr.loseEvery == 0 && !rr.lostBodies[sum]
	if lose {
		if rr.lostBodies == nil {
			rr.lostBodies = map[[32]byte]bool{}
		}
		rr.lostBodies[sum] = true
	}
	rr.mu.Unlock()
	if backends := rr.pick(); len(backends) > 0 {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, backends[0]+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err == nil && lose {
			resp.Body.Close()
			rr.mu.Lock()
			rr.lost++
			rr.mu.Unlock()
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
		}
		if err == nil {
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
	}
	rr.mu.Lock()
	rr.dropped++
	rr.mu.Unlock()
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// Three `wxgate serve` processes on one PostgreSQL database behind a
// round-robin, one of them SIGKILLed and restarted every few seconds,
// while template sends go through all three with 30% of WeChat's answers
// "system busy", followers write to the account (a push cut off at a dead
// instance is sent again by WeChat and reaches another one), a schedule
// fires every minute, every token is invalidated once, and a webhook
// endpoint receives the message events. Asserted from the simulator's and
// the receiver's own records: every follower gets exactly one card, every
// push is answered and logged once, each schedule minute fires once and
// sends once, the token is fetched once for its invalidation, and no
// webhook event is lost. Jobs a killed instance held are rescued by River
// after queue.DefaultRescueAfter (2 minutes), so it takes about four
// minutes.
func TestClusterSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("three gateways killed and restarted around 10 000 sends; takes minutes")
	}
	t.Parallel()
	// 10 000 sends by default keep the test well inside CI's time on a
	// loaded 2-core machine; WXGATE_CLUSTER_SENDS=20000 runs the issue's
	// full size (3m32s on an idle one).
	clusterFollowers := 10000
	if v := os.Getenv("WXGATE_CLUSTER_SENDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < clusterRequests*2 {
			t.Fatalf("WXGATE_CLUSTER_SENDS=%q: want a number of sends of at least %d", v, clusterRequests*2)
		}
		clusterFollowers = n - n%clusterRequests
	}
	bin := wxgateBinary(t)
	databaseURL := postgresDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Second)
	defer cancel()
	dir := t.TempDir()

	const instances = 3
	rr := &roundRobin{backends: make([]string, instances), loseEvery: 7}
	front := httptest.NewServer(rr)
	defer front.Close()
	setup := newSendSetup(t, ctx, bin, dir, sendSetupSpec{appID: clusterAppID, secret: clusterAppSecret, originalID: "gh_cluster000001",
		template: clusterTemplate, callbackToken: "clustertoken", followers: clusterFollowers, databaseURL: databaseURL,
		callbackURL: front.URL + "/wx/main", extraTemplate: clusterScheduleTemplate,
		extraConfig: fmt.Sprintf("push:\n  rate_per_account: %d\n  burst: %d\n", clusterRate, clusterBurst)})
	simURL, cfg, key, created := setup.simURL, setup.cfg, setup.key, struct{ OpenIDs []string }{setup.openids}
	admin := strings.TrimSpace(runCmd(t, ctx, bin, "apikey", "create", "--name", "cluster-admin", "--scopes", "admin,read", "--config", cfg))

	procs := make([]*proc, instances)
	starts := 0
	start := func(i int) {
		starts++
		procs[i] = startProc(t, fmt.Sprintf("gateway-%d", i), bin, filepath.Join(dir, fmt.Sprintf("gateway-%d-%d.log", i, starts)), "serve", "--config", cfg)
		rr.set(i, procs[i].waitLine(t, "wxgate is listening on"))
	}
	for i := range instances {
		start(i)
	}

	// The business's webhook endpoint, counting message.sent events by id.
	var hookMu sync.Mutex
	sentEvents := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Wxgate-Event") == "message.sent" {
			hookMu.Lock()
			sentEvents[r.Header.Get("X-Wxgate-Event-Id")]++
			hookMu.Unlock()
		}
	}))
	defer receiver.Close()
	call(t, ctx, "POST", front.URL+"/api/v1/webhooks", admin, map[string]any{"url": receiver.URL, "events": []string{"message.sent"}},
		http.StatusCreated, nil)

	// A schedule every minute to one follower, with a template of its own.
	scheduled := created.OpenIDs[0]
	var sc struct {
		ID int64 `json:"id"`
	}
	call(t, ctx, "POST", front.URL+"/api/v1/schedules", admin, map[string]any{"name": "每分钟提醒", "account": "main", "cron": "* * * * *",
		"audience": map[string]any{"kind": "openids", "openids": []string{scheduled}}, "template": clusterScheduleTemplate,
		"data": map[string]string{"thing1": "整点提醒"}}, http.StatusCreated, &sc)

	tokenCalls := func() int {
		var calls map[string]int
		call(t, ctx, "GET", simURL+"/sim/api/calls?app_id="+clusterAppID, "", nil, http.StatusOK, &calls)
		return calls["/cgi-bin/stable_token"] + calls["/cgi-bin/token"]
	}

	// Followers write while everything else goes on; each push's fate is
	// what the simulator reports for it.
	type pushed struct {
		status, attempts int
	}
	var pushes []pushed
	stopWriting := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stopWriting:
				return
			case <-ctx.Done():
				return
			case <-time.After(150 * time.Millisecond):
			}
			var res struct {
				Delivery *struct {
					Status   int               `json:"status"`
					Attempts []json.RawMessage `json:"attempts"`
				} `json:"delivery"`
			}
			body, _ := json.Marshal(map[string]any{"app_id": clusterAppID, "type": "text", "content": fmt.Sprintf("第 %d 条留言", n)})
			req, _ := http.NewRequestWithContext(ctx, "POST", simURL+"/sim/api/users/"+created.OpenIDs[1+n%(clusterFollowers-1)]+"/actions", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := httpClient.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("push %d: %v", n, err)
				}
				return
			}
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if err != nil || res.Delivery == nil {
				t.Errorf("push %d: the simulator made no delivery (%v)", n, err)
				continue
			}
			pushes = append(pushes, pushed{res.Delivery.Status, len(res.Delivery.Attempts)})
		}
	})

	// The sends, through the round-robin, while instances are killed.
	began := time.Now()
	ids := make([]string, 0, clusterRequests)
	per := clusterFollowers / clusterRequests
	kills := 0
	var tokensBefore int
	for n := range clusterRequests {
		switch n {
		case 2: // WeChat busy for 30% of the sends from now on
			call(t, ctx, "POST", simURL+"/sim/api/faults", "", map[string]any{"app_id": clusterAppID, "path": "/cgi-bin/message/template/send",
				"errcode": -1, "rate": 0.3}, http.StatusCreated, nil)
		case 7: // every token of the account stops working
			tokensBefore = tokenCalls()
			call(t, ctx, "POST", simURL+"/sim/api/apps/"+clusterAppID+"/invalidate_tokens", "", nil, http.StatusOK, nil)
		}
		var accepted struct {
			ID string `json:"id"`
		}
		callWithKey(t, ctx, front.URL+"/api/v1/messages", key, fmt.Sprintf("cluster-%d", n),
			map[string]any{"account": "main", "to": map[string]any{"openids": created.OpenIDs[n*per : (n+1)*per]},
				"channel": "template", "template": clusterTemplate, "data": map[string]string{"thing1": "集群测试", "time2": "2026-12-05 10:00"}},
			&accepted)
		ids = append(ids, accepted.ID)
		if n%3 == 2 { // about every 3 s: kill one instance and start it again
			i := kills % instances
			rr.set(i, "")
			procs[i].kill(t)
			kills++
			start(i)
		}
		sleep(t, ctx, time.Second)
	}
	close(stopWriting)
	writers.Wait()
	call(t, ctx, "DELETE", simURL+"/sim/api/faults", "", nil, http.StatusNoContent, nil)

	// Everything is sent in the end (jobs held by a killed instance after
	// River's rescue); the schedule runs at least twice meanwhile.
	runs := func() []struct {
		Kind   string    `json:"kind"`
		DueAt  time.Time `json:"due_at"`
		Status string    `json:"status"`
	} {
		var out struct {
			Runs []struct {
				Kind   string    `json:"kind"`
				DueAt  time.Time `json:"due_at"`
				Status string    `json:"status"`
			} `json:"runs"`
		}
		call(t, ctx, "GET", fmt.Sprintf("%s/api/v1/schedules/%d/runs", front.URL, sc.ID), admin, nil, http.StatusOK, &out)
		return out.Runs
	}
	paused := false
	for {
		queued := 0
		for _, id := range ids {
			var m struct {
				Counts map[string]int `json:"counts"`
			}
			call(t, ctx, "GET", front.URL+"/api/v1/messages/"+id+"?limit=1", key, nil, http.StatusOK, &m)
			queued += m.Counts["queued"]
		}
		if queued == 0 && !paused && len(runs()) >= 2 {
			call(t, ctx, "POST", fmt.Sprintf("%s/api/v1/schedules/%d/pause", front.URL, sc.ID), admin, nil, http.StatusOK, nil)
			paused = true
		}
		if queued == 0 && paused {
			finished := true
			for _, r := range runs() {
				finished = finished && (r.Status == "done" || r.Status == "failed" || r.Status == "missed")
			}
			if finished {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%d recipients still queued; schedule runs %+v; %s", queued, runs(), queuedJobs(t, databaseURL))
		}
		sleep(t, ctx, time.Second)
	}
	took := time.Since(began)
	p99 := acceptToSentP99(t, ctx, front.URL, key, ids)

	// Every follower has exactly one card.
	st := inboxStatsOf(t, ctx, simURL, clusterAppID, clusterTemplate)
	if st.Users != clusterFollowers || st.Items != clusterFollowers || st.Histogram["1"] != clusterFollowers {
		t.Errorf("simulator: %d followers, %d cards, cards per follower %v; want exactly one each (none: %v, several: %v)",
			st.Users, st.Items, st.Histogram, st.None, st.Several)
	}
	// The account's send rate held across the three instances: in no
	// second did more cards arrive than the rate and its burst allow (with
	// a fifth of the rate for arrival jitter on a loaded machine; without
	// the shared bucket three instances would send three times the rate).
	if limit := clusterRate + clusterBurst + clusterRate/5; st.MaxPerSecond > limit {
		t.Errorf("%d cards arrived within one second; the shared limit is %d/s with a burst of %d", st.MaxPerSecond, clusterRate, clusterBurst)
	}
	// Each minute of the schedule fired once, none skipped, and sent once.
	minutes := map[time.Time]int{}
	var first, last time.Time
	for _, r := range runs() {
		if r.Kind == "manual" {
			continue
		}
		m := r.DueAt.Truncate(time.Minute)
		minutes[m]++
		if first.IsZero() || m.Before(first) {
			first = m
		}
		if m.After(last) {
			last = m
		}
		if r.Status != "done" {
			t.Errorf("the run of %s ended %s", m, r.Status)
		}
	}
	for m := first; !m.After(last); m = m.Add(time.Minute) {
		if minutes[m] != 1 {
			t.Errorf("schedule minute %s fired %d times", m.Format("15:04"), minutes[m])
		}
	}
	if cards := inboxStatsOf(t, ctx, simURL, clusterAppID, clusterScheduleTemplate); cards.Items != len(minutes) {
		t.Errorf("%d scheduled cards for %d schedule minutes", cards.Items, len(minutes))
	}
	// Every follower's push that WeChat saw answered is logged, and none
	// twice. A push whose three attempts all met an instance as it was
	// killed is lost, as on WeChat; that must stay rare.
	retried, answered := 0, 0
	for n, p := range pushes {
		switch {
		case p.status == http.StatusOK:
			answered++
		case p.status != 0:
			t.Errorf("push %d: the simulator got HTTP %d after %d attempts", n, p.status, p.attempts)
		}
		if p.attempts > 1 {
			retried++
		}
	}
	if unanswered := len(pushes) - answered; unanswered*50 > len(pushes) {
		t.Errorf("%d of %d follower pushes got no answer in three attempts", unanswered, len(pushes))
	}
	database, err := db.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()
	var logged, distinct int
	if err := database.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT msg_id) FROM inbound_messages WHERE account = 'main' AND msg_type = 'text'`).Scan(&logged, &distinct); err != nil {
		t.Fatal(err)
	}
	if logged != distinct || logged < answered || logged > len(pushes) {
		t.Errorf("%d follower messages pushed (%d answered), %d logged (%d distinct)", len(pushes), answered, logged, distinct)
	}
	// One token fetch for the invalidation, whichever instance saw it.
	if fetched := tokenCalls() - tokensBefore; fetched != 1 {
		t.Errorf("%d token fetches after the invalidation, want 1", fetched)
	}
	// No webhook event lost: one message.sent per recipient sent.
	want := clusterFollowers + len(minutes)
	deadline := time.Now().Add(150 * time.Second)
	for {
		hookMu.Lock()
		got := len(sentEvents)
		hookMu.Unlock()
		if got >= want || time.Now().After(deadline) {
			if got != want {
				t.Errorf("%d distinct message.sent events received, want %d", got, want)
			}
			break
		}
		sleep(t, ctx, time.Second)
	}

	var calls map[string]int
	call(t, ctx, "GET", simURL+"/sim/api/calls?app_id="+clusterAppID, "", nil, http.StatusOK, &calls)
	rr.mu.Lock()
	dropped, lost := rr.dropped, rr.lost
	rr.mu.Unlock()
	if retried == 0 {
		t.Error("no follower push was sent again by WeChat; the test means to have some")
	}
	t.Logf("%d sends through %d instances in %s with %d SIGKILLs (%.1f cards/s overall, at most %d within a second, accept→sent p99 %s); %d template/send calls with 30%% busy; "+
		"%d follower pushes (%d sent again by WeChat: %d answers lost after an instance gave them, %d cut off at a dead instance), %d schedule minutes, %d token fetch after the invalidation",
		clusterFollowers, instances, took.Round(time.Second), kills, float64(clusterFollowers)/took.Seconds(), st.MaxPerSecond, p99.Round(10*time.Millisecond),
		calls["/cgi-bin/message/template/send"], len(pushes), retried, lost, dropped, len(minutes), tokenCalls()-tokensBefore)
	for _, p := range procs {
		p.stop(t)
	}
	setup.sim.stop(t)
}

// callWithKey POSTs a send with an Idempotency-Key and expects 202.
func callWithKey(t *testing.T, ctx context.Context, u, key, idem string, body any, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: HTTP %d: %s", u, resp.StatusCode, lastLines(string(raw), 5))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
}

func inboxStatsOf(t *testing.T, ctx context.Context, simURL, appID, templateID string) inboxStats {
	t.Helper()
	var st inboxStats
	call(t, ctx, "GET", simURL+"/sim/api/apps/"+appID+"/inbox_stats?kind=template&template_id="+templateID, "", nil, http.StatusOK, &st)
	return st
}

// acceptToSentP99 is the 99th percentile of queued→sent over every
// recipient of the messages.
func acceptToSentP99(t *testing.T, ctx context.Context, base, key string, ids []string) time.Duration {
	t.Helper()
	var lat []time.Duration
	for _, id := range ids {
		for after := 0; ; {
			var m struct {
				Recipients []struct {
					QueuedAt time.Time  `json:"queued_at"`
					SentAt   *time.Time `json:"sent_at"`
				} `json:"recipients"`
				NextAfter int `json:"next_after"`
			}
			call(t, ctx, "GET", fmt.Sprintf("%s/api/v1/messages/%s?after=%d&limit=1000", base, id, after), key, nil, http.StatusOK, &m)
			for _, r := range m.Recipients {
				if r.SentAt != nil {
					lat = append(lat, r.SentAt.Sub(r.QueuedAt))
				}
			}
			if m.NextAfter == 0 {
				break
			}
			after = m.NextAfter
		}
	}
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// queuedJobs describes the recipients still queued and their River jobs,
// so that a run out of time says whether it waited on a backoff, a rescue
// or a job no instance picked up.
func queuedJobs(t *testing.T, databaseURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Open(ctx, databaseURL)
	if err != nil {
		return "queued jobs unknown: " + err.Error()
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `
SELECT r.id, r.attempts, COALESCE(r.errcode, 0), r.errmsg, COALESCE(j.state::text, 'no job'), COALESCE(j.attempt, 0),
    COALESCE(to_char(j.scheduled_at, 'HH24:MI:SS'), ''), COALESCE(to_char(j.attempted_at, 'HH24:MI:SS'), '')
FROM push_recipients r LEFT JOIN river_job j ON j.kind = 'push_send' AND (j.args->>'recipient_id')::bigint = r.id
WHERE r.status = 'queued' ORDER BY r.id LIMIT 20`)
	if err != nil {
		return "queued jobs unknown: " + err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "at %s, queued recipients (at most 20):", time.Now().UTC().Format("15:04:05"))
	for rows.Next() {
		var (
			id                            int64
			attempts, errcode, jobTries   int
			errmsg, state, due, attempted string
		)
		if err := rows.Scan(&id, &attempts, &errcode, &errmsg, &state, &jobTries, &due, &attempted); err != nil {
			return b.String() + " " + err.Error()
		}
		fmt.Fprintf(&b, "\n  recipient %d: %d attempts, last %d %q; job %s, attempt %d, due %s, attempted %s",
			id, attempts, errcode, errmsg, state, jobTries, due, attempted)
	}
	if err := rows.Err(); err != nil {
		return b.String() + " " + err.Error()
	}
	return b.String()
}
