package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Starting answers on the gateway's listener while the gateway starts
// (migrations, which on PostgreSQL may wait for another instance's, then
// building the pieces): /healthz is 200, /readyz and everything else 503
// with the step under way, so a balancer or an orchestrator sees a live
// process that is not ready instead of a refused connection. Handoff then
// gives the listener, still open, to the real server.
type Starting struct {
	step  atomic.Value // string: the code /readyz answers
	srv   *http.Server
	pump  *listenerPump
	early *phaseListener
	done  chan error
}

// Start steps named by Starting.Step.
const (
	StepMigrating = "migrations_pending"
	StepStarting  = "starting"
)

// NewStarting serves ln until Handoff.
func NewStarting(ln net.Listener) *Starting {
	pump := newListenerPump(ln)
	s := &Starting{pump: pump, early: pump.early, done: make(chan error, 1)}
	s.step.Store(StepStarting)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		if s.step.Load() == StepMigrating {
			writeError(w, http.StatusServiceUnavailable, StepMigrating,
				"database migrations are being applied (or another instance is applying them); the gateway serves once they are done — 正在执行数据库迁移（或等待其他实例完成迁移），完成后开始服务")
			return
		}
		writeError(w, http.StatusServiceUnavailable, StepStarting, "the gateway is starting — 网关正在启动")
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.srv.Serve(s.early) }()
	return s
}

// Step sets what /readyz reports.
func (s *Starting) Step(code string) { s.step.Store(code) }

// Handoff stops answering and returns the listener for the real server:
// connections accepted from now on go to it. The real server closing it
// closes the socket.
func (s *Starting) Handoff(ctx context.Context) net.Listener {
	_ = s.srv.Shutdown(ctx)
	<-s.done
	return s.pump.main
}

// Close stops answering and closes the socket (the gateway failed to
// start).
func (s *Starting) Close() {
	_ = s.srv.Close()
	<-s.done
	_ = s.pump.main.Close()
}

// listenerPump accepts from one socket and hands each connection to the
// phase listening now: early until it is closed, then main.
type listenerPump struct {
	ln          net.Listener
	early, main *phaseListener
	failed      chan struct{}
	err         error
}

type phaseListener struct {
	pump      *listenerPump
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	onClose   func()
}

func newListenerPump(ln net.Listener) *listenerPump {
	p := &listenerPump{ln: ln, failed: make(chan struct{})}
	p.early = &phaseListener{pump: p, conns: make(chan net.Conn), closed: make(chan struct{})}
	p.main = &phaseListener{pump: p, conns: make(chan net.Conn), closed: make(chan struct{}), onClose: func() { ln.Close() }}
	go p.run()
	return p
}

func (p *listenerPump) run() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.err = err
			close(p.failed)
			return
		}
		select {
		case p.early.conns <- c:
			continue
		case <-p.early.closed:
		}
		select {
		case p.main.conns <- c:
		case <-p.main.closed:
			c.Close()
		}
	}
}

func (l *phaseListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.pump.failed:
		return nil, l.pump.err
	}
}

func (l *phaseListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		if l.onClose != nil {
			l.onClose()
		}
	})
	return nil
}

func (l *phaseListener) Addr() net.Addr { return l.pump.ln.Addr() }
