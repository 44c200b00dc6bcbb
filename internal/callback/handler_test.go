package callback_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechat"
)

// staticReplies answers every text message with its own content.
type staticReplies struct{}

func (staticReplies) Reply(_ string, m *wechat.Message) wechat.Reply {
	if m.MsgType != wechat.MsgTypeText {
		return nil
	}
	return wechat.TextReply{Content: "echo " + m.Content}
}

type handlerBundle struct {
	h   *callback.Handler
	log *memoryLog
	now int64
}

func setupHandler(t *testing.T, accounts []config.Account, hooks ...callback.Hook) *handlerBundle {
	t.Helper()
	b := &handlerBundle{log: &memoryLog{}, now: 1715943329}
	h, err := callback.New(callback.Options{
		Accounts: accounts,
		Log:      b.log,
		Replies:  staticReplies{},
		Hooks:    hooks,
		Now:      func() time.Time { return time.Unix(b.now, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Wait(context.Background()) })
	b.h = h
	return b
}

func (b *handlerBundle) serve(p push) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/wx/"+p.account+"?"+p.query.Encode(), strings.NewReader(string(p.body)))
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// During a key rotation a push sealed with the previous EncodingAESKey is
// accepted and answered with that same key.
func TestPreviousKeyDuringRotation(t *testing.T) {
	t.Parallel()
	oldKey := keySafe
	newKey := strings.Repeat("B", 43)
	rotated := acctSafe
	rotated.EncodingAESKey, rotated.PreviousEncodingAESKey = newKey, oldKey
	b := setupHandler(t, []config.Account{rotated})

	p := sign(t, acctSafe, textXML("gh_safe00000001", "o1", b.now, 1, "hi"), itoa(b.now)) // sealed with the old key
	rec := b.serve(p)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if r := openReply(t, acctSafe, rec.Body.Bytes()); r.Content != "echo hi" {
		t.Errorf("reply = %+v", r)
	}
	current := rotated
	current.PreviousEncodingAESKey = ""
	rec = b.serve(sign(t, current, textXML("gh_safe00000001", "o1", b.now, 2, "new"), itoa(b.now)))
	if r := openReply(t, current, rec.Body.Bytes()); r.Content != "echo new" {
		t.Errorf("reply with the new key = %+v", r)
	}
}

// A failing or panicking hook is logged; the push is still answered.
func TestHookFailuresAreContained(t *testing.T) {
	t.Parallel()
	failing := func(context.Context, string, *wechat.Message) error { return errors.New("webhook down") }
	panicking := func(context.Context, string, *wechat.Message) error { panic("bug in a hook") }
	var ran bool
	last := func(context.Context, string, *wechat.Message) error { ran = true; return nil }
	b := setupHandler(t, []config.Account{acctPlain}, callback.Hook{Run: failing}, callback.Hook{Run: panicking}, callback.Hook{Run: last})

	rec := b.serve(sign(t, acctPlain, textXML("gh_plain", "o1", b.now, 7, "hi"), itoa(b.now)))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "echo hi") {
		t.Errorf("answer %d %s", rec.Code, rec.Body)
	}
	if err := b.h.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ran || b.log.count() != 1 {
		t.Errorf("later hook ran: %v; logged %d", ran, b.log.count())
	}
}

// Other methods than GET and POST are not served.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	b := setupHandler(t, []config.Account{acctPlain})
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/wx/plain", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", rec.Code)
	}
}

