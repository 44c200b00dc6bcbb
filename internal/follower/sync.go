package follower

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// SyncClient is what a full sync needs of WeChat's API (*wechat.Client).
type SyncClient interface {
	Followers(ctx context.Context, nextOpenID string) (*wechat.FollowerPage, error)
	BatchUserInfo(ctx context.Context, users []wechat.UserInfoRequest) ([]wechat.UserInfo, error)
}

// Sync states (follower_syncs.status).
const (
	SyncRunning     = "running"
	SyncInterrupted = "interrupted" // stopped by its context; a rerun resumes
	SyncFailed      = "failed"      // stopped by an error; a rerun resumes
	SyncCompleted   = "completed"
)

// Defaults of SyncOptions and of the sync lease.
const (
	DefaultSyncConcurrency = 4
	MaxSyncConcurrency     = 16
	syncLeaseTTL           = 2 * time.Minute
	syncBatchAttempts      = 3
)

// SyncOptions tune one Run.
type SyncOptions struct {
	// Concurrency is how many user/info/batchget calls are in flight at
	// once (DefaultSyncConcurrency when zero, at most MaxSyncConcurrency).
	Concurrency int
	// Restart begins a new sync even when the last one did not finish;
	// by default an unfinished sync is resumed.
	Restart bool
	// TakeOver takes the sync over from the process that holds it (after
	// it crashed, before its lease expires). Without it, a crashed
	// holder's sync is resumed once its lease expired (syncLeaseTTL after
	// its last saved batch).
	TakeOver bool
	// Progress, when set, is called at the start, after every saved batch
	// and every completed page, one call at a time.
	Progress func(SyncStatus)
}

// SyncStatus is the state of an account's full sync, as stored.
type SyncStatus struct {
	Account string `json:"account"`
	// Run numbers the syncs of the account; a resumed sync keeps its number.
	Run    int64  `json:"run"`
	Status string `json:"status"`
	// Resumed says this Run continued an unfinished sync.
	Resumed      bool       `json:"resumed,omitempty"`
	Resumes      int        `json:"resumes"`
	StartedAt    time.Time  `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Pages        int        `json:"pages"`
	Total        int64      `json:"total"`
	Listed       int64      `json:"listed"`
	Profiled     int64      `json:"profiled"`
	Unsubscribed int64      `json:"unsubscribed"`
	ListCalls    int64      `json:"list_calls"`
	BatchCalls   int64      `json:"batch_calls"`
	LastError    string     `json:"last_error,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
	// Cursor is user/get's next_openid of the page in progress.
	Cursor string `json:"-"`
}

// SyncRunningError says another process (or goroutine) holds the sync of
// the account.
type SyncRunningError struct {
	Account string
	Holder  string
	Until   time.Time
}

func (e *SyncRunningError) Error() string {
	return fmt.Sprintf("follower: a sync of account %q is already running (%s, lease until %s) — 该账号的粉丝同步正在进行",
		e.Account, e.Holder, e.Until.Format(time.RFC3339))
}

// As presents the running sync as a conflict (409 sync_running).
func (e *SyncRunningError) As(target any) bool {
	return problem.Present(target, problem.New(problem.Conflict, "sync_running", "account", e.Error()))
}

// errLeaseLost stops a sync whose lease another process took over (it
// stalled longer than the lease).
var errLeaseLost = errors.New("follower: the sync lease was taken over by another process")

// Syncer runs full syncs of the follower list: user/get pages (10 000
// openids each), profiles by user/info/batchget (100 per call, several
// calls in flight). Progress is stored as it goes, so a sync stopped by a
// crash, a cancel or an error continues where it stopped when run again;
// running it again after it completed starts a new sync, which changes
// nothing that did not change at WeChat. Followers missing from the list
// are marked unsubscribed at the end, never deleted.
type Syncer struct {
	db     *db.DB
	now    func() time.Time
	log    *slog.Logger
	leases *db.Leases
}

// NewSyncer returns a Syncer; now defaults to time.Now and logger to none.
func NewSyncer(d *db.DB, now func() time.Time, logger *slog.Logger) *Syncer {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{db: d, now: now, log: logger, leases: db.NewLeases(d, now)}
}

