package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// A run happens in two steps, each safe to repeat after a crash or to
// run twice at once (River may hand a job that looks stuck to another
// worker):
//
//  1. plan: the audience is resolved, the data source called (once per
//     distinct URL) and each recipient's data rendered; then, in one
//     transaction, the run moves from queued/running to sending and a row
//     per recipient is written (pending, or skipped with the reason). Only
//     one planner can make that move; another's plan is dropped.
//  2. send: pending rows with the same data are handed to the push
//     pipeline as one message per 1 000 recipients, with an
//     Idempotency-Key derived from the run and the first row, so a repeat
//     of this step gets the same message back instead of a second send;
//     the rows are then marked accepted with the message id.

// Recipient-row statuses.
const (
	rowPending  = "pending"
	rowAccepted = "accepted"
	rowSkipped  = "skipped"
)

// Skip reasons of a run's recipients (besides "source: …" and "data.…").
const (
	ReasonNoCity    = "no_city"
	ReasonNotBound  = "not_bound"
	ReasonDuplicate = "duplicate"
)

// sendChunk is the most recipients handed to the push pipeline in one
// message.
const sendChunk = 1000

// RunWorker works run jobs.
type RunWorker struct {
	river.WorkerDefaults[RunArgs]
	s *Service
}

// RunWorker returns the worker to register: river.AddWorker(workers, svc.RunWorker()).
func (s *Service) RunWorker() *RunWorker { return &RunWorker{s: s} }

// Timeout leaves room for a slow data source with retries.
func (w *RunWorker) Timeout(*river.Job[RunArgs]) time.Duration { return 10 * time.Minute }

// Work runs (or finishes) one run.
func (w *RunWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	return w.s.execute(ctx, job.Args.ScheduleID, db.Timestamp(job.Args.DueAt))
}

// runRow is what a run step needs of a run.
type runRow struct {
	id     int64
	status string
	kind   string
	dueAt  time.Time
}

