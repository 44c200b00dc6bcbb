package callback_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechat"
)

// WeChat's own compatible-mode sample (V1), replayed byte for byte against
// the real server: accepted, logged, answered with an encrypted reply, and
// its retry handled once with the same reply.
func TestVectorV1CompatibleMode(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)["V1"]
	acct := vectorAccount("v1", v, config.ModeCompatible)
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acct}, start: v.unix(t)})

	q := url.Values{"signature": {v.Signature}, "timestamp": {v.Timestamp}, "nonce": {v.Nonce},
		"encrypt_type": {"aes"}, "msg_signature": {v.MsgSignature}}
	p := push{account: "v1", query: q, body: []byte(v.Body)}

	first := g.post(t, p)
	if first.status != http.StatusOK {
		t.Fatalf("V1: status %d %s", first.status, first.body)
	}
	r := openReply(t, acct, first.body)
	if r.ToUserName != "oyORnuP8q7ou2gfYjqLzSIWZf0rs" || r.FromUserName != "gh_10f6c3c3ac5a" || r.MsgType != "text" ||
		!strings.Contains(r.Content, "abcdteT") || r.CreateTime != v.unix(t) {
		t.Errorf("V1 reply = %+v", r)
	}
	var sealed wechat.ParsedReply
	if parsed, _ := wechat.ParseReply(first.body); parsed != nil {
		sealed = *parsed
	}
	if sealed.Nonce != v.Nonce {
		t.Errorf("reply nonce %q, want the request's %q", sealed.Nonce, v.Nonce)
	}

	m, err := g.srv.Messages.Get(context.Background(), "v1", "msg:6054768590064713728")
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	_ = json.Unmarshal(m.Fields, &fields)
	if m.MsgID != 6054768590064713728 || fields["Content"] != "abcdteT" || m.OpenID != "oyORnuP8q7ou2gfYjqLzSIWZf0rs" ||
		m.MsgType != "text" || m.RawXML != v.Msg || m.ReplyStatus != msglog.StatusReplied || m.ReceivedAt.Unix() != v.unix(t) {
		t.Errorf("logged = %+v, fields %s", m, m.Fields)
	}
	if _, hasEncrypt := fields["Encrypt"]; hasEncrypt {
		t.Error("the Encrypt value was logged with the fields")
	}

	// WeChat's retry: the identical request.
	g.clock.advance(5)
	retry := g.post(t, p)
	if retry.status != http.StatusOK {
		t.Fatalf("retry: status %d %s", retry.status, retry.body)
	}
	again := openReply(t, acct, retry.body)
	if again.Content != r.Content || again.CreateTime != r.CreateTime {
		t.Errorf("retry got %+v, want the first reply %+v", again, r)
	}
	if n := g.count(t, "inbound_messages"); n != 1 {
		t.Errorf("%d rows after a retry, want 1", n)
	}
}

// The official safe-mode example (V5): an event with no rule → "success".
func TestVectorV5SafeMode(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)["V5"]
	acct := vectorAccount("v5", v, config.ModeSafe)
	acct.OriginalID = "gh_97417a04a28d"
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acct}, start: v.unix(t) + 30})

	q := url.Values{"signature": {v.Signature}, "timestamp": {v.Timestamp}, "nonce": {v.Nonce},
		"openid": {"o9AgO5Kd5ggOC-bXrbNODIiE3bGY"}, "encrypt_type": {"aes"}, "msg_signature": {v.MsgSignature}}
	resp := g.post(t, push{account: "v5", query: q, body: []byte(v.Body)})
	if resp.status != http.StatusOK || string(resp.body) != "success" {
		t.Fatalf("V5: %d %q", resp.status, resp.body)
	}
	list, err := g.srv.Messages.ListByOpenID(context.Background(), "v5", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("logged %d, %v", len(list), err)
	}
	if m := list[0]; m.Event != "debug_demo" || m.MsgType != "event" || m.RawXML != v.Msg || m.ReplyStatus != msglog.StatusEmpty {
		t.Errorf("logged = %+v", m)
	}
}

