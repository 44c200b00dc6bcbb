package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"modernc.org/sqlite"
)

// SQLite lets one connection write at a time. Left to itself, a connection
// that finds the file locked sleeps in SQLite's busy handler (1, 2, 5 … up
// to 100 ms between attempts) and tries again, and whoever tries at the
// right moment wins. With a dozen writers (push workers, the callback log,
// delivery receipts, River's completer) some lost for seconds on end:
// callbacks missed WeChat's 5-second deadline while the queue kept winning
// (docs/benchmarks.md, "With delivery receipts").
//
// So wxgate's writers queue in the process first: a write transaction, or a
// write statement outside one, takes the file's write gate, first come first
// served, and SQLite's busy handler is left for other processes (a CLI
// command beside `wxgate serve`). Reads do not take the gate; in WAL mode
// they run beside the writer.
//
// Through *DB (BeginTx, ExecContext, QueryContext, QueryRowContext) a
// writer takes the gate before it takes a connection from the pool, so the
// writers waiting in line hold no connection: the writer at the front can
// still read on the pool, and the pool stays free for readers. Users of the
// bare *sql.DB (River, goose) take the gate in the driver, once they hold
// a connection.

// writeGateWait bounds the wait for the gate, as busy_timeout bounds the
// wait for SQLite's lock, so that a writer that never finishes turns into
// errors rather than a silent standstill.
const writeGateWait = 10 * time.Second

// writeGate admits one writer at a time to one database file.
type writeGate struct {
	sem  *semaphore.Weighted // FIFO: no writer is passed over
	wait time.Duration
}

var (
	writeGatesMu sync.Mutex
	writeGates   = map[string]*writeGate{} // by absolute file path
)

// writeGateFor returns the gate of the file at path, shared by every pool
// this process opens on it.
func writeGateFor(path string) *writeGate {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	writeGatesMu.Lock()
	defer writeGatesMu.Unlock()
	g, ok := writeGates[path]
	if !ok {
		g = &writeGate{sem: semaphore.NewWeighted(1), wait: writeGateWait}
		writeGates[path] = g
	}
	return g
}

// errWriteGateTimeout is what a writer gets when it waited writeGateWait.
var errWriteGateTimeout = errors.New("database is locked: another write held the SQLite database for too long")

func (g *writeGate) acquire(ctx context.Context) error {
	waitCtx, cancel := context.WithTimeout(ctx, g.wait)
	defer cancel()
	if err := g.sem.Acquire(waitCtx, 1); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (waited %s)", errWriteGateTimeout, g.wait)
	}
	return nil
}

func (g *writeGate) release() { g.sem.Release(1) }

// A context carrying gateHeld tells the driver that the caller holds the
// gate for this statement and gives it back itself.
type gateHeldKey struct{}

// A context carrying a *gateTicket hands the gate, already taken, to the
// transaction the driver begins; the transaction gives it back when it
// ends.
type gateTicketKey struct{}

type gateTicket struct {
	gate    *writeGate
	claimed bool // set by the driver's BeginTx, in the caller's goroutine
}

// A context carrying gateErrKey makes the driver fail the statement with
// that error (a wait for the gate that failed before the statement ran).
type gateErrKey struct{}

func gateHeldIn(ctx context.Context) *writeGate {
	g, _ := ctx.Value(gateHeldKey{}).(*writeGate)
	return g
}

// BeginTx begins a transaction. On SQLite it waits for the write gate
// before taking a connection.
func (d *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	if d.gate == nil {
		return d.DB.BeginTx(ctx, opts)
	}
	if err := d.gate.acquire(ctx); err != nil {
		return nil, err
	}
	ticket := &gateTicket{gate: d.gate}
	tx, err := d.DB.BeginTx(context.WithValue(ctx, gateTicketKey{}, ticket), opts)
	if !ticket.claimed { // the driver never began it: the gate is still ours
		d.gate.release()
	}
	return tx, err
}

// gateStatement takes the write gate for a statement outside a
// transaction that may write, before a connection is taken, and returns
// the context that tells the driver so and the func that gives the gate
// back. Elsewhere (PostgreSQL, a read) it changes nothing.
func (d *DB) gateStatement(ctx context.Context, query string) (context.Context, func(), error) {
	if d.gate == nil || !isWriteStatement(query) {
		return ctx, func() {}, nil
	}
	if err := d.gate.acquire(ctx); err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, gateHeldKey{}, d.gate), d.gate.release, nil
}

// ExecContext runs a statement; on SQLite one that may write waits for the
// write gate first.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, leave, err := d.gateStatement(ctx, query)
	if err != nil {
		return nil, err
	}
	defer leave()
	return d.DB.ExecContext(ctx, query, args...)
}

// QueryContext runs a query, as ExecContext for one that may write
// (INSERT … RETURNING).
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, leave, err := d.gateStatement(ctx, query)
	if err != nil {
		return nil, err
	}
	defer leave()
	return d.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query expected to return one row, as
// QueryContext.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	gctx, leave, err := d.gateStatement(ctx, query)
	if err != nil {
		// Only database/sql makes a Row that carries an error: the driver
		// returns this one as soon as it is asked to run the query.
		return d.DB.QueryRowContext(context.WithValue(ctx, gateErrKey{}, err), query, args...)
	}
	defer leave()
	return d.DB.QueryRowContext(gctx, query, args...)
}

