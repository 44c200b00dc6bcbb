package msglog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// batcher is the group commit behind Record. One goroutine owns the write
// path: it takes the first waiting insert, everything else already queued,
// and — when traffic is concurrent — whatever arrives within MaxWait, up to
// MaxBatch rows; it writes them with one multi-row INSERT … ON CONFLICT DO
// NOTHING RETURNING in one transaction and answers each caller with its own
// result. Callers block only on their own answer.
type batcher struct {
	store *Store
	reqs  chan *Pending
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on a closed channel
	closed bool

	// Pushes announced (Expect) and not yet handed over (Arrived); counting
	// is set by the first announcement.
	expected atomic.Int64
	counting atomic.Bool

	insertStmts map[int]*sql.Stmt // the insert for n rows, prepared on first use
	conn        *sql.Conn         // SQLite: the writer's own connection

	// SQLite: checkpoints run beside the writer (see checkpointer).
	checkpoints     chan struct{}
	checkpointsDone chan struct{}
	sinceCheckpoint int // rows committed since the last checkpoint was asked for
}

// Pending is a push handed to the writer. Done is closed once it is
// written (or failed); Result then tells which.
type Pending struct {
	entry  Entry
	queued time.Time // when it was handed to the writer
	done   chan struct{}
	res    Result
	err    error
}

// Done is closed when the result is known.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Result waits for the write and returns its outcome.
func (p *Pending) Result() (Result, error) {
	<-p.done
	return p.res, p.err
}

func (p *Pending) finish(res Result, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// Completed returns a Pending that is already done, for other
// implementations of a message log (tests, fakes).
func Completed(res Result, err error) *Pending {
	p := &Pending{done: make(chan struct{})}
	p.finish(res, err)
	return p
}

func newBatcher(s *Store) *batcher {
	b := &batcher{
		store:       s,
		reqs:        make(chan *Pending, 4*s.maxBatch),
		done:        make(chan struct{}),
		insertStmts: map[int]*sql.Stmt{},
	}
	if s.db.Dialect == db.SQLite {
		b.checkpoints = make(chan struct{}, 1)
		b.checkpointsDone = make(chan struct{})
		go b.checkpointer()
	}
	go b.run()
	return b
}

// submit queues e. Once queued the row is written even if ctx ends, so a
// caller waits for the answer rather than guess whether it landed; the
// writer's own transaction timeout bounds the wait.
func (b *batcher) submit(ctx context.Context, e Entry) *Pending {
	p := &Pending{entry: e, queued: time.Now(), done: make(chan struct{})}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		p.finish(Result{}, ErrClosed)
		return p
	}
	// The queue almost always has room: ctx is only looked at when it is
	// full (a callback's context makes its deadline timer on first use).
	select {
	case b.reqs <- p:
		return p
	default:
	}
	select {
	case b.reqs <- p:
	case <-ctx.Done():
		p.finish(Result{}, ctx.Err())
	}
	return p
}

func (b *batcher) expect() {
	if !b.counting.Load() {
		b.counting.Store(true)
	}
	b.expected.Add(1)
}

func (b *batcher) arrived() { b.expected.Add(-1) }

// noneExpected reports that callers announce their pushes and none is on
// its way: the batch holds every push in flight.
func (b *batcher) noneExpected() bool {
	return b.counting.Load() && b.expected.Load() <= 0
}