func TestURLVerification(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)["GET"]
	acct := config.Account{Name: "main", AppID: "wx0123456789abcdef", Token: v.Token, MessageMode: config.ModePlaintext}
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acct}, start: v.unix(t)})

	q := url.Values{"signature": {v.Signature}, "echostr": {v.Echostr}, "timestamp": {v.Timestamp}, "nonce": {v.Nonce}}
	resp := g.get(t, "/wx/main?"+q.Encode())
	if resp.status != http.StatusOK || string(resp.body) != "4375120948345356249" {
		t.Errorf("verification: %d %q, want exactly the echostr", resp.status, resp.body)
	}

	q.Set("signature", strings.Repeat("0", 40))
	resp = g.get(t, "/wx/main?"+q.Encode())
	if resp.status != http.StatusUnauthorized || bytes.Contains(resp.body, []byte(v.Echostr)) || errorCode(t, resp.body) != callback.CodeInvalidSignature {
		t.Errorf("wrong signature: %d %s", resp.status, resp.body)
	}
	if !strings.Contains(string(resp.body), "Token") {
		t.Errorf("the message should say to check the Token: %s", resp.body)
	}
	resp = g.get(t, "/wx/main?echostr=1")
	if resp.status != http.StatusUnauthorized || bytes.Contains(resp.body, []byte(`"1"`)) {
		t.Errorf("no signature: %d %s", resp.status, resp.body)
	}
	if resp := g.get(t, "/wx/nobody?"+q.Encode()); resp.status != http.StatusNotFound || errorCode(t, resp.body) != callback.CodeUnknownAccount {
		t.Errorf("unknown account: %d %s", resp.status, resp.body)
	}
}

// Plaintext and generated safe/compatible pushes: the reply is the rule's,
// encrypted exactly when the request was.
func TestRepliesInEveryMode(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acctPlain, acctSafe, acctCompat}})
	now := g.clock.unix.Load()

	resp := g.post(t, sign(t, acctPlain, textXML("gh_plain", "o-plain", now, 1001, "hello"), g.clock.stamp()))
	want, _ := wechat.BuildReply("o-plain", "gh_plain", now, wechat.TextReply{Content: "hello to you"})
	if resp.status != http.StatusOK || !bytes.Equal(resp.body, want) {
		t.Errorf("plaintext: %d %s, want %s", resp.status, resp.body, want)
	}
	// No rule matches → success.
	if resp := g.post(t, sign(t, acctPlain, textXML("gh_plain", "o-plain", now, 1002, "zzz"), g.clock.stamp())); string(resp.body) != "success" {
		t.Errorf("plaintext without a rule: %q", resp.body)
	}

	for _, acct := range []config.Account{acctSafe, acctCompat} {
		to := "gh_safe00000001"
		resp := g.post(t, sign(t, acct, textXML(to, "o-"+acct.Name, now, 2001, "你好"), g.clock.stamp()))
		if resp.status != http.StatusOK {
			t.Fatalf("%s: %d %s", acct.Name, resp.status, resp.body)
		}
		r := openReply(t, acct, resp.body)
		if r.ToUserName != "o-"+acct.Name || r.FromUserName != to || !strings.Contains(r.Content, "「你好」") {
			t.Errorf("%s reply = %+v", acct.Name, r)
		}
	}
	if n := g.count(t, "inbound_messages"); n != 4 {
		t.Errorf("%d rows, want 4", n)
	}
}