// SyncLeaseName names the db lease that one sync of account holds at a
// time, across processes.
func SyncLeaseName(account string) string { return "follower-sync:" + account }

func syncHolderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Status returns the account's last or current sync; ErrNotFound when it
// was never synced.
func (s *Syncer) Status(ctx context.Context, account string) (SyncStatus, error) {
	st, err := s.load(ctx, s.db, account)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && st.Run == 0) {
		return SyncStatus{}, ErrNotFound
	}
	return st, err
}

const syncColumns = `account, run, status, started_at, finished_at, page_cursor, pages, total, listed, profiled, unsubscribed,
    list_calls, batch_calls, resumes, last_error, updated_at`

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Syncer) load(ctx context.Context, q queryer, account string) (SyncStatus, error) {
	var (
		st       SyncStatus
		finished sql.NullTime
	)
	err := q.QueryRowContext(ctx, `SELECT `+syncColumns+` FROM follower_syncs WHERE account = $1`, account).Scan(
		&st.Account, &st.Run, &st.Status, &st.StartedAt, &finished, &st.Cursor, &st.Pages, &st.Total, &st.Listed, &st.Profiled,
		&st.Unsubscribed, &st.ListCalls, &st.BatchCalls, &st.Resumes, &st.LastError, &st.UpdatedAt)
	if err != nil {
		return SyncStatus{}, err
	}
	st.StartedAt = st.StartedAt.UTC()
	st.UpdatedAt = st.UpdatedAt.UTC()
	st.FinishedAt = timePtr(finished)
	return st, nil
}

// Run syncs the followers of account through client and returns the
// final state. Cancelling ctx stops it between batches (state
// "interrupted"); a WeChat error that survives retries stops it too
// ("failed"). Either way the next Run resumes it.
func (s *Syncer) Run(ctx context.Context, account string, client SyncClient, opts SyncOptions) (SyncStatus, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultSyncConcurrency
	}
	opts.Concurrency = min(opts.Concurrency, MaxSyncConcurrency)
	// Each run holds the lease under its own name, so two runs of one
	// Syncer exclude each other too.
	holder := syncHolderID()
	st, err := s.begin(ctx, account, holder, opts.Restart, opts.TakeOver)
	if err != nil {
		return SyncStatus{}, err
	}
	r := &syncRun{s: s, holder: holder, account: account, client: client, opts: opts, st: st}
	s.log.Info("follower sync started", "account", account, "run", st.Run, "resumed", st.Resumed, "cursor_set", st.Cursor != "")
	r.report() // where it starts from
	runErr := r.pages(ctx)
	if runErr == nil {
		runErr = r.finish(ctx)
	}
	if runErr != nil {
		return r.stop(ctx, runErr)
	}
	s.log.Info("follower sync completed", "account", account, "run", r.st.Run, "listed", r.st.Listed,
		"profiled", r.st.Profiled, "unsubscribed", r.st.Unsubscribed, "list_calls", r.st.ListCalls, "batch_calls", r.st.BatchCalls)
	return r.st, nil
}

