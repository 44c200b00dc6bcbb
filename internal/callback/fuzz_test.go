package callback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechat"
)

// memoryLog is a MessageLog that remembers what it was asked to record.
type memoryLog struct {
	mu      sync.Mutex
	entries []msglog.Entry
}

func (l *memoryLog) Begin(_ context.Context, e msglog.Entry) *msglog.Pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, prev := range l.entries {
		if prev.Account == e.Account && prev.DedupKey == e.DedupKey {
			return msglog.Completed(msglog.Result{ID: 1, Duplicate: true, Status: prev.Status, ReplyBody: prev.ReplyBody}, nil)
		}
	}
	l.entries = append(l.entries, e)
	return msglog.Completed(msglog.Result{ID: int64(len(l.entries)), Status: e.Status, ReplyBody: e.ReplyBody}, nil)
}

func (l *memoryLog) SetOutcome(_ context.Context, account, dedupKey string, status msglog.Status, body []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, prev := range l.entries {
		if prev.Account == account && prev.DedupKey == dedupKey {
			l.entries[i].Status, l.entries[i].ReplyBody = status, body
			return nil
		}
	}
	return msglog.ErrNotFound
}

func (l *memoryLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// FuzzCallbackPOST: arbitrary query strings and bodies never panic, and
// nothing is recorded unless the signatures the account's mode requires
// verify.
func FuzzCallbackPOST(f *testing.F) {
	vs := loadVectors(f)
	v1, v4, v5 := vs["V1"], vs["V4"], vs["V5"]
	accounts := []config.Account{
		vectorAccount("compat", v1, config.ModeCompatible),
		vectorAccount("safe", v5, config.ModeSafe),
		{Name: "plain", AppID: "wx0123456789abcdef", Token: "AAAAA", MessageMode: config.ModePlaintext},
		vectorAccount("mpjson", v4, config.ModeSafe), // a mini program's JSON pushes
	}

	v1Query := url.Values{"signature": {v1.Signature}, "timestamp": {v1.Timestamp}, "nonce": {v1.Nonce},
		"encrypt_type": {"aes"}, "msg_signature": {v1.MsgSignature}}.Encode()
	v5Query := url.Values{"signature": {v5.Signature}, "timestamp": {v5.Timestamp}, "nonce": {v5.Nonce},
		"encrypt_type": {"aes"}, "msg_signature": {v5.MsgSignature}}.Encode()
	v4Query := url.Values{"signature": {v4.Signature}, "timestamp": {v4.Timestamp}, "nonce": {v4.Nonce},
		"encrypt_type": {"aes"}, "msg_signature": {v4.MsgSignature}}.Encode()
	plain := sign(f, accounts[2], []byte(v1.Msg), v1.Timestamp)
	f.Add(uint8(3), v4Query, []byte(v4.Body))
	f.Add(uint8(2), plain.query.Encode(), []byte(`{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"x","MsgId":1}`))
	f.Add(uint8(0), v1Query, []byte(v1.Body))
	f.Add(uint8(1), v5Query, []byte(v5.Body))
	f.Add(uint8(2), plain.query.Encode(), plain.body)
	f.Add(uint8(2), plain.query.Encode(), []byte("<xml><Encrypt>x</Encrypt></xml>"))
	f.Add(uint8(1), v5Query, []byte("<xml><Encrypt><![CDATA[%%%]]></Encrypt></xml>"))
	f.Add(uint8(0), "signature=&timestamp=&nonce=", []byte{})

	f.Fuzz(func(t *testing.T, which uint8, rawQuery string, body []byte) {
		log := &memoryLog{}
		h, err := callback.New(callback.Options{
			Accounts: accounts,
			// Wide enough for every vector's timestamp, so the fuzzer
			// reaches the checks past the window.
			Settings: config.CallbackConfig{TimestampWindow: 20 * 365 * 24 * time.Hour, MaxBodyBytes: 64 << 10, ReplyDeadline: time.Second},
			Log:      log,
			Now:      func() time.Time { return time.Unix(1715943329, 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		a := accounts[int(which)%len(accounts)]
		req := httptest.NewRequest(http.MethodPost, "/wx/"+a.Name, strings.NewReader(string(body)))
		req.URL.RawQuery = rawQuery // as received: anything goes, even what a client could not build
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if err := h.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if log.count() == 0 {
			if rec.Code == http.StatusOK {
				t.Fatalf("200 without recording: %q", rec.Body.String())
			}
			return
		}
		q, _ := url.ParseQuery(req.URL.RawQuery)
		if !wechat.VerifySignature(a.Token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
			t.Fatalf("recorded a push whose signature does not verify: %q", rawQuery)
		}
		if a.MessageMode != config.ModePlaintext {
			verified := false
			for _, enc := range encryptCandidates(body) {
				verified = verified || wechat.VerifyMsgSignature(a.Token, q.Get("timestamp"), q.Get("nonce"), enc, q.Get("msg_signature"))
			}
			if !verified {
				t.Fatalf("recorded an encrypted push whose msg_signature does not verify: %q", rawQuery)
			}
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("recorded but answered %d", rec.Code)
		}
	})
}

// encryptRE finds the Encrypt values of a body however it is shaped: the
// handler reads a safe-mode envelope without a full XML decode, so a body
// the XML decoder refuses (a mistyped closing tag elsewhere) can still
// carry a signed Encrypt.
var encryptRE = regexp.MustCompile(`<Encrypt><!\[CDATA\[([^\]]*)\]\]></Encrypt>`)

// encryptCandidates lists the Encrypt values a push body may carry: from
// the XML or JSON decoder, and from the raw text.
func encryptCandidates(body []byte) []string {
	var out []string
	if m, err := wechat.ParseMessage(body); err == nil {
		out = append(out, m.Encrypt)
	}
	if m, err := wechat.ParseJSONMessage(body); err == nil {
		out = append(out, m.Encrypt)
	}
	for _, m := range encryptRE.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}
