package callback_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wxgate/wxgate/internal/callback"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechat"
)

// WeChat's own Mini Program example in the JSON data format (V4): a
// safe-mode JSON envelope, replayed byte for byte, is accepted, logged as
// it was written, and answered "success".
func TestVectorV4MiniProgramJSON(t *testing.T) {
	t.Parallel()
	v := loadVectors(t)["V4"]
	acct := vectorAccount("v4", v, config.ModeSafe)
	acct.Kind = config.KindMiniProgram
	acct.OriginalID = "gh_97417a04a28d"
	g := startGateway(t, gatewayOptions{accounts: []config.Account{acct}, start: v.unix(t) + 30})

	q := url.Values{"signature": {v.Signature}, "timestamp": {v.Timestamp}, "nonce": {v.Nonce},
		"openid": {"o9AgO5Kd5ggOC-bXrbNODIiE3bGY"}, "encrypt_type": {"aes"}, "msg_signature": {v.MsgSignature}}
	resp := g.post(t, push{account: "v4", query: q, body: []byte(v.Body)})
	if resp.status != http.StatusOK || string(resp.body) != "success" {
		t.Fatalf("V4: %d %q", resp.status, resp.body)
	}
	list, err := g.srv.Messages.ListByOpenID(context.Background(), "v4", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("logged %d, %v", len(list), err)
	}
	if m := list[0]; m.Event != "debug_demo" || m.MsgType != "event" || m.RawXML != v.Msg || m.ReplyStatus != msglog.StatusEmpty {
		t.Errorf("logged = %+v", m)
	}

	// The same push again is WeChat's retry: answered alike, logged once.
	if again := g.post(t, push{account: "v4", query: q, body: []byte(v.Body)}); again.status != http.StatusOK || string(again.body) != "success" {
		t.Errorf("retry: %d %q", again.status, again.body)
	}
	if n := g.count(t, "inbound_messages"); n != 1 {
		t.Errorf("%d rows after a retry, want 1", n)
	}
}