// Every refusal: the right status and code, and nothing stored.
func TestRefusals(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{
		accounts: []config.Account{acctSafe, acctPlain, acctCompat},
		settings: config.CallbackConfig{MaxBodyBytes: 4096},
	})
	now := g.clock.unix.Load()
	stamp := g.clock.stamp()
	subscribe := eventXML("gh_safe00000001", "o-attacker", now, "subscribe", "qrscene_7", "T")
	good := func() push { return sign(t, acctSafe, subscribe, stamp) }
	otherApp := acctSafe
	otherApp.AppID = "wx0000000000other1"

	tests := []struct {
		name   string
		push   func() push
		status int
		code   string
	}{
		{"wrong signature", func() push {
			p := good()
			p.query.Set("signature", wechat.Signature("wrong", stamp, p.query.Get("nonce")))
			return p
		},
			401, callback.CodeInvalidSignature},
		{"no signature", func() push { p := good(); p.query.Del("signature"); return p }, 401, callback.CodeInvalidSignature},
		{"wrong msg_signature", func() push { p := good(); p.query.Set("msg_signature", strings.Repeat("a", 40)); return p },
			401, callback.CodeInvalidMsgSignature},
		{"stale timestamp", func() push { return sign(t, acctSafe, subscribe, itoa(now-600)) }, 401, callback.CodeStaleTimestamp},
		{"future timestamp", func() push { return sign(t, acctSafe, subscribe, itoa(now+600)) }, 401, callback.CodeStaleTimestamp},
		{"missing timestamp", func() push { p := good(); p.query.Del("timestamp"); return p }, 400, callback.CodeInvalidTimestamp},
		{"non-numeric timestamp", func() push { return sign(t, acctSafe, subscribe, "soon") }, 400, callback.CodeInvalidTimestamp},
		{"encrypted for another AppID", func() push { p := sign(t, otherApp, subscribe, stamp); return p }, 401, callback.CodeAppIDMismatch},
		{"plaintext body to a safe account", func() push {
			p := sign(t, acctPlain, subscribe, stamp)
			p.account = "safe"
			p.query.Set("signature", wechat.Signature(acctSafe.Token, stamp, p.query.Get("nonce")))
			return p
		}, 400, callback.CodeEncryptionRequired},
		{"plaintext body claiming aes to a safe account", func() push {
			p := sign(t, acctPlain, subscribe, stamp)
			p.account = "safe"
			p.query.Set("signature", wechat.Signature(acctSafe.Token, stamp, p.query.Get("nonce")))
			p.query.Set("encrypt_type", "aes")
			return p
		}, 400, callback.CodeEncryptionRequired},
		{"safe body to a plaintext account", func() push {
			p := sign(t, acctSafe, subscribe, stamp)
			p.account = "plain"
			p.query.Set("signature", wechat.Signature(acctPlain.Token, stamp, p.query.Get("nonce")))
			return p
		}, 400, callback.CodeModeMismatch},
		{"ToUserName of another account", func() push {
			return sign(t, acctSafe, eventXML("gh_someoneelse", "o1", now, "subscribe", "", ""), stamp)
		}, 403, callback.CodeToUserMismatch},
		{"undecryptable Encrypt", func() push {
			p := good()
			enc := "bm90IHJlYWxseSBlbmNyeXB0ZWQgYXQgYWxsIDopIQ=="
			p.body = wechat.SafeModeBody("gh_safe00000001", enc)
			p.query.Set("msg_signature", wechat.Signature(acctSafe.Token, stamp, p.query.Get("nonce"), enc))
			return p
		}, 400, callback.CodeDecryptFailed},
		{"compatible halves disagree", func() push {
			p := sign(t, acctCompat, textXML("gh_x", "o1", now, 77, "real"), stamp)
			p.body = bytes.Replace(p.body, []byte("<![CDATA[real]]>"), []byte("<![CDATA[fake]]>"), 1)
			return p
		}, 400, callback.CodeCompatibleMismatch},
		{"oversize body", func() push {
			big := textXML("gh_plain", "o1", now, 5, strings.Repeat("x", 5000))
			return sign(t, acctPlain, big, stamp)
		}, 413, callback.CodeBodyTooLarge},
		{"malformed XML", func() push { p := sign(t, acctPlain, []byte("<xml><ToUserName>"), stamp); return p }, 400, callback.CodeMalformedBody},
		{"not XML", func() push { p := sign(t, acctPlain, []byte(`{"MsgType":"text"}`), stamp); return p }, 400, callback.CodeMalformedBody},
		{"empty body", func() push { p := sign(t, acctPlain, nil, stamp); return p }, 400, callback.CodeMalformedBody},
		{"XML without sender", func() push { p := sign(t, acctPlain, []byte("<xml><MsgType>text</MsgType></xml>"), stamp); return p }, 400, callback.CodeMalformedBody},
		{"unknown account", func() push { p := good(); p.account = "nobody"; return p }, 404, callback.CodeUnknownAccount},
	}
	for _, tt := range tests {
		resp := g.post(t, tt.push())
		if resp.status != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, resp.status, tt.status, resp.body)
			continue
		}
		if code := errorCode(t, resp.body); code != tt.code {
			t.Errorf("%s: code %q, want %q", tt.name, code, tt.code)
		}
	}
	if n := g.count(t, "inbound_messages"); n != 0 {
		t.Errorf("%d pushes logged from refused requests", n)
	}
	if n := g.count(t, "followers"); n != 0 {
		t.Errorf("%d followers written from refused requests", n)
	}

	// The same push, correctly signed, goes through: the refusals above
	// were for the reasons tested.
	if resp := g.post(t, good()); resp.status != http.StatusOK {
		t.Errorf("control: %d %s", resp.status, resp.body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Follow, retry, scan, unfollow: followers follow the events, once each.
func TestFollowerLifecycle(t *testing.T) {
	t.Parallel()
	var hookRuns atomic.Int32
	count := func(ctx context.Context, account string, m *wechat.Message) error {
		if m.IsEvent() {
			hookRuns.Add(1)
		}
		return nil
	}
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acctSafe}, hooks: []callback.Hook{{Run: count}}})
	now := g.clock.unix.Load()
	to := "gh_safe00000001"
	ctx := context.Background()

	sub := sign(t, acctSafe, eventXML(to, "o-fan", now, "subscribe", "qrscene_123", "TICKET"), g.clock.stamp())
	resp := g.post(t, sub)
	if resp.status != http.StatusOK {
		t.Fatalf("subscribe: %d %s", resp.status, resp.body)
	}
	if r := openReply(t, acctSafe, resp.body); !strings.Contains(r.Content, "感谢关注") {
		t.Errorf("welcome = %+v", r)
	}
	f, err := g.srv.Followers.Get(ctx, "safe", "o-fan")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Subscribed || f.QRScene == nil || *f.QRScene != 123 || f.LastTicket != "TICKET" || f.SubscribedAt.Unix() != now {
		t.Errorf("after subscribe: %+v", f)
	}

	// WeChat's retry of the subscribe: the same reply, no second change.
	retry := g.post(t, sub)
	if r := openReply(t, acctSafe, retry.body); !strings.Contains(r.Content, "感谢关注") {
		t.Errorf("retry reply = %+v", r)
	}
	after, _ := g.srv.Followers.Get(ctx, "safe", "o-fan")
	if !after.UpdatedAt.Equal(f.UpdatedAt) || hookRuns.Load() != 1 {
		t.Errorf("the retry ran the hooks again: %d runs, updated %v → %v", hookRuns.Load(), f.UpdatedAt, after.UpdatedAt)
	}

	g.clock.advance(60)
	g.post(t, sign(t, acctSafe, eventXML(to, "o-fan", now+60, "SCAN", "S-1024", "T2"), g.clock.stamp()))
	g.clock.advance(60)
	resp = g.post(t, sign(t, acctSafe, eventXML(to, "o-fan", now+120, "unsubscribe", "", ""), g.clock.stamp()))
	if string(resp.body) != "success" {
		t.Errorf("unsubscribe answer %q", resp.body)
	}
	f, err = g.srv.Followers.Get(ctx, "safe", "o-fan")
	if err != nil {
		t.Fatalf("unsubscribe deleted the follower: %v", err)
	}
	if f.Subscribed || f.UnsubscribedAt == nil || f.UnsubscribedAt.Unix() != now+120 || f.LastEventKey != "S-1024" {
		t.Errorf("after unsubscribe: %+v", f)
	}
	if n := g.count(t, "inbound_messages"); n != 3 {
		t.Errorf("%d pushes logged, want 3", n)
	}
	if hookRuns.Load() != 3 {
		t.Errorf("hooks ran %d times, want 3", hookRuns.Load())
	}
}