func (s *Service) execute(ctx context.Context, scheduleID int64, dueAt time.Time) error {
	var r runRow
	err := s.db.QueryRowContext(ctx, `SELECT id, status, kind, due_at FROM schedule_runs WHERE schedule_id = $1 AND due_at = $2`,
		scheduleID, dueAt).Scan(&r.id, &r.status, &r.kind, &r.dueAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // the schedule was deleted with its runs
	}
	if err != nil {
		return fmt.Errorf("schedule: run of %d due %s: %w", scheduleID, dueAt, err)
	}
	switch r.status {
	case RunDone, RunFailed, RunMissed:
		return nil
	}
	sc, err := s.Get(ctx, scheduleID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.status == RunQueued || r.status == RunRunning {
		if _, err := s.db.ExecContext(ctx, `UPDATE schedule_runs SET status = $1, started_at = $2 WHERE id = $3 AND status = $4`,
			RunRunning, s.stamp(), r.id, RunQueued); err != nil {
			return fmt.Errorf("schedule: run %d: %w", r.id, err)
		}
		targets, calls, err := s.plan(ctx, &sc, r.dueAt)
		if err != nil {
			if e, ok := problem.As(err); ok {
				return s.fail(ctx, r.id, e.Message)
			}
			return err
		}
		if err := s.savePlan(ctx, r.id, targets, calls); err != nil {
			return err
		}
	}
	return s.sendPending(ctx, &sc, r.id)
}

// fail ends a run that cannot be done, with the reason.
func (s *Service) fail(ctx context.Context, runID int64, reason string) error {
	now := s.stamp()
	if _, err := s.db.ExecContext(ctx, `UPDATE schedule_runs SET status = $1, reason = $2, finished_at = $3 WHERE id = $4`,
		RunFailed, reason, now, runID); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE schedule_run_recipients SET status = $1, reason = $2 WHERE run_id = $3 AND status = $4`,
		rowSkipped, reason, runID, rowPending); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	s.log.Warn("schedule: run failed", "run", runID, "reason", reason)
	return nil
}

// target is one planned recipient.
type target struct {
	toKind, toValue string
	rc              Recipient
	status, reason  string
	data            string // JSON object of the rendered data
}

// plan resolves a schedule's audience, calls its source and renders each
// recipient's data. It writes nothing. A *problem.Error means the run cannot be
// done at all.
func (s *Service) plan(ctx context.Context, sc *Schedule, dueAt time.Time) ([]*target, int, error) {
	loc, err := LoadZone(sc.TimeZone)
	if err != nil {
		return nil, 0, err
	}
	if _, ok := s.accounts[sc.Account]; !ok {
		return nil, 0, problem.NotFoundf("account_not_found", "account", "account %q is no longer configured — 账号 %q 已不在配置中", sc.Account, sc.Account)
	}
	now := dueAt.In(loc)
	prog, err := compile(&sc.Spec, now, secretFunc(s.opts.Secrets))
	if err != nil {
		return nil, 0, err
	}
	targets, err := s.audience(ctx, sc)
	if err != nil {
		return nil, 0, err
	}
	var openids []string
	for _, t := range targets {
		if t.status == "" {
			openids = append(openids, t.rc.OpenID)
		}
	}
	attrs, err := s.attributesOf(ctx, sc.Account, openids)
	if err != nil {
		return nil, 0, err
	}
	for _, t := range targets {
		if t.status != "" {
			continue
		}
		t.rc.Attr = attrs[t.rc.OpenID]
		if t.rc.Attr == nil {
			t.rc.Attr = map[string]string{}
		}
		t.rc.Vars = sc.Vars
		t.rc.Now = now
		t.rc.City = cityOf(t.rc, sc)
		if prog.usesCity && t.rc.City == "" {
			t.status, t.reason = rowSkipped, ReasonNoCity
		}
	}

	calls := 0
	if prog.url != nil {
		reqs := map[string]request{}
		keyOf := map[*target]string{}
		for _, t := range targets {
			if t.status != "" {
				continue
			}
			r, err := prog.render(&t.rc)
			if err != nil {
				t.status, t.reason = rowSkipped, "source: "+err.Error()
				continue
			}
			k := r.key()
			reqs[k] = r
			keyOf[t] = k
		}
		f := &fetcher{client: s.client, src: sc.Source, concurrency: s.opts.SourceConcurrency, backoff: s.opts.SourceBackoff}
		answers := f.fetchAll(ctx, reqs)
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		calls = int(f.calls.Load())
		failed := 0
		for t, k := range keyOf {
			a := answers[k]
			if a.err != nil {
				t.status, t.reason = rowSkipped, "source: "+a.err.Error()
				failed++
				continue
			}
			t.rc.Response = a.body
		}
		if failed > 0 {
			s.log.Info("schedule: data source failed for some recipients", "schedule", sc.ID, "recipients", failed, "urls", len(reqs))
		}
	}

	for _, t := range targets {
		if t.status != "" {
			continue
		}
		data := make(map[string]string, len(prog.fields))
		var rerr error
		for _, field := range prog.fields {
			v, err := execute(prog.data[field], &t.rc)
			if err != nil {
				rerr = err
				break
			}
			data[field] = v
		}
		if rerr != nil {
			t.status, t.reason = rowSkipped, rerr.Error()
			continue
		}
		b, _ := json.Marshal(data)
		t.status, t.data = rowPending, string(b)
	}
	return targets, calls, nil
}

// cityOf is the recipient's city: attribute, tag, default.
func cityOf(rc Recipient, sc *Schedule) string {
	if c := strings.TrimSpace(rc.Attr["city"]); c != "" {
		return c
	}
	for _, tag := range rc.Follower.TagIDs {
		if c := sc.TagCities[strconv.FormatInt(tag, 10)]; c != "" {
			return c
		}
	}
	return sc.DefaultCity
}

func parseTagID(s string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(s), 10, 64) }

// savePlan writes a run's recipients and moves it to sending, unless
// another worker did so first.
func (s *Service) savePlan(ctx context.Context, runID int64, targets []*target, calls int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE schedule_runs SET status = $1, recipients = $2, source_calls = $3 WHERE id = $4 AND status IN ($5, $6)`,
		RunSending, len(targets), calls, runID, RunQueued, RunRunning)
	if err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // planned by another worker meanwhile
	}
	mark := "$"
	batch := 400
	if s.db.Dialect == db.SQLite {
		// SQLite looks $NNN up by name, one by one; ?NNN is positional.
		mark, batch = "?", 100
	}
	const cols = 7
	for start := 0; start < len(targets); start += batch {
		part := targets[start:min(start+batch, len(targets))]
		var b strings.Builder
		b.WriteString(`INSERT INTO schedule_run_recipients (run_id, to_kind, to_value, openid, data, status, reason) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for i, t := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for c := 1; c <= cols; c++ {
				if c > 1 {
					b.WriteString(", ")
				}
				b.WriteString(mark + strconv.Itoa(len(args)+c))
			}
			b.WriteByte(')')
			data := t.data
			if data == "" {
				data = "{}"
			}
			args = append(args, runID, t.toKind, t.toValue, t.rc.OpenID, data, t.status, t.reason)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("schedule: run %d: save recipients: %w", runID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	return nil
}

// pendingRow is a recipient waiting to be handed to the push pipeline.
type pendingRow struct {
	id     int64
	openid string
	data   string
}

// sendPending hands the pending recipients of a run to the push pipeline
// and finishes the run.
func (s *Service) sendPending(ctx context.Context, sc *Schedule, runID int64) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, openid, data FROM schedule_run_recipients WHERE run_id = $1 AND status = $2 ORDER BY id`,
		runID, rowPending)
	if err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	var order []string
	groups := map[string][]pendingRow{}
	for rows.Next() {
		var p pendingRow
		if err := rows.Scan(&p.id, &p.openid, &p.data); err != nil {
			rows.Close()
			return fmt.Errorf("schedule: run %d: %w", runID, err)
		}
		if _, ok := groups[p.data]; !ok {
			order = append(order, p.data)
		}
		groups[p.data] = append(groups[p.data], p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	if len(order) > 0 && s.opts.Push == nil {
		return errors.New("schedule: this gateway has no push pipeline to send with")
	}
	for _, data := range order {
		list := groups[data]
		for start := 0; start < len(list); start += sendChunk {
			chunk := list[start:min(start+sendChunk, len(list))]
			done, err := s.sendChunk(ctx, sc, runID, data, chunk)
			if err != nil {
				return err
			}
			if done {
				return nil // the run failed as a whole
			}
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE schedule_runs SET status = $1, finished_at = $2 WHERE id = $3 AND status = $4`,
		RunDone, s.stamp(), runID, RunSending); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	return nil
}

// IdempotencyKey is the Idempotency-Key of the message a run sends to the
// recipients starting at a recipient row.
func IdempotencyKey(runID, firstRow int64) string {
	return fmt.Sprintf("wxgate-schedule-run-%d-%d", runID, firstRow)
}

// sendChunk sends one message to recipients that share their data. It
// returns true when the run failed as a whole (and was marked so).
func (s *Service) sendChunk(ctx context.Context, sc *Schedule, runID int64, data string, chunk []pendingRow) (bool, error) {
	var values map[string]string
	if err := json.Unmarshal([]byte(data), &values); err != nil {
		return false, fmt.Errorf("schedule: run %d: data of row %d: %w", runID, chunk[0].id, err)
	}
	req := push.Request{Account: sc.Account, Channel: sc.Channel, Template: sc.Template, Data: map[string]json.RawMessage{},
		URL: sc.URL, MiniProgram: sc.MiniProgram, Page: sc.Page, Truncate: sc.Truncate}
	for k, v := range values {
		b, _ := json.Marshal(v)
		req.Data[k] = b
	}
	ids := make([]any, len(chunk))
	for i, p := range chunk {
		req.To.OpenIDs = append(req.To.OpenIDs, p.openid)
		ids[i] = p.id
	}
	res, err := s.opts.Push.Send(ctx, req, push.SendOptions{IdempotencyKey: IdempotencyKey(runID, chunk[0].id)})
	if err != nil {
		perr, ok := problem.As(err)
		if !ok {
			return false, fmt.Errorf("schedule: run %d: send: %w", runID, err)
		}
		reason := perr.Code + ": " + perr.Message
		if strings.HasPrefix(perr.Field, "data.") || strings.HasPrefix(perr.Field, "defaults.") {
			// This data only: the other recipients may have good values.
			return false, s.markRows(ctx, runID, ids, rowSkipped, reason, "")
		}
		// The template, the account or the channel: nobody can be sent to.
		return true, s.fail(ctx, runID, "send: "+reason)
	}
	return false, s.markRows(ctx, runID, ids, rowAccepted, "", res.Accepted.ID)
}

func (s *Service) markRows(ctx context.Context, runID int64, ids []any, status, reason, messageID string) error {
	var b strings.Builder
	args := []any{status, reason, messageID, runID, rowPending}
	for i := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(placeholder(s.db.Dialect, len(args)+1))
		args = append(args, ids[i])
	}
	query := `UPDATE schedule_run_recipients SET status = $1, reason = $2, message_id = $3 WHERE run_id = $4 AND status = $5 AND id IN (`
	if s.db.Dialect == db.SQLite {
		query = strings.NewReplacer("$1", "?1", "$2", "?2", "$3", "?3", "$4", "?4", "$5", "?5").Replace(query)
	}
	if _, err := s.db.ExecContext(ctx, query+b.String()+`)`, args...); err != nil {
		return fmt.Errorf("schedule: run %d: %w", runID, err)
	}
	return nil
}

// Trial is what a run would send one recipient now: the data rendered
// (after the source call, when the schedule has one), or why they would
// be skipped.
type Trial struct {
	OpenID      string            `json:"openid"`
	Status      string            `json:"status"` // ready | skipped
	Reason      string            `json:"reason,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
	SourceCalls int               `json:"source_calls"`
}

// Try plans the schedule for one follower as a run now would (audience
// checks, attributes, city, data source, templates) and sends nothing.
func (s *Service) Try(ctx context.Context, id int64, openid string) (Trial, error) {
	openid = strings.TrimSpace(openid)
	if openid == "" {
		return Trial{}, problem.Invalidf("openid_required", "openid", "give the openid to try the schedule for — 请填写要试运行的粉丝 openid")
	}
	sc, err := s.Get(ctx, id)
	if err != nil {
		return Trial{}, err
	}
	one := sc
	one.Audience = Audience{Kind: AudienceOpenIDs, OpenIDs: []string{openid}}
	targets, calls, err := s.plan(ctx, &one, s.now())
	if err != nil {
		return Trial{}, err
	}
	tr := Trial{OpenID: openid, Status: "skipped", SourceCalls: calls}
	for _, t := range targets {
		tr.Reason = t.reason
		if t.status == rowPending {
			tr.Status = "ready"
			_ = json.Unmarshal([]byte(t.data), &tr.Data)
		}
	}
	return tr, nil
}
