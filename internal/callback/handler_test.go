package callback_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
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
	b := setupHandler(t, []config.Account{acctPlain}, failing, panicking, last)

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