// close stops accepting rows, lets the writer flush what is queued and
// waits for it.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.reqs)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	defer b.stopCheckpoints()
	defer b.closeStatements()
	defer func() {
		if b.conn != nil {
			b.conn.Close()
		}
	}()
	maxBatch, maxWait := b.store.maxBatch, b.store.maxWait
	gap := min(lingerGap, maxWait/4)
	batch := make([]*Pending, 0, maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		busy     bool      // the previous batch had several rows
		idleFrom time.Time // when the previous commit ended
		cooldown int       // batches before a quick single row may linger again
		backoff  = minLoneCooldown
	)
	for {
		first, ok := <-b.reqs
		if !ok {
			return
		}
		// A row that comes right after the previous commit is part of a
		// stream, even when the writer has so far kept up with it one row
		// at a time (a fast commit per row is the costliest way to write
		// a stream).
		quick := !idleFrom.IsZero() && time.Since(idleFrom) < gap
		batch = append(batch[:0], first)
		open := b.drain(&batch, maxBatch)
		// Under concurrent load, wait a moment for the rows that are about
		// to arrive: one commit for many is what makes SQLite keep up, and
		// the fewer commits, the less CPU each push costs. A lone request
		// is written at once. The wait ends MaxWait after the first row was
		// queued, or when the batch stops growing. It is not cut to the
		// length of the previous commit: on a server with one core, the
		// requests that will fill the batch are decrypted while the writer
		// waits, and cutting the wait short gave batches of 6 rows instead
		// of 40 and cost more CPU per push (docs/benchmarks.md).
		probe := false
		if open && maxWait > 0 && len(batch) < maxBatch {
			deadline := first.queued.Add(maxWait)
			switch {
			case busy || len(batch) > 1:
				open = b.linger(&batch, maxBatch, deadline, gap, timer)
			case quick && cooldown == 0:
				open = b.linger(&batch, maxBatch, deadline, gap, timer)
				probe = true
			}
		}
		busy = len(batch) > 1
		switch {
		case busy:
			cooldown, backoff = 0, minLoneCooldown
		case probe:
			// A quick row, and then nothing: requests come one at a
			// time, each soon after the previous answer. Do not wait on
			// the next ones, and try again later and later.
			cooldown, backoff = backoff, min(2*backoff, maxLoneCooldown)
		default:
			cooldown = max(cooldown-1, 0)
		}
		b.commit(batch)
		b.committed(len(batch))
		clear(batch)
		idleFrom = time.Now()
		if !open {
			// Flush whatever was queued before close, then stop.
			for r := range b.reqs {
				b.commit([]*Pending{r})
			}
			return
		}
	}
}

// lingerGap is how long the writer waits for the next row before it takes
// the batch as complete: arrivals pausing this long mean every request in
// flight is already in the batch (or far from it), and waiting on would
// only idle the callers. Under load rows come tens of microseconds apart.
const lingerGap = 200 * time.Microsecond

// After waiting for nothing, the writer commits single rows without
// waiting for this many batches before it tries again, doubling each time
// up to the maximum: one-at-a-time traffic pays the gap on ever fewer
// requests, and concurrent traffic is back to batches at its first overlap.
const (
	minLoneCooldown = 16
	maxLoneCooldown = 1024
)

// linger collects the rows arriving over the next moments, as long as the
// batch keeps growing: until the deadline, the batch is full, no row came
// for gap, or no push is announced (Expect). It reports false when the channel was closed.
func (b *batcher) linger(batch *[]*Pending, maxBatch int, deadline time.Time, gap time.Duration, timer *time.Timer) bool {
	// Since Go 1.23 Stop and Reset leave no stale tick behind, so the
	// timer is reused without draining.
	defer timer.Stop()
	for len(*batch) < maxBatch {
		if b.noneExpected() {
			// Nothing announced is on its way, but requests that are
			// ready to run may not have announced theirs yet: let them
			// run first. Then, if none came, waiting longer would only
			// idle the core (and a sub-millisecond timer on an idle Go
			// process fires after a whole millisecond).
			n := len(*batch)
			runtime.Gosched()
			if !b.drain(batch, maxBatch) {
				return false
			}
			if len(*batch) == n && b.noneExpected() {
				break
			}
			continue
		}
		wait := min(gap, time.Until(deadline))
		if wait <= 0 {
			break
		}
		timer.Reset(wait)
		select {
		case r, ok := <-b.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
			if !b.drain(batch, maxBatch) {
				return false
			}
		case <-timer.C:
			// Rows that came while the timer fired still make the batch.
			return b.drain(batch, maxBatch)
		}
		timer.Stop()
	}
	return true
}

