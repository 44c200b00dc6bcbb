package wechatsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Test fixtures: one official account, one mini program in the same Open
// Platform group, a fake clock and, when asked for, a receiver standing in
// for the app server.

const (
	testOA       = "wxoa000000000001"
	testOASecret = "oa-secret"
	testMP       = "wxmp000000000001"
	testMPSecret = "mp-secret"
	testToken    = "AAAAA"
	testAESKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testGroup    = "open-platform-1"
	tmplVisitor  = "tmpl_new_visitor"
	tmplLegacy   = "tmpl_legacy"
	tmplSub      = "tmpl_sub_notice"
	tmplMPSub    = "tmpl_mp_sub"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 15, 10, 0, 0, 0, wechat.BeijingTime)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// receivedPush is one callback as the receiver saw it, verified and opened.
type receivedPush struct {
	Query url.Values
	Body  []byte
	Plain []byte
	Msg   *wechat.Message
	Err   string // verification problem, "" when all checks passed
}

// receiver is an app server for tests: it verifies every push with
// internal/wechat (signature, msg_signature, decryption, appid) and answers
// with respond.
type receiver struct {
	srv     *httptest.Server
	token   string
	crypter *wechat.Crypter
	mu      sync.Mutex
	pushes  []receivedPush
	arrived chan receivedPush
	respond func(n int, p receivedPush) (delay time.Duration, status int, body []byte)
	// echoFormat renders the echostr answer of a GET verification.
	echoFormat string
}