// A hook runs only for the pushes its Wants accepts; one without Wants
// runs for every push.
func TestHookRunsOnlyForThePushesItWants(t *testing.T) {
	t.Parallel()
	var clicks, all atomic.Int32
	onClick := callback.Hook{
		Wants: func(m *wechat.Message) bool { return m.IsEvent() && m.Event == wechat.EventClick },
		Run:   func(context.Context, string, *wechat.Message) error { clicks.Add(1); return nil },
	}
	every := callback.Hook{Run: func(context.Context, string, *wechat.Message) error { all.Add(1); return nil }}
	b := setupHandler(t, []config.Account{acctPlain}, onClick, every)
	for i, body := range [][]byte{
		textXML("gh_plain", "o1", b.now, 8, "hi"),
		fmt.Appendf(nil, `<xml><ToUserName><![CDATA[gh_plain]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[k]]></EventKey></xml>`, b.now),
	} {
		if rec := b.serve(sign(t, acctPlain, body, itoa(b.now))); rec.Code != http.StatusOK {
			t.Fatalf("push %d: answer %d %s", i, rec.Code, rec.Body)
		}
	}
	if clicks.Load() != 1 || all.Load() != 2 {
		t.Fatalf("the CLICK hook ran %d times (want 1: the click only), the other %d (want 2)", clicks.Load(), all.Load())
	}
}

// countingLog is a message log that is told of the pushes on their way
// (as msglog.Store is), and checks the handler's announcements.
type countingLog struct {
	memoryLog
	expected     atomic.Int64
	beganEarly   atomic.Int64 // pushes queued while still announced
	announcement atomic.Int64 // Expect calls
}

func (l *countingLog) Expect() { l.announcement.Add(1); l.expected.Add(1) }
func (l *countingLog) Arrived() {
	if l.expected.Add(-1) < 0 {
		panic("Arrived without Expect")
	}
}

func (l *countingLog) Begin(ctx context.Context, e msglog.Entry) *msglog.Pending {
	if l.expected.Load() != 0 {
		l.beganEarly.Add(1)
	}
	return l.memoryLog.Begin(ctx, e)
}

// Every POST announces its push to a log that counts them, and withdraws
// the announcement before its push is queued or when it is refused: an
// announcement left behind would keep the log's writer waiting for a push
// that never comes.
func TestEveryPushWithdrawsItsAnnouncement(t *testing.T) {
	t.Parallel()
	log := &countingLog{}
	h, err := callback.New(callback.Options{Accounts: []config.Account{acctSafe, acctPlain}, Log: log, Replies: staticReplies{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Wait(context.Background()) })
	now := time.Now().Unix()
	good := sign(t, acctSafe, textXML("gh_safe00000001", "o1", now, 1, "hi"), itoa(now))
	wrongSignature := sign(t, acctSafe, textXML("gh_safe00000001", "o1", now, 2, "hi"), itoa(now))
	wrongSignature.query.Set("signature", strings.Repeat("0", 40))
	unknown := good
	unknown.account = "nobody"
	oversize := sign(t, acctPlain, textXML("gh_plain", "o1", now, 3, strings.Repeat("x", 2<<20)), itoa(now))
	malformed := sign(t, acctPlain, []byte("<xml><ToUserName>"), itoa(now))
	pushes := []struct {
		name   string
		p      push
		status int
	}{
		{"new push", good, http.StatusOK},
		{"duplicate", good, http.StatusOK},
		{"wrong signature", wrongSignature, http.StatusUnauthorized},
		{"unknown account", unknown, http.StatusNotFound},
		{"oversize body", oversize, http.StatusRequestEntityTooLarge},
		{"malformed XML", malformed, http.StatusBadRequest},
	}
	for _, tt := range pushes {
		req := httptest.NewRequest(http.MethodPost, "/wx/"+tt.p.account+"?"+tt.p.query.Encode(), strings.NewReader(string(tt.p.body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, rec.Code, tt.status, rec.Body)
		}
		if n := log.expected.Load(); n != 0 {
			t.Fatalf("after %s, %d pushes are still announced", tt.name, n)
		}
	}
	if n := log.announcement.Load(); n != int64(len(pushes)) {
		t.Errorf("%d announcements for %d POSTs", n, len(pushes))
	}
	if n := log.beganEarly.Load(); n != 0 {
		t.Errorf("%d pushes were queued before their announcement was withdrawn", n)
	}
	if log.count() != 1 {
		t.Errorf("%d pushes logged, want 1", log.count())
	}
}
