package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/server"
)

// tcpProxy forwards connections to target until cut, which also drops the
// connections it carries: the database becoming unreachable.
type tcpProxy struct {
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// readyStatus polls /readyz until it answers want, and fails after the
// deadline.
func readyStatus(t *testing.T, h http.Handler, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s, want %d", rec.Code, rec.Body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// /readyz answers 503 while PostgreSQL cannot be reached, and 200 again
// once it can.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	direct := dbtest.Postgres(t) // a migrated database of the test server
	var name string
	if err := direct.QueryRowContext(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	serverURL := os.Getenv("WXGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host, u.Path = proxy.addr, "/"+name
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := db.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	s, err := server.New(server.Options{DB: d})
	if err != nil {
		t.Fatal(err)
	}
	readyStatus(t, s.Handler(), http.StatusOK, 5*time.Second)

	proxy.cut()
	readyStatus(t, s.Handler(), http.StatusServiceUnavailable, 10*time.Second)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if !strings.Contains(rec.Body.String(), `"code":"database_unavailable"`) {
		t.Errorf("body = %s", rec.Body)
	}
	// /healthz is about the process, not its dependencies.
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz with the database down = %d", rec.Code)
	}

	proxy.restore(t)
	readyStatus(t, s.Handler(), http.StatusOK, 10*time.Second)
}

// Once asked to stop, the server keeps serving for its drain delay with
// /readyz at 503, so a balancer moves traffic away before the listener
// closes; the other routes still answer meanwhile.
func TestReadyzFalseWhileStopping(t *testing.T) {
	t.Parallel()
	s, err := server.New(server.Options{DB: dbtest.SQLite(t), DrainDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	if code := getStatus(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the stop = %d", code)
	}
	stopAsked := time.Now()
	cancel()
	deadline := time.Now().Add(time.Second)
	for getStatus(t, base+"/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 a second after the stop was asked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining = %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain delay")
	}
	if took := time.Since(stopAsked); took < 2*time.Second {
		t.Errorf("stopped after %s, before the 2 s drain delay", took)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after the stop")
	}
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
