package callback_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/wechat"
)

// The responder answers the pushes that are its business instead of the
// rules; whatever else it does (not handled, an error, a panic) leaves the
// push to the rules. A retry gets the first answer.
func TestResponder(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	responder := func(ctx context.Context, account string, m *wechat.Message) (wechat.Reply, bool, error) {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the responder's context has no deadline")
		}
		switch m.Content {
		case "bind":
			return wechat.TextReply{Content: "bound " + account}, true, nil
		case "quiet":
			return nil, true, nil
		case "broken":
			return nil, false, errors.New("database down")
		case "panic":
			panic("bug in a responder")
		}
		return nil, false, nil
	}
	log := &memoryLog{}
	now := int64(1715943329)
	h, err := callback.New(callback.Options{
		Accounts:  []config.Account{acctPlain},
		Log:       log,
		Replies:   staticReplies{},
		Responder: responder,
		Now:       func() time.Time { return time.Unix(now, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &handlerBundle{h: h, log: log, now: now}
	tests := []struct {
		content, want string
	}{
		{"bind", "bound plain"},
		{"quiet", ""},
		{"other", "echo other"},
		{"broken", "echo broken"},
		{"panic", "echo panic"},
	}
	for i, tc := range tests {
		p := sign(t, acctPlain, textXML("gh_plain", "o1", now, int64(100+i), tc.content), itoa(now))
		rec := b.serve(p)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.content, rec.Code, body)
		}
		if tc.want == "" {
			if body != "success" {
				t.Errorf("%s: answered %q, want success", tc.content, body)
			}
			continue
		}
		if r, err := wechat.ParseReply([]byte(body)); err != nil || r.Content != tc.want {
			t.Errorf("%s: answered %q, want %q", tc.content, body, tc.want)
		}
	}

	// WeChat's retry of the first push: the stored answer, and the
	// responder (which binds, in the gateway) is not asked again.
	before := calls.Load()
	rec := b.serve(sign(t, acctPlain, textXML("gh_plain", "o1", now, 100, "bind"), itoa(now)))
	if !strings.Contains(rec.Body.String(), "bound plain") || calls.Load() != before {
		t.Errorf("retry answered %q after %d more responder calls, want the first answer and none", rec.Body.String(), calls.Load()-before)
	}
}