// The log comes first: WeChat's retry of a push the responder answered gets
// the stored answer from the database, and the responder (which binds a QR
// scan, in the gateway) is not asked a second time.
func TestRetryGetsTheStoredResponderAnswer(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	responder := func(ctx context.Context, account string, m *wechat.Message) (wechat.Reply, bool, error) {
		n := calls.Add(1)
		return wechat.TextReply{Content: fmt.Sprintf("绑定成功 #%d", n)}, true, nil
	}
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acctSafe}, responder: responder})
	now := g.clock.unix.Load()
	push := sign(t, acctSafe, eventXML("gh_safe00000001", "o-scan", now, "SCAN", "S-1024", "T1"), g.clock.stamp())
	first := openReply(t, acctSafe, g.post(t, push).body)
	if first.Content != "绑定成功 #1" {
		t.Fatalf("first answer %+v", first)
	}
	retry := openReply(t, acctSafe, g.post(t, push).body)
	if retry.Content != first.Content || calls.Load() != 1 {
		t.Errorf("retry answered %q after %d responder calls, want %q after 1", retry.Content, calls.Load(), first.Content)
	}
	if n := g.count(t, "inbound_messages"); n != 1 {
		t.Errorf("%d pushes logged, want 1", n)
	}
}

// A hook slower than the deadline: "success" in time, the log says
// deferred, and the work still completes.
func TestSlowHookIsDeferred(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var finished atomic.Bool
	slow := func(ctx context.Context, account string, m *wechat.Message) error {
		if m.Content != "slow" {
			return nil
		}
		<-release
		finished.Store(true)
		return nil
	}
	g := startGateway(t, gatewayOptions{
		accounts: []config.Account{acctSafe},
		hooks:    []callback.Hook{{Run: slow}},
		settings: config.CallbackConfig{ReplyDeadline: 300 * time.Millisecond},
	})
	now := g.clock.unix.Load()
	p := sign(t, acctSafe, textXML("gh_safe00000001", "o-slow", now, 9001, "slow"), g.clock.stamp())

	resp := g.post(t, p)
	if resp.status != http.StatusOK || string(resp.body) != "success" {
		t.Fatalf("slow push: %d %q", resp.status, resp.body)
	}
	// The hook is still blocked, so the answer cannot have waited for it;
	// the bound below only catches an answer that missed WeChat's 5 s
	// limit, generous for a loaded test machine.
	if resp.took > 4500*time.Millisecond {
		t.Errorf("answered after %v, deadline 300ms", resp.took)
	}
	status := func() msglog.Status {
		m, err := g.srv.Messages.Get(context.Background(), "safe", "msg:9001")
		if err != nil {
			return ""
		}
		return m.ReplyStatus
	}
	waitFor(t, "the push logged deferred", func() bool { return status() == msglog.StatusDeferred })
	if finished.Load() {
		t.Fatal("the hook finished before it was released")
	}

	// A retry meanwhile gets what the first delivery got: success.
	if resp := g.post(t, p); string(resp.body) != "success" {
		t.Errorf("retry of a deferred push: %q", resp.body)
	}

	close(release)
	waitFor(t, "the hook to finish", finished.Load)
	m, _ := g.srv.Messages.Get(context.Background(), "safe", "msg:9001")
	waitFor(t, "handled_at stamped", func() bool {
		m, _ = g.srv.Messages.Get(context.Background(), "safe", "msg:9001")
		return m.HandledAt != nil
	})
	if m.ReplyStatus != msglog.StatusDeferred {
		t.Errorf("final status %s", m.ReplyStatus)
	}
	metrics := g.get(t, "/metrics")
	if !bytes.Contains(metrics.body, []byte(`wxgate_callback_requests_total{account="safe",outcome="deferred"} 1`)) {
		t.Errorf("no deferred metric in\n%s", grepLines(metrics.body, "wxgate_callback"))
	}
}

