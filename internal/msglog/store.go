package msglog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// Options tunes the group commit of Record.
type Options struct {
	// MaxBatch is the most rows committed in one transaction (default 64).
	MaxBatch int
	// MaxWait is how long a row may wait, from being queued, for more rows
	// to share its commit, when the traffic is concurrent (default 3ms;
	// negative: never wait). The writer stops waiting sooner when the batch
	// stops growing (no row for 200µs, or a quarter of MaxWait if less), or
	// as soon as no announced push is on its way (Expect), so only a steady
	// stream of rows waits the whole MaxWait. An idle gateway
	// commits at once, so a lone request never waits.
	MaxWait time.Duration
	// Now stamps handled_at; defaults to time.Now.
	Now func() time.Time
}

// Store is the inbound message log over the database.
//
// Record goes through a single writer goroutine that commits concurrent
// inserts together (group commit): with SQLite's one write lock and a
// commit per push, throughput would be bound by commits; batching shares one
// commit among everyone waiting. On SQLite the write-ahead log is
// checkpointed beside the writer, so no caller waits on a checkpoint.
type Store struct {
	db       *db.DB
	now      func() time.Time
	maxBatch int
	maxWait  time.Duration

	batches *batcher
}

// defaultMaxWait lets a batch grow to a few dozen rows at a few thousand
// pushes a second; a longer commit interval gains little more.
const defaultMaxWait = 3 * time.Millisecond

// NewStore starts the store's writer. Close stops it after flushing.
func NewStore(d *db.DB, opts Options) *Store {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.MaxWait < 0 {
		opts.MaxWait = 0
	} else if opts.MaxWait == 0 {
		opts.MaxWait = defaultMaxWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{db: d, now: opts.Now, maxBatch: opts.MaxBatch, maxWait: opts.MaxWait}
	s.batches = newBatcher(s)
	return s
}

// Close flushes the rows waiting to be written and stops the writer. Record
// fails with ErrClosed afterwards.
func (s *Store) Close() error {
	s.batches.close()
	return nil
}

// Record inserts a push unless its (account, dedup key) is already logged.
// For a duplicate — a WeChat retry, also when it arrives in the same batch
// as the first delivery — it returns the stored outcome, so the retry gets
// the same reply.
func (s *Store) Record(ctx context.Context, e Entry) (Result, error) {
	return s.Begin(ctx, e).Result()
}

// Begin hands a push to the writer and returns at once, so a caller with a
// deadline can stop waiting without losing the row; Record is Begin and
// wait.
func (s *Store) Begin(ctx context.Context, e Entry) *Pending {
	if e.Account == "" || e.DedupKey == "" {
		return Completed(Result{}, errors.New("msglog: account and dedup key are required"))
	}
	if e.Status == "" {
		e.Status = StatusPending
	}
	if !e.Status.Valid() {
		return Completed(Result{}, fmt.Errorf("msglog: unknown status %q", e.Status))
	}
	if len(e.Fields) == 0 {
		e.Fields = []byte("{}")
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = s.now()
	}
	return s.batches.submit(ctx, e)
}

// Expect tells the writer a push is on its way to Begin: a request whose
// push is being read and decrypted. Every Expect is matched by one Arrived,
// called just before that push's Begin or when the request ends without
// one. Once a caller announces pushes this way, the writer stops waiting
// for more rows as soon as none is announced: at a steady concurrency,
// when every request in flight is already in the batch, there is nothing
// to wait for, and on an idle core Go rounds a sub-millisecond wait up to
// a whole millisecond (docs/benchmarks.md). An Arrived that never comes
// (a request that panicked) costs speed, not rows: the writer then waits
// for each batch to stop growing, as it does for callers that announce
// nothing.
func (s *Store) Expect() { s.batches.expect() }

// Arrived withdraws one Expect.
func (s *Store) Arrived() { s.batches.arrived() }

// SetOutcome records what finally happened to a push whose work finished
// after it was recorded (the deferred path).
func (s *Store) SetOutcome(ctx context.Context, account, dedupKey string, status Status, replyBody []byte) error {
	if !status.Valid() {
		return fmt.Errorf("msglog: unknown status %q", status)
	}
	res, err := s.db.ExecContext(ctx,
		`UPDATE inbound_messages SET reply_status = $1, reply_body = $2, handled_at = $3 WHERE account = $4 AND dedup_key = $5`,
		string(status), string(replyBody), db.Timestamp(s.now()), account, dedupKey)
	if err != nil {
		return fmt.Errorf("msglog: set outcome: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

const messageColumns = `id, account, dedup_key, openid, msg_type, event, msg_id, fields, raw_xml, received_at, reply_status, reply_body, handled_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanMessage(row rowScanner) (Message, error) {
	var (
		m       Message
		msgID   sql.NullInt64
		fields  []byte
		handled sql.NullTime
		status  string
	)
	if err := row.Scan(&m.ID, &m.Account, &m.DedupKey, &m.OpenID, &m.MsgType, &m.Event, &msgID,
		&fields, &m.RawXML, &m.ReceivedAt, &status, &m.ReplyBody, &handled); err != nil {
		return Message{}, err
	}
	m.MsgID = msgID.Int64
	m.Fields = fields
	m.ReplyStatus = Status(status)
	m.ReceivedAt = m.ReceivedAt.UTC()
	if handled.Valid {
		t := handled.Time.UTC()
		m.HandledAt = &t
	}
	return m, nil
}

// Get returns the logged push with this de-duplication key.
func (s *Store) Get(ctx context.Context, account, dedupKey string) (Message, error) {
	m, err := scanMessage(s.db.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM inbound_messages WHERE account = $1 AND dedup_key = $2`, account, dedupKey))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("msglog: get: %w", err)
	}
	return m, nil
}

