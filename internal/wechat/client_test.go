package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the failover cool-down.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// recorded is one request a fake server saw.
type recorded struct {
	Method, Path, Query string
	Body                []byte
}

// fakeServer answers every request with the handler's JSON and records it.
type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeServer {
	t.Helper()
	fs := &fakeServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fs.mu.Lock()
		fs.reqs = append(fs.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, body})
		fs.mu.Unlock()
		h(w, r, body)
	}))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) requests() []recorded {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]recorded(nil), fs.reqs...)
}

func answer(s string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, s)
	}
}

// staticTokens is a TokenSource for client tests: it hands out tokens in
// order and advances on Invalidate of the current one.
type staticTokens struct {
	mu          sync.Mutex
	tokens      []string
	i           int
	invalidated []string
}

func (s *staticTokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[s.i], nil
}

func (s *staticTokens) Invalidate(_ context.Context, failed string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, failed)
	if failed == s.tokens[s.i] && s.i+1 < len(s.tokens) {
		s.i++
	}
	return nil
}

type clientBundle struct {
	client *Client
	tokens *staticTokens
	clock  *fakeClock
	logs   *bytes.Buffer
}

func setupClient(t *testing.T, bases ...string) *clientBundle {
	t.Helper()
	clock := newFakeClock()
	logs := &syncBuffer{}
	tokens := &staticTokens{tokens: []string{"TOKEN-ONE-secret", "TOKEN-TWO-secret"}}
	c := NewClient(ClientOptions{
		BaseURLs:         bases,
		HTTPClient:       &http.Client{Timeout: 5 * time.Second},
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:              clock.Now,
		FailoverCooldown: time.Minute,
	}).WithTokenSource(tokens)
	return &clientBundle{client: c, tokens: tokens, clock: clock, logs: &logs.buf}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestEncodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"chinese raw", map[string]string{"v": "巧克力 39.8元"}, `{"v":"巧克力 39.8元"}`},
		{"html not escaped", map[string]string{"v": `<a href="x?a=1&b=2">`}, `{"v":"<a href=\"x?a=1&b=2\">"}`},
		{"line separators raw", map[string]string{"v": "a\u2028b\u2029c"}, "{\"v\":\"a\u2028b\u2029c\"}"},
		{"invalid utf8 becomes raw replacement", map[string]string{"v": "a\xffb"}, "{\"v\":\"a\ufffdb\"}"},
		{"literal backslash-u text kept", map[string]string{"v": `\u2028`}, `{"v":"\\u2028"}`},
		{"control chars stay escaped", map[string]string{"v": "a\x01\n"}, `{"v":"a\u0001\n"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := encodeJSON(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("encodeJSON = %s, want %s", got, tt.want)
			}
			var back map[string]string
			if err := json.Unmarshal(got, &back); err != nil {
				t.Errorf("output is not valid JSON: %v", err)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	t.Parallel()
	type out struct {
		MsgID Int64  `json:"msgid"`
		Name  string `json:"name"`
	}
	tests := []struct {
		name     string
		body     string
		wantCode int // 0 = success
		wantID   int64
		decodeEr bool
	}{
		{"errcode missing", `{"msgid":1,"name":"x"}`, 0, 1, false},
		{"errcode zero", `{"errcode":0,"errmsg":"ok","msgid":3717005636572528642}`, 0, 3717005636572528642, false},
		{"msgid above 2^53 as string", `{"errcode":0,"msgid":"9007199254740993"}`, 0, 9007199254740993, false},
		{"errcode as string", `{"errcode":"40001","errmsg":"invalid credential"}`, 40001, 0, false},
		{"errcode empty string", `{"errcode":"","msgid":7}`, 0, 7, false},
		{"errcode null", `{"errcode":null,"msgid":7}`, 0, 7, false},
		{"errcode float", `{"errcode":45009.0,"errmsg":"quota"}`, 45009, 0, false},
		{"negative", `{"errcode":-1,"errmsg":"system error"}`, -1, 0, false},
		{"leading space", " \n{\"errcode\":43004,\"errmsg\":\"require subscribe\"}", 43004, 0, false},
		{"html page", `<html>502</html>`, 0, 0, true},
		{"empty", ``, 0, 0, true},
		{"errcode garbage", `{"errcode":"abc"}`, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o out
			err := decodeResponse("/p", []byte(tt.body), &o)
			var apiErr *APIError
			var decErr *DecodeError
			switch {
			case tt.decodeEr:
				if !errors.As(err, &decErr) {
					t.Fatalf("err = %v, want *DecodeError", err)
				}
			case tt.wantCode != 0:
				if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode {
					t.Fatalf("err = %v, want APIError %d", err, tt.wantCode)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if int64(o.MsgID) != tt.wantID {
					t.Errorf("msgid = %d, want %d", o.MsgID, tt.wantID)
				}
			}
		})
	}
}

func TestErrorClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want ErrorClass
	}{
		{&APIError{Code: -1}, ClassRetryable},
		{&APIError{Code: 45011}, ClassRetryable},
		{&APIError{Code: 40001}, ClassTokenInvalid},
		{&APIError{Code: 40014}, ClassTokenInvalid},
		{&APIError{Code: 42001}, ClassTokenInvalid},
		{&APIError{Code: 45009}, ClassQuota},
		{&APIError{Code: 45047}, ClassQuota},
		{&APIError{Code: 40003}, ClassPermanent},
		{&APIError{Code: 40037}, ClassPermanent},
		{&APIError{Code: 43004}, ClassPermanent},
		{&APIError{Code: 43101}, ClassPermanent},
		{&APIError{Code: 47003}, ClassPermanent},
		{&APIError{Code: 40164}, ClassPermanent},
		{&HTTPError{StatusCode: 502}, ClassRetryable},
		{&HTTPError{StatusCode: 429}, ClassRetryable},
		{&HTTPError{StatusCode: 404}, ClassPermanent},
		{&TransportError{Err: errors.New("connection refused")}, ClassRetryable},
		{&DecodeError{Err: errors.New("x")}, ClassPermanent},
		{context.DeadlineExceeded, ClassRetryable},
		{context.Canceled, ClassPermanent},
		{errors.Join(errors.New("wrapped"), &APIError{Code: 40001}), ClassTokenInvalid},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("ClassOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestAPIErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		errmsg   string
		code     int
		wantMsg  string
		wantRID  string
		contains []string
	}{
		{"invalid code, rid: 652d44d0-1d0af18b-5b069232", 40029, "invalid code", "652d44d0-1d0af18b-5b069232", nil},
		{"invalid credential hint: [2TCvgA0175ge21]", 40001, "invalid credential", "2TCvgA0175ge21", nil},
		{"system error, hints: [ req_id: QkacMBore-rt6w3 ]", -1, "system error", "QkacMBore-rt6w3", nil},
		{"require subscribe", 43004, "require subscribe", "", nil},
		{"invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 66454a60-2bd0c1e9-3c1a6f3b", 40164,
			"invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist", "66454a60-2bd0c1e9-3c1a6f3b",
			[]string{"add 203.0.113.7 to", "开发 → 基本配置 → IP白名单", "请将 203.0.113.7 加入"}},
		{"invalid ip 2001:db8::1, not in whitelist", 40164, "invalid ip 2001:db8::1, not in whitelist", "",
			[]string{"add 2001:db8::1 to"}},
	}
	for _, tt := range tests {
		e := newAPIError("/cgi-bin/token", tt.code, tt.errmsg)
		if e.Msg != tt.wantMsg || e.RID != tt.wantRID {
			t.Errorf("%q: Msg=%q RID=%q, want %q %q", tt.errmsg, e.Msg, e.RID, tt.wantMsg, tt.wantRID)
		}
		for _, s := range tt.contains {
			if !strings.Contains(e.Error(), s) {
				t.Errorf("%q: Error() = %q, missing %q", tt.errmsg, e.Error(), s)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	got := RedactURL("https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=S3CR3T")
	if strings.Contains(got, "S3CR3T") || !strings.Contains(got, "appid=wx1") {
		t.Errorf("RedactURL = %s", got)
	}
	txt := redactText(`Get "http://h/cgi-bin/user/info?access_token=ABC&openid=o1": dial tcp: refused`)
	if strings.Contains(txt, "ABC") || !strings.Contains(txt, "openid=o1") {
		t.Errorf("redactText = %s", txt)
	}
}

func TestFailover(t *testing.T) {
	t.Parallel()
	var primaryDown atomic.Bool
	primaryDown.Store(true)
	primary := newFakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if primaryDown.Load() {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		io.WriteString(w, `{"errcode":0,"errmsg":"ok","msgid":1}`)
	})
	backup := newFakeServer(t, answer(`{"errcode":0,"errmsg":"ok","msgid":2}`))
	b := setupClient(t, primary.URL, backup.URL)
	ctx := t.Context()
	msg := &TemplateMessage{ToUser: "o1", TemplateID: "T", Data: Values(map[string]string{"thing1": "张三"})}

	id, err := b.client.SendTemplate(ctx, msg)
	if err != nil || id != 2 {
		t.Fatalf("first send = %d, %v; want 2 from the backup", id, err)
	}
	p, s := primary.requests(), backup.requests()
	if len(p) != 1 || len(s) != 1 || !bytes.Equal(p[0].Body, s[0].Body) || len(s[0].Body) == 0 {
		t.Fatalf("body not resent identically: primary %q backup %q", p, s)
	}
	// During the cool-down the primary is skipped.
	if id, _ = b.client.SendTemplate(ctx, msg); id != 2 || len(primary.requests()) != 1 {
		t.Fatalf("during cool-down: id %d, primary calls %d", id, len(primary.requests()))
	}
	// After it, the primary is tried first again.
	primaryDown.Store(false)
	b.clock.Advance(61 * time.Second)
	if id, _ = b.client.SendTemplate(ctx, msg); id != 1 {
		t.Fatalf("after cool-down: id %d, want 1 from the primary", id)
	}
	if !strings.Contains(b.logs.String(), "trying the next one") {
		t.Errorf("no failover warning logged")
	}
}

func TestFailoverOnTransportError(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	backup := newFakeServer(t, answer(`{"ip_list":["1.2.3.4"]}`))
	b := setupClient(t, deadURL, backup.URL)
	ips, err := b.client.CallbackIPs(t.Context())
	if err != nil || len(ips) != 1 {
		t.Fatalf("CallbackIPs = %v, %v", ips, err)
	}
	if strings.Contains(b.logs.String(), "TOKEN-ONE") {
		t.Errorf("access_token leaked into logs:\n%s", b.logs)
	}
}

func TestAllDomainsDown(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	b := setupClient(t, deadURL, deadURL+"/")
	_, err := b.client.CallbackIPs(t.Context())
	var te *TransportError
	if !errors.As(err, &te) || ClassOf(err) != ClassRetryable {
		t.Fatalf("err = %v, want a retryable *TransportError", err)
	}
	if strings.Contains(err.Error(), "TOKEN-ONE") {
		t.Errorf("access_token in error text: %v", err)
	}
}

func TestNoFailoverOnErrcode(t *testing.T) {
	t.Parallel()
	primary := newFakeServer(t, answer(`{"errcode":-1,"errmsg":"system error rid: 1-2-3"}`))
	backup := newFakeServer(t, answer(`{"errcode":0}`))
	b := setupClient(t, primary.URL, backup.URL)
	err := b.client.DeleteMenu(t.Context())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != -1 || apiErr.Class() != ClassRetryable {
		t.Fatalf("err = %v, want errcode -1", err)
	}
	if n := len(backup.requests()); n != 0 {
		t.Errorf("backup called %d times on an errcode", n)
	}
}

func TestTokenInvalidRetriesOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		answers     []string
		wantErrCode int
		wantCalls   int
	}{
		{"40001 then ok", []string{`{"errcode":40001,"errmsg":"invalid credential"}`, `{"errcode":0,"msgid":9}`}, 0, 2},
		{"42001 then ok", []string{`{"errcode":42001,"errmsg":"access_token expired"}`, `{"errcode":0,"msgid":9}`}, 0, 2},
		{"40014 twice", []string{`{"errcode":40014}`, `{"errcode":40014}`, `{"errcode":0}`}, 40014, 2},
		{"permanent not retried", []string{`{"errcode":43004,"errmsg":"require subscribe"}`, `{"errcode":0}`}, 43004, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				io.WriteString(w, tt.answers[n.Add(1)-1])
			})
			b := setupClient(t, srv.URL)
			_, err := b.client.SendTemplate(t.Context(), &TemplateMessage{ToUser: "o", TemplateID: "t"})
			if tt.wantErrCode == 0 && err != nil {
				t.Fatal(err)
			}
			var apiErr *APIError
			if tt.wantErrCode != 0 && (!errors.As(err, &apiErr) || apiErr.Code != tt.wantErrCode) {
				t.Fatalf("err = %v, want %d", err, tt.wantErrCode)
			}
			reqs := srv.requests()
			if len(reqs) != tt.wantCalls {
				t.Fatalf("%d calls, want %d", len(reqs), tt.wantCalls)
			}
			if tt.wantCalls == 2 {
				if !strings.Contains(reqs[0].Query, "TOKEN-ONE") || !strings.Contains(reqs[1].Query, "TOKEN-TWO") {
					t.Errorf("retry did not use the new token: %q / %q", reqs[0].Query, reqs[1].Query)
				}
				if !bytes.Equal(reqs[0].Body, reqs[1].Body) {
					t.Errorf("retry body differs")
				}
				if len(b.tokens.invalidated) != 1 || b.tokens.invalidated[0] != "TOKEN-ONE-secret" {
					t.Errorf("invalidated %v", b.tokens.invalidated)
				}
			}
		})
	}
}

func TestNoTokenSource(t *testing.T) {
	t.Parallel()
	c := NewClient(ClientOptions{BaseURLs: []string{"http://127.0.0.1:1"}})
	if _, err := c.ListTemplates(t.Context()); !errors.Is(err, ErrNoTokenSource) {
		t.Fatalf("err = %v", err)
	}
}

func TestLogsHaveNoSecrets(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, answer(`{"access_token":"NEW-TOKEN-VALUE","expires_in":7200}`))
	b := setupClient(t, srv.URL)
	if _, err := b.client.GetToken(t.Context(), "wxapp", "APP-SECRET-VALUE"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Code2Session(t.Context(), "wxapp", "APP-SECRET-VALUE", "JSCODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.UserInfo(t.Context(), "o1", ""); err != nil {
		t.Fatal(err)
	}
	logs := b.logs.String()
	for _, secret := range []string{"APP-SECRET-VALUE", "TOKEN-ONE-secret", "JSCODE", "NEW-TOKEN-VALUE"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "/cgi-bin/user/info") {
		t.Errorf("expected a log line per call:\n%s", logs)
	}
}

// A call that WeChat does not de-duplicate is not resent to the backup
// domain once its request may have arrived (the answer was lost): the
// caller learns the outcome is unknown. A template message with
// client_msg_id fails over as before, and so does any call whose request
// never left (a refused connection).
func TestNoFailoverOnceTheRequestWent(t *testing.T) {
	t.Parallel()
	dropped := newFakeServer(t, func(http.ResponseWriter, *http.Request, []byte) { panic(http.ErrAbortHandler) })
	backup := newFakeServer(t, answer(`{"errcode":0,"errmsg":"ok","msgid":7}`))
	b := setupClient(t, dropped.URL, backup.URL)
	ctx := t.Context()
	sub := &SubscribeMessage{ToUser: "o1", TemplateID: "S", Data: Values(map[string]string{"thing1": "发货"})}

	_, err := b.client.SendSubscribe(ctx, sub)
	if err == nil || !OutcomeUnknown(err) {
		t.Fatalf("bizsend with a lost answer: %v, want an unknown outcome", err)
	}
	if n := len(backup.requests()); n != 0 {
		t.Errorf("the subscription message went to the backup domain too (%d calls)", n)
	}

	b = setupClient(t, dropped.URL, backup.URL)
	id, err := b.client.SendTemplate(ctx, &TemplateMessage{ToUser: "o1", TemplateID: "T", ClientMsgID: "m1-1",
		Data: Values(map[string]string{"thing1": "张三"})})
	if err != nil || id != 7 || len(backup.requests()) != 1 {
		t.Errorf("template with client_msg_id: id %d, %v, backup calls %d; want a failover", id, err, len(backup.requests()))
	}

	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()
	b = setupClient(t, refused.URL, backup.URL)
	if id, err := b.client.SendSubscribe(ctx, sub); err != nil || id != 7 {
		t.Errorf("bizsend when the primary refuses connections: %d, %v; want the backup's answer", id, err)
	}
}
