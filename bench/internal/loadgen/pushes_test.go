package loadgen

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// A push as built is what the callback's parser reads, byte for byte what
// the encoding/xml rendering was, and signed as WeChat signs.
func TestBuiltPushIsWhatTheCallbackParses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		originalID string // a plain one is written directly, another through encoding/xml
		distinct   bool
	}{
		{"rotating_senders", testAccount.OriginalID, false},
		{"distinct_senders", testAccount.OriginalID, true},
		{"original_id_with_markup", "gh_a]]>&<b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acct := testAccount
			acct.OriginalID = tc.originalID
			b, err := NewBuilder("http://127.0.0.1:1/wx/main", acct)
			if err != nil {
				t.Fatal(err)
			}
			b.DistinctSenders = tc.distinct
			c, err := wechat.NewCrypter(acct.AppID, acct.AESKey)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1700000000, 0)
			for range 3 {
				p, err := b.One(now)
				if err != nil {
					t.Fatal(err)
				}
				checkPush(t, c, acct, p, now, tc.distinct)
			}
		})
	}
}

func checkPush(t *testing.T, c *wechat.Crypter, acct Account, p Push, now time.Time, distinct bool) {
	t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/wx/main" || q.Get("timestamp") != strconv.FormatInt(now.Unix(), 10) || q.Get("encrypt_type") != "aes" || q.Get("openid") != p.OpenID {
		t.Fatalf("URL %s", p.URL)
	}
	if nonce, err := strconv.ParseUint(q.Get("nonce"), 10, 64); err != nil || nonce >= 1e10 || strconv.FormatUint(nonce, 10) != q.Get("nonce") {
		t.Fatalf("nonce %q", q.Get("nonce"))
	}
	if !wechat.VerifySignature(acct.Token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
		t.Fatalf("signature of %s", p.URL)
	}
	outer, err := wechat.ParseMessage(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	if outer.ToUserName != acct.OriginalID || string(p.Body) != string(wechat.SafeModeBody(acct.OriginalID, outer.Encrypt)) {
		t.Fatalf("body %s", p.Body)
	}
	if !wechat.VerifyMsgSignature(acct.Token, q.Get("timestamp"), q.Get("nonce"), outer.Encrypt, q.Get("msg_signature")) {
		t.Fatalf("msg_signature of %s", p.URL)
	}
	plain, _, err := c.Decrypt(outer.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	want := wechat.Message{
		ToUserName:   acct.OriginalID,
		FromUserName: p.OpenID,
		CreateTime:   now.Unix(),
		MsgType:      wechat.MsgTypeText,
		Content:      "你好，第 " + strconv.FormatInt(p.MsgID, 10) + " 条",
		MsgID:        p.MsgID,
	}
	if string(plain) != string(wechat.EncodeMessage(&want)) {
		t.Fatalf("message\n%s\nwant\n%s", plain, wechat.EncodeMessage(&want))
	}
	m, err := wechat.ParseMessage(plain)
	if err != nil {
		t.Fatal(err)
	}
	want.XMLName = m.XMLName
	if fmt.Sprintf("%+v", *m) != fmt.Sprintf("%+v", want) {
		t.Fatalf("parsed %+v\nwant %+v", *m, want)
	}
	wantSender := FollowerOpenID("oBench", uint64(p.MsgID%Senders))
	if distinct {
		wantSender = FollowerOpenID("oBench", uint64(p.MsgID))
	}
	if p.OpenID != wantSender {
		t.Fatalf("sender %q, want %q", p.OpenID, wantSender)
	}
}

// The buffers a sustained worker reuses give the same pushes as fresh ones.
func TestReusedPushBuffers(t *testing.T) {
	b, err := NewBuilder("http://127.0.0.1:1/wx/main", testAccount)
	if err != nil {
		t.Fatal(err)
	}
	b.DistinctSenders = true
	c, _ := wechat.NewCrypter(testAccount.AppID, testAccount.AESKey)
	var p pushBuffers
	now := time.Now()
	seen := map[string]bool{}
	for range 50 {
		if err := b.build(&p, now); err != nil {
			t.Fatal(err)
		}
		if seen[p.openID] {
			t.Fatalf("sender %s twice", p.openID)
		}
		seen[p.openID] = true
		checkPush(t, c, testAccount, Push{URL: b.base + "?" + string(p.query), Body: p.body, OpenID: p.openID, MsgID: p.msgID}, now, true)
	}
}

// Every follower has an openid of its own, shaped like a real one, and
// consecutive followers are not in index order.
func TestFollowerOpenID(t *testing.T) {
	seen := map[string]uint64{}
	ordered := 0
	prev := ""
	base := uint64(time.Now().UnixNano())
	for _, start := range []uint64{0, base, 1<<64 - 100_000} {
		for k := range uint64(100_000) {
			i := start + k // wraps around at the top
			o := FollowerOpenID("oBench", i)
			if len(o) != 28 || !strings.HasPrefix(o, "oBench") || strings.Trim(o, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Fatalf("follower %d: openid %q is not 28 characters of [A-Za-z0-9_-] after oBench", i, o)
			}
			if j, dup := seen[o]; dup {
				t.Fatalf("followers %d and %d share openid %s", j, i, o)
			}
			seen[o] = i
			if o > prev {
				ordered++
			}
			prev = o
		}
	}
	// Numbered openids would all be in order; random ones about half.
	if ordered > 180_000 || ordered < 120_000 {
		t.Fatalf("%d of 300000 consecutive openids in increasing order; want about half", ordered)
	}
}

func BenchmarkBuild(b *testing.B) {
	builder, err := NewBuilder("http://127.0.0.1:1/wx/main", testAccount)
	if err != nil {
		b.Fatal(err)
	}
	builder.DistinctSenders = true
	var p pushBuffers
	now := time.Now()
	for b.Loop() {
		if err := builder.build(&p, now); err != nil {
			b.Fatal(err)
		}
	}
}