// begin takes the account's sync lease and starts a new run or resumes
// the unfinished one.
func (s *Syncer) begin(ctx context.Context, account, holder string, restart, takeOver bool) (SyncStatus, error) {
	now := db.Timestamp(s.now())
	// Run 0 "completed" is the row of an account never synced.
	if _, err := s.db.ExecContext(ctx, `
INSERT INTO follower_syncs (account, run, status, started_at, updated_at) VALUES ($1, 0, $2, $3, $3)
ON CONFLICT (account) DO NOTHING`, account, SyncCompleted, now); err != nil {
		return SyncStatus{}, fmt.Errorf("follower: starting sync: %w", err)
	}
	name := SyncLeaseName(account)
	cur, ok, err := s.leases.Acquire(ctx, name, holder, syncLeaseTTL)
	if err != nil {
		return SyncStatus{}, fmt.Errorf("follower: taking the sync lease: %w", err)
	}
	if !ok {
		e := &SyncRunningError{Account: account, Holder: cur.Holder, Until: cur.ExpiresAt.UTC()}
		if !takeOver {
			return SyncStatus{}, e
		}
		if _, ok, err = s.leases.TakeOver(ctx, name, e.Holder, holder, syncLeaseTTL); err != nil {
			return SyncStatus{}, fmt.Errorf("follower: taking the sync lease over: %w", err)
		}
		if !ok {
			return SyncStatus{}, e // someone else was quicker
		}
		s.log.Warn("follower sync taken over", "account", account, "from", e.Holder)
	}
	st, err := s.load(ctx, s.db, account)
	if err != nil {
		return SyncStatus{}, fmt.Errorf("follower: reading sync state: %w", err)
	}
	if st.Status == SyncCompleted || restart {
		err = s.underLease(ctx, account, holder, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `
UPDATE follower_syncs SET run = run + 1, status = $2, started_at = $3, finished_at = NULL, page_cursor = '', pages = 0, total = 0,
    listed = 0, profiled = 0, unsubscribed = 0, list_calls = 0, batch_calls = 0, resumes = 0, last_error = '', updated_at = $3
WHERE account = $1`, account, SyncRunning, now)
			return err
		})
	} else {
		err = s.underLease(ctx, account, holder, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `
UPDATE follower_syncs SET status = $2, resumes = resumes + 1, updated_at = $3 WHERE account = $1`,
				account, SyncRunning, now)
			return err
		})
	}
	if err != nil {
		return SyncStatus{}, fmt.Errorf("follower: starting sync: %w", err)
	}
	resumed := !(st.Status == SyncCompleted || restart)
	if st, err = s.load(ctx, s.db, account); err != nil {
		return SyncStatus{}, fmt.Errorf("follower: reading sync state: %w", err)
	}
	st.Resumed = resumed
	return st, nil
}

// underLease runs write in a transaction that first renews holder's sync
// lease of account, and fails with errLeaseLost (writing nothing) when the
// lease is not holder's any more. The renewal locks the lease until the
// commit, so the lease cannot change hands in between.
func (s *Syncer) underLease(ctx context.Context, account, holder string, write func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	held, err := s.leases.In(tx).Renew(ctx, SyncLeaseName(account), holder, syncLeaseTTL)
	if err != nil {
		return err
	}
	if !held {
		return errLeaseLost
	}
	if err := write(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// syncRun is one Run in progress.
type syncRun struct {
	s       *Syncer
	holder  string
	account string
	client  SyncClient
	opts    SyncOptions

	mu sync.Mutex // guards st and calls of opts.Progress
	st SyncStatus
}

func (r *syncRun) report() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.st)
	}
}

// pages works through user/get from the stored cursor to the last page.
func (r *syncRun) pages(ctx context.Context) error {
	cursor := r.st.Cursor
	// Only the page a resumed run starts on can hold followers this run
	// saved already.
	skipDone := r.st.Resumed
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := r.fetchPage(ctx, cursor)
		if err != nil {
			return err
		}
		unsaved := page.OpenIDs
		if skipDone {
			if unsaved, err = r.notYetSaved(ctx, page.OpenIDs); err != nil {
				return err
			}
			skipDone = false
		}
		if err := r.profiles(ctx, unsaved); err != nil {
			return err
		}
		if err := r.pageDone(ctx, page); err != nil {
			return err
		}
		// The last page has no next_openid, or is full and ends the list
		// user/get counted: asking again would only answer count 0.
		r.mu.Lock()
		listed := r.st.Listed
		r.mu.Unlock()
		if page.NextOpenID == "" || (page.Total > 0 && listed >= page.Total) {
			return nil
		}
		cursor = page.NextOpenID
	}
}

