package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// doJSON sends a request with a JSON body (nil: none) and decodes a JSON
// answer into out (nil: ignored). A status other than want is an error.
func doJSON(ctx context.Context, c *http.Client, method, u string, header http.Header, body, out any, want int) error {
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rdr)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		if len(raw) > 300 {
			raw = raw[:300]
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, u, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return nil
}

// simClient drives the simulator's control API.
type simClient struct {
	base string
	http *http.Client
}

func (s *simClient) bulkUsers(ctx context.Context, n int) ([]string, error) {
	var res struct {
		OpenIDs []string `json:"openids"`
	}
	err := doJSON(ctx, s.http, "POST", s.base+"/sim/api/users/bulk", nil,
		map[string]any{"app_id": appID, "count": n, "follow": true}, &res, http.StatusCreated)
	if err == nil && len(res.OpenIDs) != n {
		err = fmt.Errorf("bulk users: got %d openids, want %d", len(res.OpenIDs), n)
	}
	return res.OpenIDs, err
}

// inboxStats is the simulator's count of template cards per follower.
type inboxStats struct {
	Users     int            `json:"users"`
	Items     int            `json:"items"`
	Histogram map[string]int `json:"histogram"`
	None      []string       `json:"none"`
	Several   []string       `json:"several"`
}

func (s *simClient) inboxStats(ctx context.Context) (*inboxStats, error) {
	var st inboxStats
	err := doJSON(ctx, s.http, "GET", s.base+"/sim/api/apps/"+appID+"/inbox_stats?kind=template&template_id="+templateID, nil, nil, &st, http.StatusOK)
	return &st, err
}

// checkExactlyOnce checks that each of want followers has exactly one card.
func (st *inboxStats) checkExactlyOnce(want int) error {
	if st.Users == want && st.Items == want && st.Histogram["1"] == want {
		return nil
	}
	return verifyError{fmt.Sprintf("simulator: %d followers, %d cards, cards per follower %v (want exactly one each); without a card: %v; with several: %v",
		st.Users, st.Items, st.Histogram, head(st.None), head(st.Several))}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// setCallback points the app's server URL at the gateway (receipts).
func (s *simClient) setCallback(ctx context.Context, callbackURL string) error {
	var app map[string]any
	if err := doJSON(ctx, s.http, "GET", s.base+"/sim/api/apps/"+appID, nil, nil, &app, http.StatusOK); err != nil {
		return err
	}
	cfg := map[string]any{"app_id": appID, "kind": "official_account", "name": app["name"], "original_id": app["original_id"],
		"callback_url": callbackURL, "token": "benchtoken", "mode": "plaintext", "quotas": app["quotas"]}
	return doJSON(ctx, s.http, "PUT", s.base+"/sim/api/apps/"+appID, nil, cfg, nil, http.StatusOK)
}

// simOnly sends template/send straight to the simulator: its own ceiling.
func simOnly(ctx context.Context, o options, s *simClient, sim *proc) (*report, error) {
	logf("simulator alone: %d followers", o.recipients)
	openids, err := s.bulkUsers(ctx, o.recipients)
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {appSecret}}
	if err := doJSON(ctx, s.http, "GET", s.base+"/cgi-bin/token?"+q.Encode(), nil, nil, &tok, http.StatusOK); err != nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("access token: %v", err)
	}
	sendURL := s.base + "/cgi-bin/message/template/send?access_token=" + url.QueryEscape(tok.AccessToken)
	logf("template/send × %d with %d clients", len(openids), o.concurrency)

	cpu0, _ := processCPU(sim.pid())
	var (
		next    atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	begin := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= len(openids) || ctx.Err() != nil {
					break
				}
				body := map[string]any{"touser": openids[i], "template_id": templateID, "client_msg_id": "bench-" + strconv.Itoa(i),
					"data": map[string]any{"thing1": map[string]string{"value": "压测"}, "time2": map[string]string{"value": "2026-11-24 10:00"}}}
				var ans struct {
					ErrCode int `json:"errcode"`
				}
				t0 := time.Now()
				err := doJSON(ctx, s.http, "POST", sendURL, nil, body, &ans, http.StatusOK)
				mine = append(mine, time.Since(t0))
				if err == nil && ans.ErrCode != 0 {
					err = fmt.Errorf("template/send: errcode %d", ans.ErrCode)
				}
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if firstEr != nil {
		return nil, firstEr
	}
	cpu1, _ := processCPU(sim.pid())
	st, err := s.inboxStats(ctx)
	if err != nil {
		return nil, err
	}
	rss, _ := peakRSS(sim.pid())
	rep := &report{Label: "simulator alone", Recipients: len(openids), SimOnly: &simOnlyResult{
		Concurrency: o.concurrency, Sends: len(lat), Seconds: elapsed.Seconds(), PerSecond: float64(len(lat)) / elapsed.Seconds(),
		Latency: percentiles(lat), SimCPUPerSendUS: float64((cpu1 - cpu0).Microseconds()) / float64(len(lat)), SimPeakRSSMiB: mib(rss)}}
	rep.Verified = st.checkExactlyOnce(len(openids))
	return rep, rep.verifyErr()
}

type latencies struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func percentiles(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) float64 {
		i := int(p * float64(len(s)-1))
		return float64(s[i].Microseconds()) / 1000
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(s[len(s)-1].Microseconds()) / 1000}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
