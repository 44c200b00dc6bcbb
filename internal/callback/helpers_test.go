package callback_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/server/servertest"
	"github.com/wxgate/wxgate/internal/wechat"
)

// vector is a fixture from testdata/vectors.json: WeChat's published
// examples, as listed in the protocol notes.
type vector struct {
	Token          string `json:"token"`
	EncodingAESKey string `json:"encodingAESKey"`
	AppID          string `json:"appID"`
	Timestamp      string `json:"timestamp"`
	Nonce          string `json:"nonce"`
	Signature      string `json:"signature"`
	MsgSignature   string `json:"msgSignature"`
	Msg            string `json:"msg"`
	Encrypt        string `json:"encrypt"`
	Body           string `json:"body"`
	Echostr        string `json:"echostr"`
}

func loadVectors(t testing.TB) map[string]vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs map[string]vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func (v vector) unix(t testing.TB) int64 {
	n, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The accounts the end-to-end tests talk to.
var (
	keySafe = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

	acctSafe = config.Account{Name: "safe", AppID: "wx0000000000safe01", Token: "safetoken", EncodingAESKey: keySafe,
		MessageMode: config.ModeSafe, OriginalID: "gh_safe00000001"}
	acctPlain = config.Account{Name: "plain", AppID: "wx000000000plain01", Token: "plaintoken", MessageMode: config.ModePlaintext,
		Replies: []config.ReplyRule{
			{Match: "subscribe", Reply: config.ReplyContent{Type: "text", Content: "welcome"}},
			{Match: "keyword", Mode: "exact", Pattern: "hello", Reply: config.ReplyContent{Type: "text", Content: "hello to you"}},
		}}
	acctCompat = config.Account{Name: "compat", AppID: "wx00000000compat01", Token: "compattoken", EncodingAESKey: keySafe,
		MessageMode: config.ModeCompatible}
)

func vectorAccount(name string, v vector, mode config.MessageMode) config.Account {
	return config.Account{Name: name, AppID: v.AppID, Token: v.Token, EncodingAESKey: v.EncodingAESKey, MessageMode: mode}
}

// clock is the gateway's protocol clock, set by the test.
type clock struct{ unix atomic.Int64 }

func newClock(unix int64) *clock {
	c := &clock{}
	c.unix.Store(unix)
	return c
}
func (c *clock) now() time.Time  { return time.Unix(c.unix.Load(), 0) }
func (c *clock) stamp() string   { return strconv.FormatInt(c.unix.Load(), 10) }
func (c *clock) advance(s int64) { c.unix.Add(s) }

// gateway is a real server on port 0 over a temporary SQLite database.
type gateway struct {
	url    string
	db     *db.DB
	clock  *clock
	srv    *servertest.Gateway
	client *http.Client
	reg    *prometheus.Registry
	stop   func() error
}

type gatewayOptions struct {
	accounts  []config.Account
	settings  config.CallbackConfig
	hooks     []callback.Hook
	responder callback.Responder
	start     int64
	mount     map[string]http.Handler
}

func startGateway(t *testing.T, o gatewayOptions) *gateway {
	t.Helper()
	if o.start == 0 {
		o.start = 1715943329
	}
	cfg := config.Default()
	if o.settings.TimestampWindow != 0 {
		cfg.Callback.TimestampWindow = o.settings.TimestampWindow
	}
	if o.settings.MaxBodyBytes != 0 {
		cfg.Callback.MaxBodyBytes = o.settings.MaxBodyBytes
	}
	if o.settings.ReplyDeadline != 0 {
		cfg.Callback.ReplyDeadline = o.settings.ReplyDeadline
	}
	cfg.Accounts = o.accounts

	g := &gateway{db: dbtest.SQLite(t), clock: newClock(o.start), reg: prometheus.NewRegistry()}
	srv, err := servertest.New(servertest.Options{
		Config:    cfg,
		DB:        g.db,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry:  g.reg,
		Now:       g.clock.now,
		Hooks:     o.hooks,
		Responder: o.responder,
		Routes:    o.mount,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, ln)
		done <- errors.Join(err, srv.Close())
	}()
	var once sync.Once
	var stopErr error
	g.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("stopping the gateway: %v", err)
		}
	})
	g.srv = srv
	g.url = "http://" + ln.Addr().String()
	g.client = &http.Client{Timeout: 10 * time.Second}
	return g
}

// push is one callback request as WeChat would send it.
type push struct {
	account string
	query   url.Values
	body    []byte
}

// sign builds a correctly signed push of plain XML for the account, in its
// configured mode, at the gateway clock's time.
func sign(t testing.TB, a config.Account, plain []byte, timestamp string) push {
	t.Helper()
	nonce := randomDigits(10)
	q := url.Values{}
	q.Set("signature", wechat.Signature(a.Token, timestamp, nonce))
	q.Set("timestamp", timestamp)
	q.Set("nonce", nonce)
	msg, err := wechat.ParseMessage(plain)
	if err == nil {
		q.Set("openid", msg.FromUserName)
	}
	p := push{account: a.Name, query: q, body: plain}
	if a.MessageMode == config.ModePlaintext {
		return p
	}
	c, err := wechat.NewCrypter(a.AppID, a.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt(plain, 0)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wechat.Signature(a.Token, timestamp, nonce, enc))
	if a.MessageMode == config.ModeSafe {
		to := ""
		if msg != nil {
			to = msg.ToUserName
		}
		p.body = wechat.SafeModeBody(to, enc)
	} else {
		p.body = wechat.CompatibleModeBody(plain, enc)
	}
	return p
}

func randomDigits(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

type response struct {
	status int
	body   []byte
	took   time.Duration
}

func (g *gateway) post(t testing.TB, p push) response {
	t.Helper()
	u := g.url + "/wx/" + p.account + "?" + p.query.Encode()
	start := time.Now()
	resp, err := g.client.Post(u, "text/xml", strings.NewReader(string(p.body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, body, time.Since(start)}
}

func (g *gateway) get(t testing.TB, path string) response {
	t.Helper()
	resp, err := g.client.Get(g.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: body}
}

func (g *gateway) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := g.db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// errorCode returns the code of a JSON error body.
func errorCode(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if e.Error.Message == "" {
		t.Errorf("error %s has no message", e.Error.Code)
	}
	return e.Error.Code
}

// openReply decrypts an encrypted answer the way WeChat does.
func openReply(t testing.TB, a config.Account, body []byte) *wechat.ParsedReply {
	t.Helper()
	c, err := wechat.NewCrypter(a.AppID, a.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.OpenReply(a.Token, body)
	if err != nil {
		t.Fatalf("reply %q does not open: %v", body, err)
	}
	r, err := wechat.ParseReply(plain)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func textXML(to, from string, createTime, msgID int64, content string) []byte {
	return wechat.EncodeMessage(&wechat.Message{ToUserName: to, FromUserName: from, CreateTime: createTime,
		MsgType: wechat.MsgTypeText, Content: content, MsgID: msgID})
}

func eventXML(to, from string, createTime int64, event, key, ticket string) []byte {
	return wechat.EncodeMessage(&wechat.Message{ToUserName: to, FromUserName: from, CreateTime: createTime,
		MsgType: wechat.MsgTypeEvent, Event: event, EventKey: key, Ticket: ticket})
}