// Filter selects logged pushes, newest first.
type Filter struct {
	Account string // required
	OpenID  string // optional: one follower's pushes
	// BeforeID pages backwards: only rows with a smaller id.
	BeforeID int64
	// Limit defaults to 50 and is capped at 500.
	Limit int
}

// List returns the pushes of an account (or of one follower), newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Message, error) {
	if f.Account == "" {
		return nil, errors.New("msglog: list needs an account")
	}
	f.Limit = db.PageLimit(f.Limit, 50, 500)
	p := db.NewParams(f.Account)
	where := []string{"account = $1"}
	if f.OpenID != "" {
		where = append(where, "openid = "+p.Add(f.OpenID))
	}
	if f.BeforeID > 0 {
		where = append(where, "id < "+p.Add(f.BeforeID))
	}
	query := `SELECT ` + messageColumns + ` FROM inbound_messages WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY id DESC LIMIT ` + p.Add(f.Limit)
	rows, err := s.db.QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("msglog: list: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("msglog: list: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("msglog: list: %w", err)
	}
	return out, nil
}

// ListByOpenID returns one follower's most recent pushes, newest first.
func (s *Store) ListByOpenID(ctx context.Context, account, openid string, limit int) ([]Message, error) {
	return s.List(ctx, Filter{Account: account, OpenID: openid, Limit: limit})
}

// Count returns how many pushes of an account are logged ("" = all).
func (s *Store) Count(ctx context.Context, account string) (int64, error) {
	var n int64
	var err error
	if account == "" {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM inbound_messages`).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM inbound_messages WHERE account = $1`, account).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("msglog: count: %w", err)
	}
	return n, nil
}

// deleteChunk bounds each retention delete, and deletePause separates two,
// so that SQLite's single write lock is never held long enough to stall the
// callbacks being logged meanwhile.
const (
	deleteChunk = 1000
	deletePause = 10 * time.Millisecond
)