func newReceiver(t *testing.T, appID, token, aesKey string) *receiver {
	t.Helper()
	r := &receiver{token: token, arrived: make(chan receivedPush, 100)}
	if aesKey != "" {
		c, err := wechat.NewCrypter(appID, aesKey)
		if err != nil {
			t.Fatal(err)
		}
		r.crypter = c
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet {
		q := req.URL.Query()
		r.mu.Lock()
		format := r.echoFormat
		r.mu.Unlock()
		if format == "" {
			format = "%s"
		}
		if wechat.VerifySignature(r.token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
			_, _ = fmt.Fprintf(w, format, q.Get("echostr"))
		} else {
			http.Error(w, "bad signature", http.StatusForbidden)
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	p := receivedPush{Query: req.URL.Query(), Body: body}
	p.Plain, p.Msg, p.Err = r.open(req, body)
	r.mu.Lock()
	n := len(r.pushes)
	r.pushes = append(r.pushes, p)
	respond := r.respond
	r.mu.Unlock()
	r.arrived <- p
	if respond == nil {
		_, _ = io.WriteString(w, "success")
		return
	}
	delay, status, answer := respond(n, p)
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

func (r *receiver) open(req *http.Request, body []byte) ([]byte, *wechat.Message, string) {
	q := req.URL.Query()
	parse := wechat.ParseMessage
	switch ct := req.Header.Get("Content-Type"); ct {
	case "text/xml":
	case "application/json": // a mini program with the JSON data format
		parse = wechat.ParseJSONMessage
	default:
		return nil, nil, "content type " + ct
	}
	if !wechat.VerifySignature(r.token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
		return nil, nil, "bad signature"
	}
	env, err := parse(body)
	if err != nil {
		return nil, nil, "parse: " + err.Error()
	}
	plain := body
	if q.Get("encrypt_type") == "aes" {
		if r.crypter == nil {
			return nil, nil, "encrypted push without a key"
		}
		if !wechat.VerifyMsgSignature(r.token, q.Get("timestamp"), q.Get("nonce"), env.Encrypt, q.Get("msg_signature")) {
			return nil, nil, "bad msg_signature"
		}
		plain, _, err = r.crypter.Decrypt(env.Encrypt)
		if err != nil {
			return nil, nil, "decrypt: " + err.Error()
		}
	}
	msg, err := parse(plain)
	if err != nil {
		return nil, nil, "parse plain: " + err.Error()
	}
	if q.Get("openid") != msg.FromUserName {
		return nil, nil, "openid query " + q.Get("openid") + " != FromUserName " + msg.FromUserName
	}
	return plain, msg, ""
}

func (r *receiver) setRespond(f func(n int, p receivedPush) (time.Duration, int, []byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

// replyText answers every push with a text reply, sealed when sealed.
func (r *receiver) replyText(t *testing.T, content string, sealed bool) {
	r.setRespond(func(n int, p receivedPush) (time.Duration, int, []byte) {
		if p.Msg == nil {
			return 0, 200, []byte("success")
		}
		plain, err := wechat.BuildReply(p.Msg.FromUserName, p.Msg.ToUserName, time.Now().Unix(), wechat.TextReply{Content: content})
		if err != nil {
			t.Error(err)
		}
		if !sealed {
			return 0, 200, plain
		}
		out, err := r.crypter.SealReply(r.token, plain, time.Now().Unix(), p.Query.Get("nonce"), 0)
		if err != nil {
			t.Error(err)
		}
		return 0, 200, out
	})
}

// wait returns the next push, failing after a few seconds.
func (r *receiver) wait(t *testing.T) receivedPush {
	t.Helper()
	select {
	case p := <-r.arrived:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no push arrived")
		return receivedPush{}
	}
}

// waitEvent skips pushes until one with this event arrives.
func (r *receiver) waitEvent(t *testing.T, event string) receivedPush {
	t.Helper()
	for {
		p := r.wait(t)
		if p.Msg != nil && p.Msg.Event == event {
			return p
		}
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pushes)
}

type setupOptions struct {
	mode      string // "" = no callback server
	attempts  int
	timeout   time.Duration
	configure func(*Config)
}

type bundle struct {
	sim   *Simulator
	srv   *httptest.Server
	clock *fakeClock
	recv  *receiver // the OA's server, nil without mode
}

func setup(t *testing.T, opts ...func(*setupOptions)) *bundle {
	t.Helper()
	o := setupOptions{timeout: time.Second, attempts: 3}
	for _, f := range opts {
		f(&o)
	}
	b := &bundle{clock: newFakeClock()}
	oa := AppConfig{AppID: testOA, AppSecret: testOASecret, Name: "Test OA", OriginalID: "gh_0123456789ab", OpenPlatform: testGroup,
		Templates: []TemplateConfig{
			{ID: tmplVisitor, Title: "新访客提醒", Content: "客户：{{thing1.DATA}}\n到访时间：{{time2.DATA}}"},
			{ID: tmplLegacy, Title: "旧模板", Content: "{{first.DATA}}\n金额：{{keyword1.DATA}}\n{{remark.DATA}}"},
			{ID: tmplSub, Title: "订阅通知", Content: "事项：{{thing1.DATA}}", Kind: TemplateKindSubscribe},
		}}
	if o.mode != "" {
		key := ""
		if o.mode != ModePlaintext {
			key = testAESKey
		}
		b.recv = newReceiver(t, testOA, testToken, key)
		oa.CallbackURL, oa.Token, oa.EncodingAESKey, oa.Mode = b.recv.srv.URL+"/wx/test", testToken, key, o.mode
	}
	mp := AppConfig{AppID: testMP, AppSecret: testMPSecret, Kind: KindMiniProgram, OriginalID: "gh_mp0000000001", OpenPlatform: testGroup,
		Templates: []TemplateConfig{{ID: tmplMPSub, Title: "预约提醒", Content: "预约人：{{name1.DATA}}\n时间：{{time2.DATA}}"}}}
	cfg := Config{
		Apps:             []AppConfig{oa, mp},
		Now:              b.clock.Now,
		CallbackTimeout:  o.timeout,
		CallbackAttempts: o.attempts,
		JobFinishDelay:   10 * time.Millisecond,
		FaultSeed:        42,
	}
	if o.configure != nil {
		o.configure(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.sim = sim
	b.srv = httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		b.srv.Close()
		if err := sim.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

func withMode(mode string) func(*setupOptions) { return func(o *setupOptions) { o.mode = mode } }

// apiAnswer is a decoded API response.
type apiAnswer struct {
	status int
	header http.Header
	raw    []byte
	m      map[string]any
}

func (a apiAnswer) errcode() int64 {
	n, ok := a.m["errcode"].(json.Number)
	if !ok {
		return 0
	}
	v, _ := n.Int64()
	return v
}

func (a apiAnswer) str(key string) string { s, _ := a.m[key].(string); return s }

func (a apiAnswer) int(key string) int64 {
	n, _ := a.m[key].(json.Number)
	v, _ := n.Int64()
	return v
}

func (b *bundle) call(t *testing.T, method, path string, query url.Values, body any) apiAnswer {
	t.Helper()
	var rdr io.Reader
	if body != nil {
		switch v := body.(type) {
		case string:
			rdr = strings.NewReader(v)
		default:
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			rdr = bytes.NewReader(data)
		}
	}
	u := b.srv.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, rdr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&a.m)
	return a
}

func (b *bundle) get(t *testing.T, path string, q url.Values) apiAnswer {
	t.Helper()
	return b.call(t, http.MethodGet, path, q, nil)
}

func (b *bundle) post(t *testing.T, path string, q url.Values, body any) apiAnswer {
	t.Helper()
	return b.call(t, http.MethodPost, path, q, body)
}

// token fetches a classic access_token.
func (b *bundle) token(t *testing.T, appID, secret string) string {
	t.Helper()
	a := b.get(t, "/cgi-bin/token", url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}})
	tok := a.str("access_token")
	if tok == "" {
		t.Fatalf("token: %s", a.raw)
	}
	return tok
}

func tq(tok string, kv ...string) url.Values {
	q := url.Values{"access_token": {tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

func (b *bundle) user(t *testing.T, appID string, follow bool) *User {
	t.Helper()
	u, err := b.sim.CreateUser(context.Background(), CreateUserRequest{AppID: appID, Follow: follow})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *bundle) act(t *testing.T, openid string, a Action) *ActionResult {
	t.Helper()
	res, err := b.sim.Act(context.Background(), openid, a)
	if err != nil {
		t.Fatalf("act %s: %v", a.Type, err)
	}
	return res
}

func wantErrcode(t *testing.T, a apiAnswer, want int64) {
	t.Helper()
	if got := a.errcode(); got != want {
		t.Fatalf("errcode = %d, want %d (%s)", got, want, a.raw)
	}
	if want != 0 && !ridPattern.MatchString(a.str("errmsg")) {
		t.Fatalf("errmsg %q lacks a rid", a.str("errmsg"))
	}
}

func inbox(t *testing.T, b *bundle, openid string) []InboxItem {
	t.Helper()
	items, err := b.sim.Inbox("", openid)
	if err != nil {
		t.Fatal(err)
	}
	return items
}
