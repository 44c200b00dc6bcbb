package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Worker sends one recipient of a message: the River worker of SendArgs.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

// Worker returns the worker to register: river.AddWorker(workers, svc.Worker()).
func (s *Service) Worker() *Worker { return &Worker{s: s} }

// NextRetry backs off RetryBase·2^(attempt-1), ±20 %, at most RetryMax.
func (w *Worker) NextRetry(job *river.Job[SendArgs]) time.Time {
	return time.Now().Add(w.s.backoff(job.Attempt))
}

func (s *Service) backoff(attempt int) time.Duration {
	d := s.opts.RetryBase
	for i := 1; i < attempt && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.opts.RetryMax)
	jitter := time.Duration(float64(d) * (rand.Float64()*0.4 - 0.2))
	return max(d+jitter, time.Millisecond)
}

// Timeout leaves room for the rate limiter and one call.
func (w *Worker) Timeout(*river.Job[SendArgs]) time.Duration {
	return w.s.opts.CallTimeout + time.Minute
}

// recipientRow is what the worker needs of a recipient.
type recipientRow struct {
	id        int64
	messageID string
	seq       int
	account   string
	openid    string
	channel   string
	status    string
	fallback  bool
	grantID   sql.NullInt64
	attempts  int
	inFlight  bool // a call that WeChat does not de-duplicate was under way
	payload   payload
}

func (s *Service) loadRecipient(ctx context.Context, id int64) (*recipientRow, error) {
	var (
		r        recipientRow
		main, fb sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `
SELECT r.id, r.message_id, r.seq, r.account, r.openid, r.channel, r.status, r.fallback, r.grant_id, r.attempts,
    r.in_flight_at IS NOT NULL, m.payload, m.fallback_payload
FROM push_recipients r JOIN push_messages m ON m.id = r.message_id WHERE r.id = $1`, id).Scan(
		&r.id, &r.messageID, &r.seq, &r.account, &r.openid, &r.channel, &r.status, &r.fallback, &r.grantID, &r.attempts,
		&r.inFlight, &main, &fb)
	if err != nil {
		return nil, err
	}
	src := main.String
	if r.fallback {
		src = fb.String
	}
	if err := json.Unmarshal([]byte(src), &r.payload); err != nil {
		return nil, fmt.Errorf("push: payload of message %s: %w", r.messageID, err)
	}
	return &r, nil
}

// Work sends the recipient unless it is no longer queued, and records the
// outcome.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	s := w.s
	r, err := s.loadRecipient(ctx, job.Args.RecipientID)
	if errors.Is(err, sql.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("push: recipient %d no longer exists", job.Args.RecipientID))
	}
	if err != nil {
		return err
	}
	if r.status != StatusQueued {
		return nil // already sent (a retry after a crash), or given up
	}
	client, ok := s.client(r.account)
	if !ok {
		err := fmt.Errorf("account %q has no API client (no app_secret?)", r.account)
		if ferr := s.markFailed(ctx, r, 0, "no_api_client: "+err.Error(), false); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	}
	once := !deduplicatedByWeChat(r.payload.Channel)
	if once && r.inFlight {
		// The process stopped during the call: WeChat may have delivered
		// the message and would deliver it again.
		if err := s.markFailedAs(ctx, r, 0, ReasonOutcomeUnknown, outcomeUnknownMsg+" (the gateway stopped during the call)", false); err != nil {
			return err
		}
		return river.JobCancel(errors.New("push: outcome of an interrupted call unknown; not sent again"))
	}
	if until, err := s.quotaSnoozedUntil(ctx, r.account, r.payload.Channel); err != nil {
		return err
	} else if !until.IsZero() {
		// Another send (maybe on another instance) used the quota up.
		if err := s.noteQuotaWait(ctx, r, wechat.CodeDailyQuota); err != nil {
			return err
		}
		return river.JobSnooze(until.Sub(s.now()) + quotaJitter())
	}
	if err := s.limits.wait(ctx, r.account); err != nil {
		return err
	}
	if once {
		if err := s.setInFlight(ctx, r); err != nil {
			return err
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, s.opts.CallTimeout)
	msgID, err := s.call(callCtx, client, r)
	cancel()
	if !errors.Is(err, context.Canceled) {
		s.opts.Metrics.call(r.account, r.payload.Channel, err)
	}
	if err == nil {
		return s.markSent(ctx, r, msgID)
	}
	return s.handleFailure(ctx, job, r, err)
}