// checkpointRows is how many rows the writer commits between two requests
// for a checkpoint: a few megabytes of write-ahead log.
const checkpointRows = 1000

// writerAutoCheckpoint is the write-ahead log size, in pages, at which the
// writer's own connection checkpoints after a commit, as SQLite connections
// do at 1000 by default: only a backstop here, reached when the checkpointer
// cannot keep up (long readers), so that the log stays bounded. It sits well
// above the length (16,000 pages) from which the checkpointer makes the log
// start over itself: a checkpoint inside the writer's commit fsyncs while
// holding the write gate and the one processor.
const writerAutoCheckpoint = 40000

// writerCacheKiB is the writer connection's page cache (SQLite's default
// is 2 MiB). Every push lands on a random leaf of the follower index, and
// the default cache cannot hold even the inner pages of the log's four
// trees once the log has a few hundred thousand rows, so most inserts
// read pages back from the file. With 16 MiB the writer made about 0.6
// fewer reads per push, on an empty log and on one of 3 million rows
// (docs/benchmarks.md), for about 20 MB more memory.
const writerCacheKiB = 16 << 10

// checkpointer copies the write-ahead log back into the SQLite database on
// a pooled connection of its own, whenever the writer has committed
// checkpointRows rows. SQLite would otherwise do it inside the commit that
// fills the log, with its writes and fsyncs, while every caller waits on
// that commit; a PASSIVE checkpoint beside the writer blocks neither it nor
// readers, and the log restarts from its beginning at the next commit after
// a complete one. db.WALCheckpointer does the fsyncs without holding a
// processor where it can.
func (b *batcher) checkpointer() {
	defer close(b.checkpointsDone)
	checkpointer, err := b.store.db.NewWALCheckpointer()
	if err != nil {
		// Not SQLite: newBatcher starts no checkpointer there.
		return
	}
	defer checkpointer.Close()
	for range b.checkpoints {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		// A failure (the database closing, a checkpoint already running)
		// leaves the work to the next request or to the writer's backstop.
		_, _, _ = checkpointer.Checkpoint(ctx)
		cancel()
	}
}

// committed counts rows written and asks for a checkpoint every
// checkpointRows of them, without waiting for one that is running.
func (b *batcher) committed(rows int) {
	if b.checkpoints == nil {
		return
	}
	b.sinceCheckpoint += rows
	if b.sinceCheckpoint < checkpointRows {
		return
	}
	b.sinceCheckpoint = 0
	select {
	case b.checkpoints <- struct{}{}:
	default:
	}
}

func (b *batcher) stopCheckpoints() {
	if b.checkpoints != nil {
		close(b.checkpoints)
		<-b.checkpointsDone
	}
}

// drain appends the requests already queued, without waiting. It reports
// false when the channel was closed.
func (b *batcher) drain(batch *[]*Pending, maxBatch int) bool {
	for len(*batch) < maxBatch {
		select {
		case r, ok := <-b.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
		default:
			return true
		}
	}
	return true
}

// commitTimeout bounds one batch transaction, so a stuck database fails the
// callers instead of hanging them.
const commitTimeout = 10 * time.Second

type dedupKey struct{ account, key string }

// commit writes a batch and answers every request. If the batch fails as a
// whole (one bad row, a serialisation failure), each row is retried in its
// own transaction so one row cannot fail the others.
func (b *batcher) commit(batch []*Pending) {
	results, err := b.writeBatch(batch)
	// A timeout means the database is unreachable, not that a row is bad:
	// retrying row by row would only multiply the wait.
	if err != nil && len(batch) > 1 && !errors.Is(err, context.DeadlineExceeded) {
		for _, r := range batch {
			res, err := b.writeBatch([]*Pending{r})
			if err != nil {
				r.finish(Result{}, err)
			} else {
				r.finish(res[0], nil)
			}
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.finish(Result{}, err)
		} else {
			r.finish(results[i], nil)
		}
	}
}