// DeleteOlderThan removes pushes received before cutoff, a chunk at a time,
// and returns how many. Each chunk looks at the oldest deleteChunk rows by
// id only (ids grow with arrival), so no delete ever scans the table, and
// the job ends at the first chunk with nothing old left in it.
func (s *Store) DeleteOlderThan(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx,
			`DELETE FROM inbound_messages WHERE id IN (
				SELECT id FROM (SELECT id, received_at FROM inbound_messages ORDER BY id LIMIT $2) oldest
				WHERE received_at < $1)`,
			db.Timestamp(cutoff), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("msglog: retention: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("msglog: retention: %w", err)
		}
		total += n
		if n == 0 {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(deletePause):
		}
	}
}

// RetentionEvery is how often RunRetention looks for pushes to delete.
const RetentionEvery = 10 * time.Minute

// RunRetention deletes the pushes older than keep, at start and then every
// RetentionEvery, until ctx ends. Every instance may run it: the deletes
// are idempotent.
func (s *Store) RunRetention(ctx context.Context, keep time.Duration, log *slog.Logger) {
	if keep <= 0 {
		return
	}
	t := time.NewTicker(RetentionEvery)
	defer t.Stop()
	for {
		start := s.now()
		n, err := s.DeleteOlderThan(ctx, start.Add(-keep))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.WarnContext(ctx, "msglog: deleting old pushes", slog.String("error", err.Error()))
		case n > 0:
			log.InfoContext(ctx, "msglog: deleted pushes past msglog.retention", slog.Int64("rows", n),
				slog.Duration("retention", keep), slog.Duration("took", s.now().Sub(start)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The customer-service window (客服消息): an account may send a follower
// customer-service messages for 48 hours after the follower's last
// message, and for a minute after a follow, QR scan or menu click.
const (
	// WindowMessage is the window a user message opens.
	WindowMessage = 48 * time.Hour
	// WindowEvent is the window a follow, QR scan or menu click opens.
	WindowEvent = time.Minute
)

// Windows tells from the inbound log whose customer-service window is
// open. It only reads, so it needs no writer of its own beside a Store.
type Windows struct {
	db *db.DB
}

// NewWindows reads the log of d.
func NewWindows(d *db.DB) *Windows { return &Windows{db: d} }

// OpenWindows returns the openids of account whose customer-service window
// is open at now: a user message within WindowMessage, or a follow, QR
// scan or menu click within WindowEvent.
func (w *Windows) OpenWindows(ctx context.Context, account string, openids []string, now time.Time) (map[string]bool, error) {
	msgSince := db.Timestamp(now.Add(-WindowMessage))
	evSince := db.Timestamp(now.Add(-WindowEvent))
	out := map[string]bool{}
	// The follower index is in (openid, id) order: reading each follower's
	// pushes from the first id of the window on reads only the window, not
	// the follower's whole history. Ids grow with arrival; the bound starts
	// a minute early so that instances whose clocks differ a little on
	// PostgreSQL still find every push of the window.
	var fromID int64
	err := w.db.QueryRowContext(ctx, `SELECT id FROM inbound_messages WHERE account = $1 AND received_at >= $2 ORDER BY received_at LIMIT 1`,
		account, db.Timestamp(now.Add(-WindowMessage-time.Minute))).Scan(&fromID)
	if errors.Is(err, sql.ErrNoRows) {
		return out, nil // nothing in the window
	}
	if err != nil {
		return nil, fmt.Errorf("msglog: customer-service windows: %w", err)
	}
	err = db.InChunks(openids, func(part []string) error {
		p := db.NewParams(account, msgSince, evSince, fromID)
		rows, err := w.db.QueryContext(ctx, `SELECT DISTINCT openid FROM inbound_messages WHERE openid IN (`+p.In(part)+`) AND id >= $4 AND account = $1
AND ((msg_type <> 'event' AND received_at >= $2)
  OR (msg_type = 'event' AND event IN ('subscribe', 'SCAN', 'CLICK', 'scancode_push', 'scancode_waitmsg') AND received_at >= $3))`,
			p.Args()...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				return err
			}
			out[o] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("msglog: customer-service windows: %w", err)
	}
	return out, nil
}