// ReasonOutcomeUnknown is the reason of a recipient whose call may have
// reached WeChat without an answer, on a channel WeChat does not
// de-duplicate: wxgate does not send it again.
const ReasonOutcomeUnknown = "outcome_unknown"

const outcomeUnknownMsg = "the request reached WeChat but no answer came; WeChat has no anti-replay for subscription and customer-service messages, so it is not sent again to avoid a duplicate — 请求已发出但未收到微信应答；订阅消息和客服消息没有防重机制，为免重复，不再重发"

// deduplicatedByWeChat tells the channels whose sends WeChat
// de-duplicates (template messages, by client_msg_id within 10 minutes):
// those are retried whatever happened to the previous call. On the others
// a call that may have arrived is never repeated.
func deduplicatedByWeChat(channel string) bool { return channel == ChannelTemplate }

// setInFlight marks the recipient's call as under way, committed before
// the call, so that a crash during it is recognised (Work).
func (s *Service) setInFlight(ctx context.Context, r *recipientRow) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE push_recipients SET in_flight_at = $1 WHERE id = $2 AND status = $3`,
		s.stamp(), r.id, StatusQueued); err != nil {
		return fmt.Errorf("push: mark recipient %d in flight: %w", r.id, err)
	}
	return nil
}

// clearInFlight forgets a call that never left (cut short by a shutdown
// before its request was written), so the next run sends it.
func (s *Service) clearInFlight(ctx context.Context, r *recipientRow) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `UPDATE push_recipients SET in_flight_at = NULL WHERE id = $1`, r.id); err != nil {
		return fmt.Errorf("push: clear in-flight mark of recipient %d: %w", r.id, err)
	}
	return nil
}

// call sends one recipient on its channel.
func (s *Service) call(ctx context.Context, c *wechat.Client, r *recipientRow) (int64, error) {
	p := r.payload
	switch p.Channel {
	case ChannelTemplate:
		return c.SendTemplate(ctx, &wechat.TemplateMessage{ToUser: r.openid, TemplateID: p.TemplateID, URL: p.URL,
			MiniProgram: p.MiniProgram.link(), ClientMsgID: ClientMsgID(r.messageID, r.seq), Data: p.wechatData()})
	case ChannelSubscribe:
		return c.SendSubscribe(ctx, &wechat.SubscribeMessage{ToUser: r.openid, TemplateID: p.TemplateID, Page: p.Page,
			MiniProgram: p.MiniProgram.link(), Data: p.wechatData()})
	case ChannelMPSubscribe:
		return c.SendMiniProgramSubscribe(ctx, &wechat.MiniProgramSubscribeMessage{ToUser: r.openid, TemplateID: p.TemplateID,
			Page: p.Page, State: p.State, Lang: p.Lang, Data: p.wechatData()})
	case ChannelCustom:
		var m wechat.CustomMessage
		if err := json.Unmarshal(p.Custom, &m); err != nil {
			return 0, fmt.Errorf("push: custom message of %s: %w", r.messageID, err)
		}
		m.ToUser = r.openid
		return 0, c.SendCustom(ctx, &m)
	}
	return 0, fmt.Errorf("push: unknown channel %q", p.Channel)
}

func (p payload) wechatData() wechat.TemplateData {
	out := make(wechat.TemplateData, len(p.Data))
	for k, v := range p.Data {
		out[k] = wechat.DataValue{Value: v}
	}
	return out
}

// handleFailure classifies a failed call: snooze on quota, retry with
// backoff on what may pass, fail for good on the rest.
func (s *Service) handleFailure(ctx context.Context, job *river.Job[SendArgs], r *recipientRow, callErr error) error {
	var apiErr *wechat.APIError
	code := 0
	if errors.As(callErr, &apiErr) {
		code = apiErr.Code
	}
	reason := describe(callErr)
	switch {
	case code == wechat.CodeDailyQuota:
		until := s.quotaReset()
		s.log.Warn("push: daily quota used up; every instance's sends wait for the reset", "account", r.account,
			"channel", r.payload.Channel, "until", until)
		if err := s.snoozeQuota(ctx, r.account, r.payload.Channel, until, reason); err != nil {
			return err
		}
		if err := s.noteAttempt(ctx, r, code, quotaWaitMsg); err != nil {
			return err
		}
		return river.JobSnooze(until.Sub(s.now()) + quotaJitter())
	case code == wechat.CodeMinuteQuota:
		if err := s.noteAttempt(ctx, r, code, reason); err != nil {
			return err
		}
		now := s.now()
		return river.JobSnooze(now.Truncate(time.Minute).Add(time.Minute).Sub(now) + time.Duration(rand.IntN(1000))*time.Millisecond)
	case errors.Is(callErr, context.Canceled) && ctx.Err() != nil:
		// Shutting down: River runs the job again later, which on a channel
		// WeChat does not de-duplicate fails it unless the call never left.
		if !deduplicatedByWeChat(r.payload.Channel) && !wechat.OutcomeUnknown(callErr) {
			if err := s.clearInFlight(ctx, r); err != nil {
				return errors.Join(callErr, err)
			}
		}
		return callErr
	case !deduplicatedByWeChat(r.payload.Channel) && wechat.OutcomeUnknown(callErr):
		if err := s.markFailedAs(ctx, r, 0, ReasonOutcomeUnknown, outcomeUnknownMsg+": "+reason, false); err != nil {
			return err
		}
		return river.JobCancel(callErr)
	}
	class := wechat.ClassOf(callErr)
	if class == wechat.ClassRetryable || class == wechat.ClassTokenInvalid {
		if job.Attempt >= job.MaxAttempts {
			if err := s.markFailed(ctx, r, code, fmt.Sprintf("gave up after %d attempts: %s", job.Attempt, reason), true); err != nil {
				return err
			}
			return callErr
		}
		if err := s.noteAttempt(ctx, r, code, reason); err != nil {
			return err
		}
		return callErr
	}
	// Permanent (40003, 40037, 43004, 43101, 45015, 45047, 47003 …).
	if err := s.markFailed(ctx, r, code, reason, code != wechat.CodeUserRefused); err != nil {
		return err
	}
	return river.JobCancel(callErr)
}

// describe is the reason recorded for a failed call: WeChat's errmsg, or
// the error.
func describe(err error) string {
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Msg
	}
	return err.Error()
}

// quotaReset is when WeChat's daily quotas reset: the next midnight,
// Beijing time.
func (s *Service) quotaReset() time.Time {
	now := s.now().In(wechat.BeijingTime)
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, wechat.BeijingTime)
}

// noteAttempt records a failed attempt that will be retried.
func (s *Service) noteAttempt(ctx context.Context, r *recipientRow, code int, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE push_recipients SET attempts = attempts + 1, errcode = $1, errmsg = $2, updated_at = $3,
    in_flight_at = NULL WHERE id = $4 AND status = $5`, nullCode(code), reason, s.stamp(), r.id, StatusQueued)
	if err != nil {
		return fmt.Errorf("push: record attempt of recipient %d: %w", r.id, err)
	}
	return nil
}

