package callback

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Outcomes, as counted in the callback metrics besides the refusal codes.
const (
	outcomeVerified  = "verified"
	outcomeReplied   = "replied"
	outcomeEmpty     = "empty"
	outcomeDeferred  = "deferred"
	outcomeDuplicate = "duplicate"
)

// dispatch answers an accepted push within the deadline. The log comes
// first: its write (group-committed) tells new from duplicate, and a
// duplicate gets the stored first answer and nothing else runs for it.
// Only a new push reaches the responder and the hooks. In the common case
// it all happens on the request's goroutine; only hooks run on a goroutine
// of their own, so the deadline can cut them loose.
func (h *Handler) dispatch(w http.ResponseWriter, r *http.Request, a *account, in *inbound, start time.Time) {
	now := h.now()
	m := in.msg
	fields, err := wechat.MessageJSON(m)
	if err != nil {
		fields = []byte("{}")
	}
	msgID := m.MsgID
	if msgID == 0 {
		msgID = m.JobMsgID
	}
	var body []byte
	if !in.json {
		// The rules are pure and in memory: deciding their answer before
		// the write lets the common push be one write. Whatever has effects
		// (the responder, the hooks) waits until the log says it is new.
		body = h.ruleReply(a, m, now)
	}
	entry := msglog.Entry{
		Account:    a.cfg.Name,
		DedupKey:   m.DedupKey(),
		OpenID:     m.FromUserName,
		MsgType:    m.MsgType,
		Event:      m.Event,
		MsgID:      msgID,
		Fields:     fields,
		RawXML:     in.raw,
		ReceivedAt: now,
		Status:     msglog.StatusEmpty,
		ReplyBody:  body,
	}
	if len(body) > 0 {
		entry.Status = msglog.StatusReplied
	}

	// The deadline counts from the request's arrival: reading and
	// decrypting it used part of WeChat's five seconds already.
	remaining := max(h.deadline-time.Since(start), time.Millisecond)
	timer := time.NewTimer(remaining)
	defer timer.Stop()

	// Queuing the row is bounded by the deadline (a stalled database fills
	// the queue); once queued it is written whatever happens to the
	// request, and work that outlives the answer runs on the handler's own
	// context.
	enqueue := &deadlineContext{Context: r.Context(), deadline: time.Now().Add(remaining)}
	defer enqueue.release()
	h.arrived()
	pending := h.log.Begin(enqueue, entry)
	select {
	case <-pending.Done():
	case <-timer.C:
		// The log did not answer in time (a stalled database): say
		// "success" now and finish behind the answer.
		h.answerDeferred(w, a, m, start)
		h.background(func(ctx context.Context) { h.finishLate(ctx, a, m, entry, pending) })
		return
	}
	res, err := pending.Result()
	if err != nil {
		h.logger.Error("recording a push", "account", entry.Account, "dedup_key", entry.DedupKey, "err", err)
		h.refuse(w, r, a, errStorageUnavailable, start)
		return
	}
	if res.Duplicate {
		// A retry: the same answer as the first delivery, and no other work.
		h.metrics.duplicates.WithLabelValues(entry.Account).Inc()
		h.logger.Debug("duplicate push", "account", entry.Account, "dedup_key", entry.DedupKey, "first_status", res.Status)
		h.writeReply(w, a, in, res.ReplyBody, now)
		h.metrics.observe(entry.Account, outcomeDuplicate, start)
		return
	}

	if !in.json && h.responder != nil {
		if reply, handled := h.respond(r.Context(), a, m, start); handled {
			body = h.render(a, m, now, reply)
			h.storeAnswer(enqueue, entry, body)
		}
	}

	if h.hasHooks(m) && !h.runHooksWithin(timer, a, m, entry) {
		h.answerDeferred(w, a, m, start)
		return
	}
	h.writeReply(w, a, in, body, now)
	outcome := outcomeEmpty
	if len(body) > 0 {
		outcome = outcomeReplied
	}
	h.metrics.observe(entry.Account, outcome, start)
}

// deadlineContext is the request's context bounded by the reply deadline,
// with the bound made only when something waits on it: the message log
// queues a push at once unless its queue is full, and a context.WithTimeout
// per push (a timer, and a child registered with the request's context)
// cost about 3% of a push's CPU. It is used from the request's goroutine.
type deadlineContext struct {
	context.Context // the request's
	deadline        time.Time
	once            sync.Once
	bound           context.Context
	cancel          context.CancelFunc
}