// openSQLitePool opens a pool on the SQLite file at path whose writers go
// through the file's write gate, which it returns.
func openSQLitePool(path string, maxConns int) (*sql.DB, *writeGate, error) {
	base, err := sqlite.NewConnector(path + "?" + sqliteParams)
	if err != nil {
		return nil, nil, fmt.Errorf("opening SQLite database %s: %w", path, err)
	}
	gate := writeGateFor(path)
	pool := sql.OpenDB(gatedConnector{base: base, gate: gate})
	pool.SetMaxOpenConns(maxConns)
	pool.SetMaxIdleConns(maxConns)
	return pool, gate, nil
}

// OpenSQLitePool opens a second pool on the file of d, a SQLite database,
// with the same connection options and sharing its write gate. River's
// SQLite driver wants a pool of its own with one connection.
func (d *DB) OpenSQLitePool(ctx context.Context, maxConns int) (*sql.DB, error) {
	if d.Dialect != SQLite {
		return nil, fmt.Errorf("a second SQLite pool on a %s database", d.Dialect)
	}
	pool, _, err := openSQLitePool(d.path, maxConns)
	if err != nil {
		return nil, err
	}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening a second pool on the SQLite database %s: %w", d.path, err)
	}
	return pool, nil
}

// isWriteStatement tells whether a statement run outside a transaction may
// write. It errs towards "write": a read that takes the gate only waits its
// turn, a write that does not still works through SQLite's busy handler.
func isWriteStatement(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	word := q
	if i := strings.IndexAny(q, " \t\r\n("); i >= 0 {
		word = q[:i]
	}
	switch strings.ToUpper(word) {
	case "SELECT", "PRAGMA", "EXPLAIN", "VALUES":
		return false
	}
	return true
}

type gatedConnector struct {
	base driver.Connector
	gate *writeGate
}

func (c gatedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ic, ok := conn.(innerConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite connection %T lacks a context-aware method", conn)
	}
	return &gatedConn{inner: ic, gate: c.gate}, nil
}

func (c gatedConnector) Driver() driver.Driver { return c.base.Driver() }

// innerConn is what every modernc connection implements; the wrapper
// forwards all of it so database/sql keeps its context-aware paths.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// gatedConn is one connection. database/sql uses a connection from one
// goroutine at a time, so inTx needs no lock.
type gatedConn struct {
	inner innerConn
	gate  *writeGate
	inTx  bool
}

// Unwrap returns the driver's own connection (modernc's helpers look for it).
func (c *gatedConn) Unwrap() driver.Conn { return c.inner }

// enter takes the gate for a statement outside a transaction when it may
// write; the returned func gives it back.
func (c *gatedConn) enter(ctx context.Context, write bool) (func(), error) {
	if err, ok := ctx.Value(gateErrKey{}).(error); ok {
		return nil, err
	}
	if c.inTx || !write || gateHeldIn(ctx) == c.gate {
		return func() {}, nil
	}
	if err := c.gate.acquire(ctx); err != nil {
		return nil, err
	}
	return c.gate.release, nil
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{inner: st, conn: c, write: isWriteStatement(query)}, nil
}

func (c *gatedConn) Close() error { return c.inner.Close() }

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx takes the gate for the whole transaction: with _txlock=immediate
// every transaction takes SQLite's write lock at BEGIN anyway.
func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if t, ok := ctx.Value(gateTicketKey{}).(*gateTicket); ok && t.gate == c.gate && !t.claimed {
		t.claimed = true // taken by DB.BeginTx before it took this connection
	} else if err := c.gate.acquire(ctx); err != nil {
		return nil, err
	}
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		c.gate.release()
		return nil, err
	}
	c.inTx = true
	return &gatedTx{inner: tx, conn: c}, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	leave, err := c.enter(ctx, isWriteStatement(query))
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.inner.ExecContext(ctx, query, args)
}

// QueryContext gives the gate back when the statement has run, before its
// rows are read: an INSERT … RETURNING has done its writing by then.
func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	leave, err := c.enter(ctx, isWriteStatement(query))
	if err != nil {
		return nil, err
	}
	defer leave()
	return c.inner.QueryContext(ctx, query, args)
}

func (c *gatedConn) Ping(ctx context.Context) error {
	return c.inner.Ping(ctx)
}

func (c *gatedConn) ResetSession(ctx context.Context) error {
	return c.inner.ResetSession(ctx)
}

func (c *gatedConn) IsValid() bool {
	return c.inner.IsValid()
}

type gatedTx struct {
	inner driver.Tx
	conn  *gatedConn
	done  bool
}

func (t *gatedTx) Commit() error {
	err := t.inner.Commit()
	t.end()
	return err
}

func (t *gatedTx) Rollback() error {
	err := t.inner.Rollback()
	t.end()
	return err
}

func (t *gatedTx) end() {
	if t.done {
		return
	}
	t.done = true
	t.conn.inTx = false
	t.conn.gate.release()
}

type gatedStmt struct {
	inner driver.Stmt
	conn  *gatedConn
	write bool
}

func (s *gatedStmt) Close() error  { return s.inner.Close() }
func (s *gatedStmt) NumInput() int { return s.inner.NumInput() }

func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	leave, err := s.conn.enter(context.Background(), s.write)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.inner.Exec(args) //nolint:staticcheck // database/sql calls it only when the context form is missing
}

func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	leave, err := s.conn.enter(context.Background(), s.write)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.inner.Query(args) //nolint:staticcheck // as Exec
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	leave, err := s.conn.enter(ctx, s.write)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.inner.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	leave, err := s.conn.enter(ctx, s.write)
	if err != nil {
		return nil, err
	}
	defer leave()
	return s.inner.(driver.StmtQueryContext).QueryContext(ctx, args)
}
