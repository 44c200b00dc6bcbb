package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/server"
	"github.com/wxgate/wxgate/internal/server/servertest"
)

func setup(t *testing.T, logs io.Writer, routes map[string]http.Handler) *servertest.Gateway {
	t.Helper()
	cfg := config.Default()
	cfg.Accounts = []config.Account{{Name: "main", AppID: "wx0123456789abcdef", Token: "AAAAA", MessageMode: config.ModePlaintext}}
	s, err := servertest.New(servertest.Options{
		Config: cfg,
		DB:     dbtest.SQLite(t),
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Routes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMountRequestIDAndLogging(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var seen string
	s := setup(t, &logs, map[string]http.Handler{"GET /api/v1/ping": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = server.RequestID(r.Context())
		_, _ = w.Write([]byte("pong"))
	})})

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/ping", nil))
	if rec.Body.String() != "pong" || seen == "" || rec.Header().Get("X-Request-Id") != seen {
		t.Errorf("mounted handler: %q, request id %q / header %q", rec.Body.String(), seen, rec.Header().Get("X-Request-Id"))
	}

	// A proxy's id is kept; a malformed one is replaced.
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("X-Request-Id", "edge-42")
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got != "edge-42" {
		t.Errorf("proxy id replaced by %q", got)
	}
	req.Header.Set("X-Request-Id", "bad id\n")
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("malformed proxy id kept: %q", got)
	}

	// The signature and echostr of a callback never reach the log.
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wx/main?signature=deadbeef&echostr=SECRETECHO&timestamp=1&nonce=2", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("bad verification: %d", rec.Code)
	}
	if strings.Contains(logs.String(), "SECRETECHO") || strings.Contains(logs.String(), "deadbeef") {
		t.Errorf("query string logged:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"path":"/wx/main"`) || !strings.Contains(logs.String(), `"status":401`) {
		t.Errorf("request not logged:\n%s", logs.String())
	}
}

func TestServeOnceAndStop(t *testing.T) {
	t.Parallel()
	s := setup(t, io.Discard, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("healthz = %q", body)
	}

	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(ctx, ln2); err == nil {
		t.Error("a second Serve was accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after stop: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after stop")
	}
}