func (r *syncRun) fetchPage(ctx context.Context, cursor string) (*wechat.FollowerPage, error) {
	var page *wechat.FollowerPage
	err := retrySync(ctx, func() error {
		var err error
		page, err = r.client.Followers(ctx, cursor)
		r.countCalls(ctx, "list_calls", 1)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("follower: user/get: %w", err)
	}
	r.mu.Lock()
	r.st.Total = page.Total
	r.mu.Unlock()
	return page, nil
}

// countCalls counts WeChat calls of this run that saved nothing (failed
// ones, and user/get pages); batchget calls that saved profiles are
// counted with them.
func (r *syncRun) countCalls(ctx context.Context, column string, n int) {
	if n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := r.s.underLease(ctx, r.account, r.holder, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE follower_syncs SET `+column+` = `+column+` + $2 WHERE account = $1`, r.account, n)
		return err
	})
	if err != nil {
		r.s.log.Warn("follower sync: counting calls", "account", r.account, "err", err)
	}
	r.mu.Lock()
	if column == "list_calls" {
		r.st.ListCalls += int64(n)
	} else {
		r.st.BatchCalls += int64(n)
	}
	r.mu.Unlock()
}

// notYetSaved drops the openids this run already saved (listed_at is not
// older than the run's start).
func (r *syncRun) notYetSaved(ctx context.Context, openids []string) ([]string, error) {
	done := make(map[string]bool)
	const chunk = 500
	for start := 0; start < len(openids); start += chunk {
		part := openids[start:min(start+chunk, len(openids))]
		args := []any{r.account, db.Timestamp(r.st.StartedAt)}
		marks := make([]string, len(part))
		for i, id := range part {
			args = append(args, id)
			marks[i] = "$" + strconv.Itoa(i+3)
		}
		rows, err := r.s.db.QueryContext(ctx, `SELECT openid FROM followers WHERE account = $1 AND listed_at >= $2 AND openid IN (`+
			strings.Join(marks, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("follower: resuming sync: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("follower: resuming sync: %w", err)
			}
			done[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("follower: resuming sync: %w", err)
		}
	}
	out := make([]string, 0, len(openids)-len(done))
	for _, id := range openids {
		if !done[id] {
			out = append(out, id)
		}
	}
	r.s.log.Info("follower sync resumed within a page", "account", r.account, "already_saved", len(done), "remaining", len(out))
	return out, nil
}

// maxRowsPerTx bounds the profiles the writer saves in one transaction.
const maxRowsPerTx = 1000

// fetched is one batchget answer waiting to be saved.
type fetched struct {
	infos []wechat.UserInfo
	calls int
}

// profiles fetches the profiles of openids, batches in parallel, and
// saves them through one writer that commits whatever batches are ready
// together: fewer, larger transactions write each index page once for
// several batches.
func (r *syncRun) profiles(ctx context.Context, openids []string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ready := make(chan fetched, r.opts.Concurrency)
	written := make(chan error, 1)
	go func() { written <- r.writer(ctx, ready, cancel) }()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	for start := 0; start < len(openids); start += wechat.MaxBatchUserInfo {
		batch := openids[start:min(start+wechat.MaxBatchUserInfo, len(openids))]
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			f, err := r.fetch(gctx, batch)
			if err != nil {
				return err
			}
			// The profiles are paid for: they are saved even when the run
			// is being stopped, so the rerun does not ask for them again.
			ready <- f
			return nil
		})
	}
	fetchErr := g.Wait()
	close(ready)
	if err := <-written; err != nil {
		return err
	}
	if fetchErr != nil {
		return fetchErr
	}
	// A cancel between batches ends the loop without an error from them.
	return context.Cause(ctx)
}

// fetch calls batchget for one batch.
func (r *syncRun) fetch(ctx context.Context, openids []string) (fetched, error) {
	req := make([]wechat.UserInfoRequest, len(openids))
	for i, id := range openids {
		req[i] = wechat.UserInfoRequest{OpenID: id, Lang: "zh_CN"}
	}
	var f fetched
	err := retrySync(ctx, func() error {
		var err error
		f.calls++
		f.infos, err = r.client.BatchUserInfo(ctx, req)
		return err
	})
	if err != nil {
		r.countCalls(ctx, "batch_calls", f.calls)
		return fetched{}, fmt.Errorf("follower: user/info/batchget: %w", err)
	}
	return f, nil
}

// writer saves what the fetches deliver until ready is closed. After a
// failure it stops the fetches (cancel) and drains the rest unsaved.
func (r *syncRun) writer(ctx context.Context, ready <-chan fetched, cancel context.CancelCauseFunc) error {
	var failed error
	for f := range ready {
		if failed != nil {
			continue
		}
		group, rows := []fetched{f}, len(f.infos)
	gather:
		for rows < maxRowsPerTx {
			select {
			case more, ok := <-ready:
				if !ok {
					break gather
				}
				group = append(group, more)
				rows += len(more.infos)
			default:
				break gather
			}
		}
		var (
			infos []wechat.UserInfo
			calls int
		)
		for _, g := range group {
			infos = append(infos, g.infos...)
			calls += g.calls
		}
		saveCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := r.save(saveCtx, infos, calls)
		done()
		if err != nil {
			failed = err
			cancel(err)
			continue
		}
		r.mu.Lock()
		r.st.Profiled += int64(len(infos))
		r.st.BatchCalls += int64(calls)
		r.report()
		r.mu.Unlock()
	}
	return failed
}

// retrySync retries a call that failed with a retryable WeChat error
// (busy, unreachable, minute quota), three attempts in all.
func retrySync(ctx context.Context, call func() error) error {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == syncBatchAttempts || wechat.ClassOf(err) != wechat.ClassRetryable || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// profileRow is one profile in the JSON array save passes as a single
// parameter: a few hundred bound parameters per statement cost SQLite
// more (it looks each up by name) than reading the array.
type profileRow struct {
	OpenID       string          `json:"openid"`
	UnionID      *string         `json:"unionid"`
	Subscribed   bool            `json:"subscribed"`
	SubscribedAt *string         `json:"subscribed_at"`
	Scene        string          `json:"subscribe_scene"`
	QRScene      *int64          `json:"qr_scene"`
	QRSceneStr   string          `json:"qr_scene_str"`
	Language     string          `json:"language"`
	Remark       string          `json:"remark"`
	TagIDs       json.RawMessage `json:"tag_ids"`
}

// sqliteTimeText is how the SQLite driver writes times (_time_format=sqlite),
// so times written through JSON compare with the others as text.
const sqliteTimeText = "2006-01-02 15:04:05.999999999-07:00"

// The rows of save's upsert: $1 account, $2 now, $3 the JSON array.
const (
	profileRowsSQLite = `SELECT $1, j.value ->> 'openid', j.value ->> 'unionid', j.value ->> 'subscribed', j.value ->> 'subscribed_at',
    j.value ->> 'subscribe_scene', j.value ->> 'qr_scene', j.value ->> 'qr_scene_str', j.value ->> 'language', j.value ->> 'remark',
    j.value -> 'tag_ids', $2, $2, $2, $2
FROM json_each($3) AS j WHERE true`
	profileRowsPostgres = `SELECT $1::text, j.openid, j.unionid, j.subscribed, j.subscribed_at, j.subscribe_scene, j.qr_scene, j.qr_scene_str,
    j.language, j.remark, j.tag_ids, $2::timestamptz, $2::timestamptz, $2::timestamptz, $2::timestamptz
FROM jsonb_to_recordset($3::jsonb) AS j(openid text, unionid text, subscribed boolean, subscribed_at timestamptz, subscribe_scene text,
    qr_scene bigint, qr_scene_str text, language text, remark text, tag_ids jsonb)`
)

// save upserts one batch of profiles and counts it, in one transaction
// that fails if the lease was lost.
func (r *syncRun) save(ctx context.Context, infos []wechat.UserInfo, calls int) error {
	if len(infos) == 0 {
		return nil
	}
	now := db.Timestamp(r.s.now())
	rows := make([]profileRow, len(infos))
	for i, u := range infos {
		rows[i] = newProfileRow(u)
	}
	batch, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("follower: encoding profiles: %w", err)
	}
	source := profileRowsSQLite
	if r.s.db.Dialect == db.Postgres {
		source = profileRowsPostgres
	}
	tx, err := r.s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("follower: saving profiles: %w", err)
	}
	defer tx.Rollback()
	held, err := r.s.leases.In(tx).Renew(ctx, SyncLeaseName(r.account), r.holder, syncLeaseTTL)
	if err != nil {
		return fmt.Errorf("follower: renewing the sync lease: %w", err)
	}
	if !held {
		return errLeaseLost
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO followers (account, openid, unionid, subscribed, subscribed_at, subscribe_scene, qr_scene, qr_scene_str,
    language, remark, tag_ids, profile_fetched_at, listed_at, created_at, updated_at)
`+source+`
ON CONFLICT (account, openid) DO UPDATE SET
    unionid = COALESCE(excluded.unionid, followers.unionid),
    subscribed = CASE
        WHEN excluded.subscribed AND followers.unsubscribed_at > excluded.profile_fetched_at THEN followers.subscribed
        WHEN NOT excluded.subscribed AND followers.subscribed_at > excluded.profile_fetched_at THEN followers.subscribed
        ELSE excluded.subscribed END,
    subscribed_at = CASE
        WHEN excluded.subscribed AND excluded.subscribed_at IS NOT NULL
             AND (followers.subscribed_at IS NULL OR excluded.subscribed_at > followers.subscribed_at) THEN excluded.subscribed_at
        ELSE followers.subscribed_at END,
    unsubscribed_at = CASE
        WHEN NOT excluded.subscribed AND followers.subscribed AND NOT COALESCE(followers.subscribed_at > excluded.profile_fetched_at, FALSE)
        THEN excluded.profile_fetched_at
        ELSE followers.unsubscribed_at END,
    subscribe_scene = CASE WHEN excluded.subscribed THEN excluded.subscribe_scene ELSE followers.subscribe_scene END,
    qr_scene = CASE WHEN excluded.subscribed THEN excluded.qr_scene ELSE followers.qr_scene END,
    qr_scene_str = CASE WHEN excluded.subscribed THEN excluded.qr_scene_str ELSE followers.qr_scene_str END,
    language = CASE WHEN excluded.subscribed THEN excluded.language ELSE followers.language END,
    remark = CASE WHEN excluded.subscribed THEN excluded.remark ELSE followers.remark END,
    tag_ids = CASE WHEN excluded.subscribed THEN excluded.tag_ids ELSE followers.tag_ids END,
    profile_fetched_at = excluded.profile_fetched_at,
    listed_at = excluded.listed_at,
    updated_at = excluded.updated_at`, r.account, now, string(batch)); err != nil {
		return fmt.Errorf("follower: saving profiles: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `
UPDATE follower_syncs SET profiled = profiled + $2, batch_calls = batch_calls + $4, updated_at = $3 WHERE account = $1`,
		r.account, len(infos), now, calls); err != nil {
		return fmt.Errorf("follower: saving sync progress: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("follower: saving profiles: %w", err)
	}
	return nil
}

// newProfileRow is a user/info answer as save writes it; a non-follower
// carries only openid and unionid.
func newProfileRow(u wechat.UserInfo) profileRow {
	row := profileRow{OpenID: u.OpenID, Subscribed: u.Subscribed(), TagIDs: json.RawMessage("[]")}
	if u.UnionID != "" {
		v := u.UnionID
		row.UnionID = &v
	}
	if !row.Subscribed {
		return row
	}
	if u.SubscribeTime > 0 {
		v := time.Unix(int64(u.SubscribeTime), 0).UTC().Format(sqliteTimeText)
		row.SubscribedAt = &v
	}
	if u.QRScene != 0 {
		v := int64(u.QRScene)
		row.QRScene = &v
	}
	row.Scene, row.QRSceneStr, row.Language, row.Remark = u.SubscribeScene, u.QRSceneStr, u.Language, u.Remark
	if len(u.TagIDs) > 0 {
		ids := make([]int64, len(u.TagIDs))
		for i, id := range u.TagIDs {
			ids[i] = int64(id)
		}
		if b, err := json.Marshal(ids); err == nil {
			row.TagIDs = b
		}
	}
	return row
}

// pageDone moves the cursor past a page whose followers are all saved.
func (r *syncRun) pageDone(ctx context.Context, page *wechat.FollowerPage) error {
	now := db.Timestamp(r.s.now())
	err := r.s.underLease(ctx, r.account, r.holder, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
UPDATE follower_syncs SET page_cursor = $2, pages = pages + 1, listed = listed + $3, total = $4, updated_at = $5 WHERE account = $1`,
			r.account, page.NextOpenID, len(page.OpenIDs), page.Total, now)
		return err
	})
	if errors.Is(err, errLeaseLost) {
		return err
	}
	if err != nil {
		return fmt.Errorf("follower: saving sync progress: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Cursor = page.NextOpenID
	r.st.Pages++
	r.st.Listed += int64(len(page.OpenIDs))
	r.st.Total = page.Total
	r.report()
	return nil
}

// finish marks followers the list did not name as unsubscribed (unless
// an event since the start says they follow) and completes the run.
func (r *syncRun) finish(ctx context.Context) error {
	now := db.Timestamp(r.s.now())
	started := db.Timestamp(r.st.StartedAt)
	tx, err := r.s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("follower: finishing sync: %w", err)
	}
	defer tx.Rollback()
	// Released first, fenced on the holder: a run that lost its lease
	// completes nothing.
	held, err := r.s.leases.In(tx).Release(ctx, SyncLeaseName(r.account), r.holder)
	if err != nil {
		return fmt.Errorf("follower: finishing sync: %w", err)
	}
	if !held {
		return errLeaseLost
	}
	res, err := tx.ExecContext(ctx, `
UPDATE followers SET subscribed = FALSE, unsubscribed_at = $3, updated_at = $3
WHERE account = $1 AND subscribed AND (listed_at IS NULL OR listed_at < $2) AND (subscribed_at IS NULL OR subscribed_at < $2)`,
		r.account, started, now)
	if err != nil {
		return fmt.Errorf("follower: marking unlisted followers unsubscribed: %w", err)
	}
	gone, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `
UPDATE follower_syncs SET status = $2, finished_at = $3, unsubscribed = $4, last_error = '', updated_at = $3
WHERE account = $1`, r.account, SyncCompleted, now, gone); err != nil {
		return fmt.Errorf("follower: finishing sync: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("follower: finishing sync: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Status = SyncCompleted
	r.st.Unsubscribed = gone
	r.st.FinishedAt = &now
	r.st.UpdatedAt = now
	r.report()
	return nil
}

// stop records why the run stopped and releases the lease, so the next
// Run resumes at once.
func (r *syncRun) stop(runCtx context.Context, runErr error) (SyncStatus, error) {
	status := SyncFailed
	if runCtx.Err() != nil || errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		status = SyncInterrupted
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !errors.Is(runErr, errLeaseLost) {
		if err := r.recordStop(ctx, status, runErr); err != nil {
			r.s.log.Error("follower sync: recording the stop", "account", r.account, "err", err)
		}
	}
	st, err := r.s.load(ctx, r.s.db, r.account)
	if err != nil {
		r.mu.Lock()
		st = r.st
		r.mu.Unlock()
		st.Status = status
	}
	st.Resumed = r.st.Resumed
	r.s.log.Warn("follower sync stopped; run it again to resume", "account", r.account, "run", st.Run, "status", status, "err", runErr)
	return st, runErr
}

// recordStop stores why the run stopped and releases the lease, in one
// transaction fenced on the holder: a run whose lease was taken over
// records nothing.
func (r *syncRun) recordStop(ctx context.Context, status string, runErr error) error {
	tx, err := r.s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	held, err := r.s.leases.In(tx).Release(ctx, SyncLeaseName(r.account), r.holder)
	if err != nil || !held {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE follower_syncs SET status = $2, last_error = $3, updated_at = $4 WHERE account = $1`,
		r.account, status, runErr.Error(), db.Timestamp(r.s.now())); err != nil {
		return err
	}
	return tx.Commit()
}
