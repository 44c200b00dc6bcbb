package callback_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/server/servertest"
)

// benchPushes pre-signs n safe-mode text messages with distinct MsgIds, so
// the timed loop does only what the gateway does per push.
func benchPushes(b *testing.B, n int, now int64) []push {
	b.Helper()
	out := make([]push, n)
	for i := range out {
		out[i] = sign(b, acctSafe, textXML("gh_safe00000001", "o-bench", now, int64(1_000_000+i), "你好"), itoa(now))
	}
	return out
}

// benchHandler is the whole gateway handler (middleware, callback, rules,
// message log with group commit on SQLite in a temp dir), without the
// network.
func benchHandler(b *testing.B, now int64) (http.Handler, *servertest.Gateway) {
	b.Helper()
	cfg := config.Default()
	cfg.Accounts = []config.Account{acctSafe}
	srv, err := servertest.New(servertest.Options{
		Config:   cfg,
		DB:       dbtest.SQLite(b),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Registry: prometheus.NewRegistry(),
		Now:      func() time.Time { return time.Unix(now, 0) },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv.Handler(), srv
}

func serveOne(b *testing.B, h http.Handler, p push) {
	req := httptest.NewRequest(http.MethodPost, "/wx/"+p.account+"?"+p.query.Encode(), bytes.NewReader(p.body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.HasPrefix(rec.Body.Bytes(), []byte("<xml><Encrypt>")) {
		b.Fatalf("answer %d %q", rec.Code, rec.Body.Bytes())
	}
}

// BenchmarkSafeModeText measures a safe-mode text push end to end in the
// handler — verify, decrypt, parse, match a rule, log with de-duplication,
// encrypt the reply — at 64 concurrent requests (32 per core on 2 cores),
// where group commit shares transactions.
func BenchmarkSafeModeText(b *testing.B) {
	const now = 1715943329
	h, _ := benchHandler(b, now)
	pushes := benchPushes(b, b.N, now)
	// Check once, untimed, that a reply opens as WeChat would open it.
	first := httptest.NewRecorder()
	h.ServeHTTP(first, httptest.NewRequest(http.MethodPost, "/wx/safe?"+pushes[0].query.Encode(), bytes.NewReader(pushes[0].body)))
	if r := openReply(b, acctSafe, first.Body.Bytes()); r.MsgType != "text" {
		b.Fatalf("reply %+v", r)
	}
	var next atomic.Int64
	next.Store(1)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			if i >= int64(len(pushes)) {
				i = i % int64(len(pushes)) // a duplicate: still a full request
			}
			serveOne(b, h, pushes[i])
		}
	})
}

// BenchmarkSafeModeTextSerial is the same push one at a time: the latency
// of a lone request, which group commit must not slow down.
func BenchmarkSafeModeTextSerial(b *testing.B) {
	const now = 1715943329
	h, _ := benchHandler(b, now)
	pushes := benchPushes(b, b.N, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		serveOne(b, h, pushes[i])
	}
}