func (c *deadlineContext) bounded() context.Context {
	c.once.Do(func() { c.bound, c.cancel = context.WithDeadline(c.Context, c.deadline) })
	return c.bound
}

func (c *deadlineContext) Deadline() (time.Time, bool) { return c.bounded().Deadline() }
func (c *deadlineContext) Done() <-chan struct{}       { return c.bounded().Done() }
func (c *deadlineContext) Err() error                  { return c.bounded().Err() }

// release stops the bound's timer, if it was made.
func (c *deadlineContext) release() {
	c.once.Do(func() {})
	if c.cancel != nil {
		c.cancel()
	}
}

// hookRun is shared by the handler waiting on hooks and the goroutine
// running them; whichever comes second decides who marks the push
// deferred.
type hookRun struct {
	mu       sync.Mutex
	finished bool // the hooks returned
	gaveUp   bool // the handler answered "success" at the deadline
}

// runHooksWithin runs the hooks on their own goroutine and waits for them
// until the timer fires. It reports false when the deadline won: the push
// is then marked deferred now, and again when the hooks end (stamping
// handled_at with the time the work was done).
func (h *Handler) runHooksWithin(timer *time.Timer, a *account, m *wechat.Message, entry msglog.Entry) bool {
	run := &hookRun{}
	done := make(chan struct{})
	h.background(func(ctx context.Context) {
		h.runHooks(ctx, a.cfg.Name, m)
		close(done)
		run.mu.Lock()
		run.finished = true
		late := run.gaveUp
		run.mu.Unlock()
		if late {
			h.markDeferred(ctx, entry)
			h.logger.Info("deferred push finished", "account", entry.Account, "dedup_key", entry.DedupKey)
		}
	})
	select {
	case <-done:
		return true
	case <-timer.C:
	}
	run.mu.Lock()
	if run.finished {
		run.mu.Unlock()
		return true // done just in time
	}
	run.gaveUp = true
	run.mu.Unlock()
	h.background(func(ctx context.Context) { h.markDeferred(ctx, entry) })
	return false
}

// finishLate completes a push whose log write outlived the deadline.
func (h *Handler) finishLate(ctx context.Context, a *account, m *wechat.Message, entry msglog.Entry, pending *msglog.Pending) {
	res, err := pending.Result()
	if err != nil {
		h.logger.Error("recording a push after its deadline", "account", entry.Account, "dedup_key", entry.DedupKey, "err", err)
		return
	}
	if res.Duplicate {
		return
	}
	h.runHooks(ctx, a.cfg.Name, m)
	h.markDeferred(ctx, entry)
}

// background runs fn on a goroutine that shutdown waits for.
func (h *Handler) background(fn func(ctx context.Context)) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn(h.bgCtx)
	}()
}

func (h *Handler) answerDeferred(w http.ResponseWriter, a *account, m *wechat.Message, start time.Time) {
	writeSuccess(w)
	h.metrics.observe(a.cfg.Name, outcomeDeferred, start)
	h.logger.Warn("reply deadline passed, answered success and finishing in the background",
		"account", a.cfg.Name, "openid", m.FromUserName, "msg_type", m.MsgType, "event", m.Event, "deadline", h.deadline)
}

func (h *Handler) markDeferred(ctx context.Context, entry msglog.Entry) {
	if err := h.log.SetOutcome(ctx, entry.Account, entry.DedupKey, msglog.StatusDeferred, nil); err != nil {
		h.logger.Error("marking a push deferred", "account", entry.Account, "dedup_key", entry.DedupKey, "err", err)
	}
}

// ruleReply renders the reply rules' answer as plain XML, or nil for none.
func (h *Handler) ruleReply(a *account, m *wechat.Message, now time.Time) []byte {
	if h.replies == nil {
		return nil
	}
	return h.render(a, m, now, h.replies.Reply(a.cfg.Name, m))
}

// render builds a reply as plain XML, or nil when there is none.
func (h *Handler) render(a *account, m *wechat.Message, now time.Time, reply wechat.Reply) []byte {
	if reply == nil {
		return nil
	}
	body, err := wechat.BuildReply(m.FromUserName, m.ToUserName, now.Unix(), reply)
	if err != nil {
		h.logger.Error("building a reply; answering success", "account", a.cfg.Name, "err", err)
		return nil
	}
	return body
}

// storeAnswer replaces the logged answer with the responder's before it is
// sent, so that WeChat's retry gets the same answer without asking the
// responder again.
func (h *Handler) storeAnswer(ctx context.Context, entry msglog.Entry, body []byte) {
	status := msglog.StatusEmpty
	if len(body) > 0 {
		status = msglog.StatusReplied
	}
	if err := h.log.SetOutcome(ctx, entry.Account, entry.DedupKey, status, body); err != nil {
		h.logger.Error("storing the responder's answer", "account", entry.Account, "dedup_key", entry.DedupKey, "err", err)
	}
}

