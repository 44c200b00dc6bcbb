package reply_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/wechat"
)

func setup(t *testing.T, d *db.DB, accounts ...config.Account) *reply.Store {
	t.Helper()
	s := reply.NewStore(d, func() time.Time { return time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) })
	if err := s.Seed(t.Context(), accounts); err != nil {
		t.Fatal(err)
	}
	return s
}

func text(content string) *wechat.Message {
	return &wechat.Message{FromUserName: "o1", ToUserName: "gh_1", MsgType: wechat.MsgTypeText, Content: content, MsgID: 1}
}

func evt(name, key string) *wechat.Message {
	return &wechat.Message{FromUserName: "o1", ToUserName: "gh_1", MsgType: wechat.MsgTypeEvent, Event: name, EventKey: key}
}

func textOf(r wechat.Reply) string {
	if t, ok := r.(wechat.TextReply); ok {
		return t.Content
	}
	if r == nil {
		return "<none>"
	}
	return "<" + r.MsgType() + ">"
}

func say(s string) config.ReplyContent { return config.ReplyContent{Type: "text", Content: s} }

var configured = config.Account{Name: "main", Replies: []config.ReplyRule{
	{Match: "subscribe", Reply: say("welcome")},
	{Match: "click", EventKey: "V1001_TODAY", Reply: say("today's news")},
	{Match: "keyword", Mode: "exact", Pattern: "hi", Reply: say("exact hi")},
	{Match: "keyword", Mode: "contains", Pattern: "price", Reply: say("prices")},
	{Match: "keyword", Mode: "regex", Pattern: `^order\s+\d+$`, Reply: say("order status")},
	{Match: "keyword", Mode: "contains", Pattern: "hi", Reply: say("contains hi")},
	{Match: "msg_type", MsgType: "image", Reply: config.ReplyContent{Type: "image", MediaID: "MEDIA"}},
	{Match: "msg_type", MsgType: "voice", Reply: config.ReplyContent{Type: "none"}},
	{Match: "default", Reply: say("fallback")},
}}

func TestMatchOrder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, configured)
		tests := []struct {
			name string
			msg  *wechat.Message
			want string
		}{
			{"subscribe gets the welcome", evt("subscribe", ""), "welcome"},
			{"QR subscribe too", evt("subscribe", "qrscene_1"), "welcome"},
			{"menu click by key", evt("CLICK", "V1001_TODAY"), "today's news"},
			{"unknown click", evt("CLICK", "OTHER"), "<none>"},
			{"other events get no default", evt("LOCATION", ""), "<none>"},
			{"exact ignores case and spaces", text("  HI "), "exact hi"},
			{"contains", text("what is the Price?"), "prices"},
			{"regex", text("order 42"), "order status"},
			{"regex anchored", text("my order 42"), "<none-regex>"},
			{"order of keyword rules", text("hi there"), "contains hi"},
			{"per type", &wechat.Message{MsgType: "image", FromUserName: "o1"}, "<image>"},
			{"none rule", &wechat.Message{MsgType: "voice", FromUserName: "o1"}, "<none>"},
			{"default for text", text("zzz"), "fallback"},
			{"default for other types", &wechat.Message{MsgType: "location", FromUserName: "o1"}, "fallback"},
			{"unknown account", nil, "<none>"},
		}
		for _, tt := range tests {
			account := "main"
			msg := tt.msg
			if msg == nil {
				account, msg = "nobody", text("hi")
			}
			want := tt.want
			if want == "<none-regex>" {
				want = "fallback"
			}
			if got := textOf(s.Reply(account, msg)); got != want {
				t.Errorf("%s: got %q, want %q", tt.name, got, want)
			}
		}
	})
}

func TestStarterRules(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, config.Account{Name: "fresh"}, config.Account{Name: "mp", Kind: config.KindMiniProgram})
		rules, err := s.List(t.Context(), "fresh")
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != len(reply.StarterRules()) {
			t.Fatalf("stored %d starter rules, want %d", len(rules), len(reply.StarterRules()))
		}
		if !strings.Contains(textOf(s.Reply("fresh", evt("subscribe", ""))), "感谢关注") {
			t.Error("no welcome on subscribe")
		}
		if got := textOf(s.Reply("fresh", text("你好"))); !strings.Contains(got, "「你好」") {
			t.Errorf("text echo = %q", got)
		}
		for _, mt := range []string{"image", "voice", "video", "shortvideo", "location", "link"} {
			if got := textOf(s.Reply("fresh", &wechat.Message{MsgType: mt, FromUserName: "o1"})); got == "<none>" {
				t.Errorf("no starter reply for %s", mt)
			}
		}
		if mp, _ := s.List(t.Context(), "mp"); len(mp) != 0 {
			t.Errorf("mini program got %d rules; it cannot reply passively", len(mp))
		}
	})
}