// signJSON builds a correctly signed Mini Program push in the JSON data
// format for the account's mode.
func signJSON(t *testing.T, a config.Account, plain, timestamp string) push {
	t.Helper()
	nonce := randomDigits(10)
	q := url.Values{"signature": {wechat.Signature(a.Token, timestamp, nonce)}, "timestamp": {timestamp}, "nonce": {nonce}}
	p := push{account: a.Name, query: q, body: []byte(plain)}
	if a.MessageMode == config.ModePlaintext {
		return p
	}
	c, err := wechat.NewCrypter(a.AppID, a.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt([]byte(plain), 0)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wechat.Signature(a.Token, timestamp, nonce, enc))
	var fields map[string]any
	if a.MessageMode == config.ModeCompatible {
		if err := json.Unmarshal([]byte(plain), &fields); err != nil {
			t.Fatal(err)
		}
	} else {
		fields = map[string]any{"ToUserName": "gh_mp0000000001"}
	}
	fields["Encrypt"] = enc
	p.body, err = json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Mini Program pushes in JSON, in every mode: the delivery receipt of a
// subscription message reaches the hooks with its 64-bit MsgID intact
// (WeChat writes a single List item as an object, and CreateTime may be a
// string); a user's text gets no passive reply even when a rule matches,
// since a Mini Program shows none; a tampered compatible-mode body and a
// safe-mode body at a plaintext account are refused with their codes.
func TestMiniProgramJSONPushes(t *testing.T) {
	t.Parallel()
	rules := []config.ReplyRule{{Match: "keyword", Mode: "exact", Pattern: "hello", Reply: config.ReplyContent{Type: "text", Content: "hi"}}}
	plainMP := config.Account{Name: "mpplain", Kind: config.KindMiniProgram, AppID: "wx00000000mpplain", Token: "mptoken", MessageMode: config.ModePlaintext, Replies: rules}
	safeMP := config.Account{Name: "mpsafe", Kind: config.KindMiniProgram, AppID: "wx000000000mpsafe", Token: "mptoken2", EncodingAESKey: keySafe, MessageMode: config.ModeSafe}
	compatMP := config.Account{Name: "mpcompat", Kind: config.KindMiniProgram, AppID: "wx0000000mpcompat", Token: "mptoken3", EncodingAESKey: keySafe, MessageMode: config.ModeCompatible}

	var mu sync.Mutex
	seen := map[string][]*wechat.Message{}
	hook := func(_ context.Context, account string, m *wechat.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[account] = append(seen[account], m)
		return nil
	}
	g := startGateway(t, gatewayOptions{accounts: []config.Account{plainMP, safeMP, compatMP}, hooks: []callback.Hook{{Run: hook}}})
	now := g.clock.stamp()

	const sent = `{"ToUserName":"gh_mp0000000001","FromUserName":"oMP_user_1","CreateTime":"` + "%s" + `","MsgType":"event","Event":"subscribe_msg_sent_event",` +
		`"List":{"TemplateId":"tpl-1","MsgID":"4611689660459593388","ErrorCode":"0","ErrorStatus":"success"}}`
	receipt := strings.Replace(sent, "%s", now, 1)
	for _, a := range []config.Account{plainMP, safeMP, compatMP} {
		resp := g.post(t, signJSON(t, a, receipt, now))
		if resp.status != http.StatusOK || string(resp.body) != "success" {
			t.Errorf("%s: receipt answered %d %q", a.Name, resp.status, resp.body)
		}
	}
	waitFor(t, "the hooks to see three receipts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen["mpplain"])+len(seen["mpsafe"])+len(seen["mpcompat"]) == 3
	})
	mu.Lock()
	for account, list := range seen {
		m := list[0]
		ev := m.SubscribeMsgSentEvent
		if m.Event != wechat.EventSubscribeMsgSent || ev == nil || len(ev.List) != 1 || ev.List[0].MsgID != 4611689660459593388 ||
			ev.List[0].TemplateID != "tpl-1" || ev.List[0].ErrorStatus != "success" || m.CreateTime == 0 {
			t.Errorf("%s: the hook saw %+v (event %+v)", account, m, ev)
		}
	}
	mu.Unlock()

	text := `{"ToUserName":"gh_mp0000000001","FromUserName":"oMP_user_2","CreateTime":` + now + `,"MsgType":"text","Content":"hello","MsgId":8000000000000000001}`
	if resp := g.post(t, signJSON(t, plainMP, text, now)); resp.status != http.StatusOK || string(resp.body) != "success" {
		t.Errorf("a text to a mini program: %d %q, want success and no reply", resp.status, resp.body)
	}
	list, err := g.srv.Messages.ListByOpenID(context.Background(), "mpplain", "oMP_user_2", 10)
	if err != nil || len(list) != 1 || list[0].MsgID != 8000000000000000001 || list[0].RawXML != text {
		t.Errorf("logged text: %+v %v", list, err)
	}

	tampered := signJSON(t, compatMP, text, now)
	tampered.body = []byte(strings.Replace(string(tampered.body), `"Content":"hello"`, `"Content":"hijacked"`, 1))
	if resp := g.post(t, tampered); resp.status != http.StatusBadRequest || errorCode(t, resp.body) != callback.CodeCompatibleMismatch {
		t.Errorf("tampered compatible JSON: %d %s", resp.status, resp.body)
	}
	wrongMode := signJSON(t, safeMP, text, now)
	wrongMode.account = "mpplain"
	q := wrongMode.query
	q.Set("signature", wechat.Signature(plainMP.Token, q.Get("timestamp"), q.Get("nonce")))
	if resp := g.post(t, wrongMode); resp.status != http.StatusBadRequest || errorCode(t, resp.body) != callback.CodeModeMismatch {
		t.Errorf("safe JSON at a plaintext account: %d %s", resp.status, resp.body)
	}
	if resp := g.post(t, signJSON(t, plainMP, `{"ToUserName":`, now)); resp.status != http.StatusBadRequest || errorCode(t, resp.body) != callback.CodeMalformedBody {
		t.Errorf("broken JSON: %d %s", resp.status, resp.body)
	}
}