func nullCode(code int) any {
	if code == 0 {
		return nil
	}
	return code
}

// markSent records a successful call and applies a receipt that arrived
// before it (WeChat may push it before this process wrote the msgid).
func (s *Service) markSent(ctx context.Context, r *recipientRow, msgID int64) error {
	now := s.stamp()
	var msg any
	if msgID != 0 {
		msg = msgID
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	if msgID != 0 {
		if err := s.lockMsgID(ctx, tx, r.account, msgID); err != nil {
			return err
		}
	}
	// The row comes back as the message.sent event carries it: one round
	// trip less per send than reading it again.
	sentEvent, err := scanEvent(tx.QueryRowContext(ctx, `UPDATE push_recipients SET status = $1, msgid = $2, sent_at = $3, updated_at = $3,
    attempts = attempts + 1, errcode = NULL, errmsg = '', in_flight_at = NULL WHERE id = $4 AND status = $5 RETURNING `+eventColumns,
		StatusSent, msg, now, r.id, StatusQueued), r.account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // no longer queued
	}
	if err != nil {
		return fmt.Errorf("push: mark recipient %d sent: %w", r.id, err)
	}
	if r.grantID.Valid {
		if err := setGrant(ctx, tx, r.grantID.Int64, grantUsed, now); err != nil {
			return err
		}
	}
	if s.opts.Events != nil {
		if err := s.opts.Events.PublishTx(ctx, tx, EventMessageSent, r.account, sentEvent); err != nil {
			return err
		}
	}
	if r.payload.Channel == ChannelCustom {
		// WeChat's answer is the delivery: custom messages have no receipt.
		if _, err := tx.ExecContext(ctx, `UPDATE push_recipients SET status = $1, done_at = $2 WHERE id = $3`, StatusDelivered, now, r.id); err != nil {
			return fmt.Errorf("push: mark recipient %d delivered: %w", r.id, err)
		}
		if err := s.emit(ctx, tx, EventMessageDelivered, r.account, r.id); err != nil {
			return err
		}
	}
	if msgID != 0 {
		var rc receipt
		err := tx.QueryRowContext(ctx, `SELECT status, detail, errcode, received_at FROM push_receipts WHERE account = $1 AND msgid = $2`,
			r.account, msgID).Scan(&rc.status, &rc.detail, &rc.errcode, &rc.at)
		switch {
		case err == nil:
			rc.account, rc.msgID = r.account, msgID
			if err := s.applyReceipt(ctx, tx, rc); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("push: receipt of %d: %w", msgID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("push: commit: %w", err)
	}
	return nil
}

// markFailed records a recipient that will not be sent. releaseGrant gives
// its subscription grant back (the send failed for another reason than the
// grant itself).
func (s *Service) markFailed(ctx context.Context, r *recipientRow, code int, reason string, releaseGrant bool) error {
	return s.markFailedAs(ctx, r, code, failReason(code), reason, releaseGrant)
}

// markFailedAs is markFailed with the reason for programs given (errmsg is
// the one for people).
func (s *Service) markFailedAs(ctx context.Context, r *recipientRow, code int, reason, errmsg string, releaseGrant bool) error {
	now := s.stamp()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE push_recipients SET status = $1, errcode = $2, errmsg = $3, reason = $4, done_at = $5, updated_at = $5,
    attempts = attempts + 1, in_flight_at = NULL WHERE id = $6 AND status = $7`,
		StatusFailed, nullCode(code), errmsg, reason, now, r.id, StatusQueued)
	if err != nil {
		return fmt.Errorf("push: mark recipient %d failed: %w", r.id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if r.grantID.Valid {
		state := grantUsed
		if releaseGrant {
			state = grantAvailable
		}
		if err := setGrant(ctx, tx, r.grantID.Int64, state, now); err != nil {
			return err
		}
	}
	if err := s.emit(ctx, tx, EventMessageFailed, r.account, r.id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("push: commit: %w", err)
	}
	s.opts.Metrics.fail(r.account, r.payload.Channel, reason)
	return nil
}

// failReason names the failure of an errcode for programs.
func failReason(code int) string {
	switch code {
	case wechat.CodeInvalidOpenID:
		return "invalid_openid"
	case wechat.CodeInvalidTemplateID:
		return "invalid_template"
	case wechat.CodeRequireSubscribe:
		return ReasonNotSubscribed
	case wechat.CodeUserRefused:
		return ReasonNoGrant
	case wechat.CodeArgumentInvalid:
		return "invalid_data"
	case wechat.CodeOutOfWindow, wechat.CodeResponseCountLimit:
		return ReasonOutsideWindow
	case 43019:
		return "blacklisted"
	case 0:
		return "error"
	}
	return "wechat_error"
}

func (s *Service) client(account string) (*wechat.Client, bool) {
	if s.opts.Clients == nil {
		return nil, false
	}
	return s.opts.Clients.Client(account)
}
