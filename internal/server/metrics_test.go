package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/server"
)

// serveMetrics runs a server built with opts on two loopback listeners
// (public and metrics) and returns their base URLs.
func serveMetrics(t *testing.T, opts server.Options) (public, metrics string) {
	t.Helper()
	opts.DB = dbtest.SQLite(t)
	opts.Registry = prometheus.NewRegistry()
	opts.Registry.MustRegister(collectors.NewGoCollector())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.MetricsListener = mln
	s, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), "http://" + mln.Addr().String()
}

func get(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsStayOffThePublicListener(t *testing.T) {
	t.Parallel()
	public, metrics := serveMetrics(t, server.Options{})
	if code, _ := get(t, public+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("public /metrics = %d, want 404", code)
	}
	if code, body := get(t, public+"/healthz", ""); code != http.StatusOK || body != "ok" {
		t.Errorf("public /healthz = %d %q", code, body)
	}
	if code, body := get(t, metrics+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics listener /metrics = %d", code)
	}
	if code, _ := get(t, metrics+"/healthz", ""); code != http.StatusNotFound {
		t.Errorf("the metrics listener serves more than /metrics: /healthz = %d", code)
	}
}

func TestMetricsToken(t *testing.T) {
	t.Parallel()
	public, metrics := serveMetrics(t, server.Options{MetricsOnPublicListener: true, MetricsToken: "s3cret-scrape"})
	for _, base := range []string{public, metrics} {
		if code, body := get(t, base+"/metrics", ""); code != http.StatusUnauthorized || !strings.Contains(body, "metrics_unauthorized") {
			t.Errorf("%s/metrics without token = %d %s", base, code, body)
		}
		if code, _ := get(t, base+"/metrics", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s/metrics with a wrong token = %d", base, code)
		}
		if code, body := get(t, base+"/metrics", "s3cret-scrape"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
			t.Errorf("%s/metrics with the token = %d", base, code)
		}
	}
}