func (b *batcher) writeBatch(batch []*Pending) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()

	// Two deliveries of one push in the same batch: only the first is
	// inserted, the others are its duplicates.
	results := make([]Result, len(batch))
	firstOf := make(map[dedupKey]int, len(batch))
	unique := make([]int, 0, len(batch))
	// repeats counts the extra deliveries of a push within the batch.
	var repeats map[dedupKey]int
	for i, r := range batch {
		k := dedupKey{r.entry.Account, r.entry.DedupKey}
		if _, seen := firstOf[k]; seen {
			if repeats == nil {
				repeats = make(map[dedupKey]int)
			}
			repeats[k]++
			continue
		}
		firstOf[k] = i
		unique = append(unique, i)
	}

	// Prepare before the transaction: preparing on the pool needs a free
	// connection, and one that waits for it while holding SQLite's write
	// lock can wait behind every writer queued for that lock.
	stmt, err := b.insertStatement(ctx, len(unique))
	if err != nil {
		return nil, fmt.Errorf("msglog: prepare insert: %w", err)
	}
	// On SQLite the batch is a transaction on the writer's connection,
	// holding the write gate from BEGIN to COMMIT. On PostgreSQL the insert
	// runs on its own: one INSERT … RETURNING is atomic and durable when it
	// returns, and BEGIN and COMMIT would cost two more round trips to the
	// server per batch; the rare statements for duplicates after it each
	// stand alone too.
	var (
		tx     *sql.Tx
		run    statementRunner = b.store.db
		insert                 = stmt
	)
	if b.store.db.Dialect == db.SQLite {
		if tx, err = b.begin(ctx); err != nil {
			return nil, fmt.Errorf("msglog: begin: %w", err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		run, insert = tx, tx.StmtContext(ctx, stmt)
	}

	handledAt := db.Timestamp(b.store.now())
	args := make([]any, 0, len(unique)*insertColumnCount)
	for _, i := range unique {
		e := &batch[i].entry
		var msgID any
		if e.MsgID != 0 {
			msgID = e.MsgID
		}
		var handled any
		if e.Status != StatusPending {
			handled = handledAt
		}
		args = append(args, e.Account, e.DedupKey, e.OpenID, e.MsgType, e.Event, msgID,
			string(e.Fields), string(e.RawXML), db.Timestamp(e.ReceivedAt), string(e.Status), string(e.ReplyBody), handled)
	}
	rows, err := insert.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("msglog: insert: %w", err)
	}
	inserted := make(map[dedupKey]int64, len(unique))
	for rows.Next() {
		var (
			id int64
			k  dedupKey
		)
		if err := rows.Scan(&id, &k.account, &k.key); err != nil {
			rows.Close()
			return nil, fmt.Errorf("msglog: insert: %w", err)
		}
		inserted[k] = id
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("msglog: insert: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("msglog: insert: %w", err)
	}

	for _, i := range unique {
		e := &batch[i].entry
		k := dedupKey{e.Account, e.DedupKey}
		if id, ok := inserted[k]; ok {
			results[i] = Result{ID: id, Status: e.Status, ReplyBody: e.ReplyBody}
			if n := repeats[k]; n > 0 {
				if _, err := run.ExecContext(ctx, `UPDATE inbound_messages SET retries = $1 WHERE id = $2`, n, id); err != nil {
					return nil, fmt.Errorf("msglog: count retries: %w", err)
				}
			}
			continue
		}
		// Logged before (a retry, or another instance got it first): read
		// what the first delivery answered.
		var (
			status string
			body   string
		)
		// Counting the retry in the same statement costs no extra round trip.
		err := run.QueryRowContext(ctx,
			`UPDATE inbound_messages SET retries = retries + $3 WHERE account = $1 AND dedup_key = $2 RETURNING id, reply_status, reply_body`,
			e.Account, e.DedupKey, 1+repeats[k]).Scan(&results[i].ID, &status, &body)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("msglog: %s/%s neither inserted nor found", e.Account, e.DedupKey)
		}
		if err != nil {
			return nil, fmt.Errorf("msglog: read duplicate: %w", err)
		}
		results[i].Duplicate = true
		results[i].Status = Status(status)
		if body != "" {
			results[i].ReplyBody = []byte(body)
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("msglog: commit: %w", err)
		}
	}

	for i, r := range batch {
		first := firstOf[dedupKey{r.entry.Account, r.entry.DedupKey}]
		if first != i {
			results[i] = results[first]
			results[i].Duplicate = true
		}
	}
	return results, nil
}