// A database that does not answer in time (here: another writer holds
// SQLite's lock) also gets "success" within the deadline; the push is
// logged deferred once the database is back.
func TestStalledDatabaseIsDeferred(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gatewayOptions{
		accounts: []config.Account{acctPlain},
		settings: config.CallbackConfig{ReplyDeadline: 300 * time.Millisecond},
	})
	lock, err := g.db.BeginTx(context.Background(), nil) // takes the write lock at BEGIN
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`DELETE FROM followers`); err != nil {
		t.Fatal(err)
	}
	resp := g.post(t, sign(t, acctPlain, textXML("gh_plain", "o1", g.clock.unix.Load(), 42, "hello"), g.clock.stamp()))
	if resp.status != http.StatusOK || string(resp.body) != "success" || resp.took > 2*time.Second {
		t.Errorf("answer %d %q after %v", resp.status, resp.body, resp.took)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the push logged deferred", func() bool {
		m, err := g.srv.Messages.Get(context.Background(), "plain", "msg:42")
		return err == nil && m.ReplyStatus == msglog.StatusDeferred
	})
}

// Shutdown waits for background work before returning.
func TestShutdownDrainsBackgroundWork(t *testing.T) {
	t.Parallel()
	var finished atomic.Bool
	slow := func(ctx context.Context, account string, m *wechat.Message) error {
		time.Sleep(500 * time.Millisecond)
		finished.Store(true)
		return nil
	}
	g := startGateway(t, gatewayOptions{
		accounts: []config.Account{acctPlain},
		hooks:    []callback.Hook{{Run: slow}},
		settings: config.CallbackConfig{ReplyDeadline: 50 * time.Millisecond},
	})
	resp := g.post(t, sign(t, acctPlain, textXML("gh_plain", "o1", g.clock.unix.Load(), 1, "hello"), g.clock.stamp()))
	if string(resp.body) != "success" {
		t.Fatalf("answer %q", resp.body)
	}
	if err := g.stop(); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Serve returned before the background work finished")
	}
	var status string
	if err := g.db.QueryRow(`SELECT reply_status FROM inbound_messages`).Scan(&status); err != nil || status != "deferred" {
		t.Errorf("status %q, %v", status, err)
	}
}

