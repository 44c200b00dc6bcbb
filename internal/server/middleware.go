package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	if st, ok := ctx.Value(requestIDKey).(*requestState); ok {
		return st.id
	}
	return ""
}

// requestState is what the middleware keeps per request, in one
// allocation: the id (a pointer in the context needs no boxing) and the
// status writer that logging and panic recovery share.
type requestState struct {
	statusWriter
	id string
}

// requestIDs are a per-process random prefix and a counter: unique enough
// to find one request in the logs, and free of a crypto/rand read per request.
var (
	requestIDPrefix = func() string {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
	requestIDCounter atomic.Uint64
)

// newRequestID returns the next id, built in one allocation.
func newRequestID() string {
	var buf [32]byte
	b := append(buf[:0], requestIDPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, requestIDCounter.Add(1), 36)
	return string(b)
}

// requestID takes X-Request-Id from a proxy when it looks like an id, or
// makes one, and echoes it on the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		st := &requestState{statusWriter: statusWriter{ResponseWriter: w}, id: id}
		next.ServeHTTP(&st.statusWriter, r.WithContext(context.WithValue(r.Context(), requestIDKey, st)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter remembers the status and whether anything was written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs method, path, status, duration and request id — never
// query strings (they carry signatures and echostr) nor bodies. Routine
// traffic (successful callbacks, probes, scrapes) logs at debug: at
// thousands of pushes a second an info line each would cost more than the
// push. Refusals log at warn, server errors at error.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		case routine(r.URL.Path):
			level = slog.LevelDebug
		}
		ctx := r.Context()
		if !logger.Enabled(ctx, level) {
			return
		}
		logger.LogAttrs(ctx, level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", RequestID(ctx)),
			slog.String("remote", r.RemoteAddr))
	})
}

func routine(path string) bool {
	return strings.HasPrefix(path, "/wx/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// recoverPanics turns a handler's panic into a logged 500 with a JSON body,
// instead of a dropped connection.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p) // the handler asked to abort the connection
			}
			logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
				"request_id", RequestID(r.Context()), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, "internal_error",
					"internal error; the server log has the details (request id "+RequestID(r.Context())+") — 服务器内部错误，详情见服务日志")
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// writeError writes the project's JSON error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]map[string]string{"error": {"code": code, "message": message}})
}