// responderShare is the part of the time left before the deadline that
// the responder may use; the rest is for the log write and the answer.
const responderShare = 0.6

// respond asks the responder, if any, within its share of the deadline.
// A failing or panicking responder leaves the push to the rules.
func (h *Handler) respond(ctx context.Context, a *account, m *wechat.Message, start time.Time) (reply wechat.Reply, handled bool) {
	if h.responder == nil {
		return nil, false
	}
	budget := time.Duration(float64(h.deadline-time.Since(start)) * responderShare)
	if budget <= 0 {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			h.metrics.hookErrors.WithLabelValues(a.cfg.Name).Inc()
			h.logger.Error("callback responder panicked; answering by the rules", "account", a.cfg.Name, "panic", fmt.Sprint(p))
			reply, handled = nil, false
		}
	}()
	reply, handled, err := h.responder(ctx, a.cfg.Name, m)
	if err != nil {
		h.metrics.hookErrors.WithLabelValues(a.cfg.Name).Inc()
		h.logger.Error("callback responder failed; answering by the rules", "account", a.cfg.Name, "openid", m.FromUserName,
			"event", m.Event, "err", err)
		return nil, false
	}
	return reply, handled
}

// hasHooks reports whether a new push has domain work besides logging.
func (h *Handler) hasHooks(m *wechat.Message) bool {
	if (h.followers != nil && follower.IsFollowEvent(m)) ||
		(h.profiles != nil && m.IsEvent() && m.Event == wechat.EventSubscribe) {
		return true
	}
	for _, hook := range h.hooks {
		if hook.wants(m) {
			return true
		}
	}
	return false
}

// runHooks runs the domain work of a new push. A failing hook is logged
// and does not stop the others or the reply: the push is recorded and a
// retry would not run it again anyway.
func (h *Handler) runHooks(ctx context.Context, accountName string, m *wechat.Message) {
	if !h.hasHooks(m) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.bgTime)
	defer cancel()
	if h.followers != nil && follower.IsFollowEvent(m) {
		h.runHook(ctx, "followers", accountName, m, h.followers.ApplyEvent)
	}
	if h.profiles != nil && m.IsEvent() && m.Event == wechat.EventSubscribe {
		h.runHook(ctx, "profile", accountName, m, func(ctx context.Context, account string, m *wechat.Message) error {
			return h.profiles.FetchProfile(ctx, account, m.FromUserName)
		})
	}
	for i, hook := range h.hooks {
		if hook.wants(m) {
			h.runHook(ctx, "hook "+strconv.Itoa(i), accountName, m, hook.Run)
		}
	}
}

func (h *Handler) runHook(ctx context.Context, name, accountName string, m *wechat.Message, hook func(ctx context.Context, account string, m *wechat.Message) error) {
	defer func() {
		// Hooks run on their own goroutines, out of reach of the HTTP
		// server's recovery: a panicking hook must not take the gateway
		// down.
		if p := recover(); p != nil {
			h.metrics.hookErrors.WithLabelValues(accountName).Inc()
			h.logger.Error("callback hook panicked", "hook", name, "account", accountName, "panic", fmt.Sprint(p))
		}
	}()
	if err := hook(ctx, accountName, m); err != nil {
		h.metrics.hookErrors.WithLabelValues(accountName).Inc()
		h.logger.Error("callback hook failed", "hook", name, "account", accountName, "openid", m.FromUserName, "event", m.Event, "err", err)
	}
}

// writeReply answers with the reply, encrypted when the request was, or
// "success" when there is none. Replies are sealed here, per request, so a
// retry's answer carries the retry's nonce.
func (h *Handler) writeReply(w http.ResponseWriter, a *account, in *inbound, body []byte, now time.Time) {
	if len(body) == 0 {
		writeSuccess(w)
		return
	}
	if in.encrypted {
		sealed, err := a.crypter.SealReply(a.cfg.Token, body, now.Unix(), in.nonce, in.keyIndex)
		if err != nil {
			h.logger.Error("encrypting a reply; answering success", "account", a.cfg.Name, "err", err)
			writeSuccess(w)
			return
		}
		body = sealed
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, _ = w.Write(body)
}

// writeSuccess tells WeChat "no reply": it shows nothing and does not retry.
func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("success"))
}