func TestHealthReadinessMetricsAndPanics(t *testing.T) {
	t.Parallel()
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acctPlain}, mount: map[string]http.Handler{"/api/v1/boom": boom}})

	if r := g.get(t, "/healthz"); r.status != 200 || string(r.body) != "ok" {
		t.Errorf("healthz %d %q", r.status, r.body)
	}
	if r := g.get(t, "/readyz"); r.status != 200 {
		t.Errorf("readyz %d %q", r.status, r.body)
	}
	if r := g.get(t, "/api/v1/boom"); r.status != 500 || errorCode(t, r.body) != "internal_error" {
		t.Errorf("panic: %d %s", r.status, r.body)
	}
	g.post(t, sign(t, acctPlain, textXML("gh_plain", "o1", g.clock.unix.Load(), 1, "hello"), g.clock.stamp()))
	m := g.get(t, "/metrics")
	for _, want := range []string{
		`wxgate_callback_requests_total{account="plain",outcome="replied"} 1`,
		`wxgate_callback_duration_seconds_count{account="plain"} 1`,
	} {
		if !bytes.Contains(m.body, []byte(want)) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m.body, "wxgate_"))
		}
	}

	g.db.Close()
	if r := g.get(t, "/readyz"); r.status != http.StatusServiceUnavailable || errorCode(t, r.body) != "database_unavailable" {
		t.Errorf("readyz with the database closed: %d %s", r.status, r.body)
	}
}

func grepLines(body []byte, prefix string) string {
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