// Config rules are replaced on each start; CLI rules stay.
func TestSeedKeepsCLIRules(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		s := setup(t, d, configured)
		added, err := s.Add(ctx, reply.Rule{Account: "main", Match: "keyword", Mode: "exact", Pattern: "coupon", Reply: say("here is a coupon")})
		if err != nil {
			t.Fatal(err)
		}
		if added.ID == 0 || added.Source != reply.SourceCLI || !added.Enabled || added.Position != len(configured.Replies) {
			t.Errorf("added = %+v", added)
		}
		if got := textOf(s.Reply("main", text("coupon"))); got != "here is a coupon" {
			t.Errorf("added rule not live: %q", got)
		}

		restarted := setup(t, d, config.Account{Name: "main", Replies: []config.ReplyRule{{Match: "default", Reply: say("new fallback")}}})
		rules, err := restarted.List(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 2 {
			t.Fatalf("after reseed %d rules, want the new config rule and the CLI rule: %+v", len(rules), rules)
		}
		if got := textOf(restarted.Reply("main", text("coupon"))); got != "here is a coupon" {
			t.Errorf("CLI rule lost: %q", got)
		}
		if got := textOf(restarted.Reply("main", text("hi"))); got != "new fallback" {
			t.Errorf("old config rule still matches: %q", got)
		}

		if err := restarted.SetEnabled(ctx, added.ID, false); err != nil {
			t.Fatal(err)
		}
		if got := textOf(restarted.Reply("main", text("coupon"))); got != "new fallback" {
			t.Errorf("disabled rule still matches: %q", got)
		}
		if err := restarted.Delete(ctx, added.ID); err != nil {
			t.Fatal(err)
		}
		if err := restarted.Delete(ctx, added.ID); !errors.Is(err, reply.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}

func TestMoveChangesKeywordOrder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		s := setup(t, d, config.Account{Name: "main", Replies: []config.ReplyRule{{Match: "keyword", Mode: "contains", Pattern: "a", Reply: say("first")}}})
		second, err := s.Add(ctx, reply.Rule{Account: "main", Match: "keyword", Mode: "contains", Pattern: "ab", Reply: say("second")})
		if err != nil {
			t.Fatal(err)
		}
		if got := textOf(s.Reply("main", text("ab"))); got != "first" {
			t.Errorf("before move: %q", got)
		}
		if err := s.Move(ctx, second.ID, -1); err != nil {
			t.Fatal(err)
		}
		if got := textOf(s.Reply("main", text("ab"))); got != "second" {
			t.Errorf("after move: %q", got)
		}
	})
}

func TestAddValidation(t *testing.T) {
	t.Parallel()
	s := setup(t, dbtest.SQLite(t))
	tests := []struct {
		name string
		rule reply.Rule
		want string
	}{
		{"bad regex", reply.Rule{Account: "main", Match: "keyword", Mode: "regex", Pattern: "([", Reply: say("x")}, "不是合法的正则表达式"},
		{"no pattern", reply.Rule{Account: "main", Match: "keyword", Reply: say("x")}, "needs a pattern"},
		{"bad mode", reply.Rule{Account: "main", Match: "keyword", Mode: "fuzzy", Pattern: "x", Reply: say("x")}, "mode must be exact, contains or regex"},
		{"bad match", reply.Rule{Account: "main", Match: "sometimes", Reply: say("x")}, "match must be"},
		{"bad msg type", reply.Rule{Account: "main", Match: "msg_type", MsgType: "event", Reply: say("x")}, "msg_type must be"},
		{"click without key", reply.Rule{Account: "main", Match: "click", Reply: say("x")}, "event_key"},
		{"empty text", reply.Rule{Account: "main", Match: "default", Reply: say("")}, "text reply needs content"},
		{"image without media", reply.Rule{Account: "main", Match: "default", Reply: config.ReplyContent{Type: "image"}}, "media_id"},
		{"too many articles", reply.Rule{Account: "main", Match: "subscribe", Reply: config.ReplyContent{Type: "news", Articles: make([]config.Article, 9)}}, "1 to 8 articles"},
		{"no account", reply.Rule{Match: "default", Reply: say("x")}, "account is required"},
	}
	for _, tt := range tests {
		_, err := s.Add(t.Context(), tt.rule)
		var ve *problem.Error
		if !errors.As(err, &ve) || !errors.Is(err, reply.ErrInvalidRule) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want a validation error mentioning %q", tt.name, err, tt.want)
		}
	}
	if rules, _ := s.List(t.Context(), ""); len(rules) != 0 {
		t.Errorf("invalid rules were stored: %+v", rules)
	}
}

func TestNewsReplyToMessageHasOneArticle(t *testing.T) {
	t.Parallel()
	r := reply.Rule{Match: "default", Reply: config.ReplyContent{Type: "news", Articles: []config.Article{{Title: "a"}, {Title: "b"}}}}
	if news := r.Build(text("x")).(wechat.NewsReply); len(news.Articles) != 1 {
		t.Errorf("reply to a message: %d articles, WeChat shows one", len(news.Articles))
	}
	if news := r.Build(evt("subscribe", "")).(wechat.NewsReply); len(news.Articles) != 2 {
		t.Errorf("reply to an event: %d articles, want 2", len(news.Articles))
	}
}