const insertColumnCount = 12

// statementRunner is what a batch runs its statements on: the batch's
// transaction, or the database.
type statementRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// begin starts a batch transaction. On SQLite the writer keeps one
// connection of its own with temp_store = MEMORY (a multi-row insert inside
// a transaction keeps a statement journal, by default in a temporary file,
// which cost a file write per batch for data that never outlives the
// statement), a page cache of writerCacheKiB, and leaves checkpoints to the
// checkpointer.
func (b *batcher) begin(ctx context.Context) (*sql.Tx, error) {
	if b.store.db.Dialect != db.SQLite {
		return b.store.db.BeginTx(ctx, nil)
	}
	if b.conn == nil {
		conn, err := b.store.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		for _, pragma := range []string{`PRAGMA temp_store = MEMORY`, `PRAGMA wal_autocheckpoint = ` + strconv.Itoa(writerAutoCheckpoint),
			`PRAGMA cache_size = -` + strconv.Itoa(writerCacheKiB)} {
			if _, err := conn.ExecContext(ctx, pragma); err != nil {
				conn.Close()
				return nil, err
			}
		}
		b.conn = conn
	}
	tx, err := b.conn.BeginTx(ctx, nil)
	if err != nil {
		// Start over on a fresh connection next time.
		b.conn.Close()
		b.conn = nil
	}
	return tx, err
}

// insertStatement returns the prepared multi-row insert for n rows (at
// most MaxBatch statements), preparing it on first use: parsing an insert
// of hundreds of parameters costs more than running it. On SQLite the
// transaction is on the writer's own connection, so after the first use of
// a size the statement runs there without being parsed again. Only the
// writer goroutine touches the cache.
func (b *batcher) insertStatement(ctx context.Context, n int) (*sql.Stmt, error) {
	if stmt := b.insertStmts[n]; stmt != nil {
		return stmt, nil
	}
	// SQLite treats $N as a named parameter and looks each name up in a
	// list, quadratic in the parameter count, so it gets positional ?.
	stmt, err := b.store.db.PrepareContext(ctx, insertQuery(n, b.store.db.Dialect != db.SQLite))
	if err != nil {
		return nil, err
	}
	b.insertStmts[n] = stmt
	return stmt, nil
}

func (b *batcher) closeStatements() {
	for n, stmt := range b.insertStmts {
		stmt.Close()
		delete(b.insertStmts, n)
	}
}

// insertQuery builds the insert of n rows. RETURNING names the key of each
// inserted row, since neither database promises the order of returned
// rows; keys not returned were already there. numbered writes $N
// parameters, otherwise positional ?.
func insertQuery(n int, numbered bool) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, event, msg_id, fields, raw_xml, received_at, reply_status, reply_body, handled_at) VALUES `)
	p := 1
	for row := 0; row < n; row++ {
		if row > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for col := 0; col < insertColumnCount; col++ {
			if col > 0 {
				sb.WriteByte(',')
			}
			if numbered {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(p))
			} else {
				sb.WriteByte('?')
			}
			p++
		}
		sb.WriteByte(')')
	}
	sb.WriteString(` ON CONFLICT (account, dedup_key) DO NOTHING RETURNING id, account, dedup_key`)
	return sb.String()
}
