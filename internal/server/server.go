// Package server is the gateway's HTTP side: the root mux with the handlers
// the composition root built (WeChat callback, API, console), health,
// readiness and metrics; the middleware every request passes (request id,
// logging, panic recovery); and a graceful stop that drains requests and
// the callbacks' background work.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/db"
)

// Options builds a Server from ready-made parts; the server builds none
// of its own and closes none of them.
type Options struct {
	Logger *slog.Logger
	// DB answers /readyz.
	DB *db.DB
	// Callback serves /wx/{account}; Serve waits for its background work
	// at stop. Optional (a server of the API alone).
	Callback *callback.Handler
	// Routes are the other handlers of the root mux, pattern → handler,
	// e.g. "/api/v1/" and "/admin/".
	Routes map[string]http.Handler
	// Registry is what /metrics serves; a fresh one with the Go and
	// process collectors when nil.
	Registry *prometheus.Registry
	// MetricsListener, when set, serves /metrics on its own address (by
	// default loopback, config metrics.listen).
	MetricsListener net.Listener
	// MetricsOnPublicListener also serves /metrics among the Routes.
	MetricsOnPublicListener bool
	// MetricsToken, when set, must be sent as "Authorization: Bearer …"
	// to read /metrics on either listener.
	MetricsToken string
	// ShutdownTimeout bounds the graceful stop (default 20s).
	ShutdownTimeout time.Duration
	// DrainDelay is how long the server keeps serving, with /readyz
	// answering 503, once asked to stop: time for a load balancer to see
	// the instance is going and send new requests elsewhere before the
	// listener closes. 0 closes at once (one instance, nothing in front).
	DrainDelay time.Duration
}

// Server is the gateway's HTTP server.
type Server struct {
	opts    Options
	logger  *slog.Logger
	handler http.Handler
	metrics http.Handler

	draining atomic.Bool
	served   atomic.Bool
}

// New builds the routes and middleware.
func New(opts Options) (*Server, error) {
	if opts.DB == nil {
		return nil, errors.New("server: a database is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 20 * time.Second
	}
	s := &Server{opts: opts, logger: opts.Logger}
	s.metrics = requireBearer(opts.MetricsToken,
		promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))

	mux := http.NewServeMux()
	if opts.Callback != nil {
		opts.Callback.Register(mux)
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if opts.MetricsOnPublicListener {
		mux.Handle("GET /metrics", s.metrics)
	}
	for pattern, h := range opts.Routes {
		mux.Handle(pattern, h)
	}
	s.handler = requestID(logRequests(s.logger, recoverPanics(s.logger, mux)))
	return s, nil
}

// Handler is the root handler with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler is /metrics behind its token, as the metrics listener
// serves it.
func (s *Server) MetricsHandler() http.Handler { return s.metrics }

// requireBearer answers 401 unless the request carries token as a bearer
// token; an empty token lets every request through.
func requireBearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wxgate metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics_unauthorized",
				"send the metrics token as Authorization: Bearer <metrics.token> — 请在 Authorization 头中携带 metrics.token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve serves on ln (and /metrics on the metrics listener) until ctx
// ends. Then it stops accepting, lets the requests in flight finish and
// waits for callbacks' background work. It may be called once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		ln.Close()
		return errors.New("server: Serve called twice")
	}
	servers := []*http.Server{s.httpServer(s.handler)}
	listeners := []net.Listener{ln}
	if s.opts.MetricsListener != nil {
		metricsMux := http.NewServeMux()
		metricsMux.Handle("GET /metrics", s.metrics)
		servers = append(servers, s.httpServer(metricsMux))
		listeners = append(listeners, s.opts.MetricsListener)
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
		s.logger.Info("listening", "addr", listeners[i].Addr().String(), "metrics_only", i > 0)
	}

	var errs []error
	pending := len(servers)
	select {
	case err := <-errc:
		pending--
		errs = append(errs, fmt.Errorf("server: %w", err))
	case <-ctx.Done():
	}

	s.draining.Store(true)
	if s.opts.DrainDelay > 0 && pending == len(servers) {
		s.logger.Info("shutting down: /readyz answers 503; still serving for the drain delay", "drain_delay", s.opts.DrainDelay)
		select {
		case err := <-errc:
			pending--
			errs = append(errs, fmt.Errorf("server: %w", err))
		case <-time.After(s.opts.DrainDelay):
		}
	}
	s.logger.Info("shutting down: draining requests and background work")
	stopCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("server: stopping HTTP: %w", err))
		}
	}
	for ; pending > 0; pending-- {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("server: %w", err))
		}
	}
	if s.opts.Callback != nil {
		if err := s.opts.Callback.Wait(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("server: background work still running at shutdown: %w", err))
		}
	}
	s.logger.Info("stopped")
	return errors.Join(errs...)
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// readyz says whether this instance should get traffic: the database
// answers (a ping within 2 s) and the server is not shutting down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down — 服务正在停止")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.DB.PingContext(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database_unavailable",
			fmt.Sprintf("the %s database does not answer: %v — 数据库无法连接", s.opts.DB.Dialect, err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}
