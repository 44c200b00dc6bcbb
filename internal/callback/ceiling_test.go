package callback_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// BenchmarkCeiling is the least a safe-mode gateway must do per push —
// verify both signatures, decrypt, parse, seal a fixed reply — with no
// rules, log or database: the in-process yardstick for BenchmarkSafeModeText.
func BenchmarkCeiling(b *testing.B) {
	const now = 1715943329
	c, err := wechat.NewCrypter(acctSafe.AppID, acctSafe.EncodingAESKey)
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !wechat.VerifySignature(acctSafe.Token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
			http.Error(w, "signature", 401)
			return
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		outer, err := wechat.ParseMessage(buf.Bytes())
		if err != nil || !wechat.VerifyMsgSignature(acctSafe.Token, q.Get("timestamp"), q.Get("nonce"), outer.Encrypt, q.Get("msg_signature")) {
			http.Error(w, "msg_signature", 401)
			return
		}
		plain, idx, err := c.Decrypt(outer.Encrypt)
		if err != nil {
			http.Error(w, "decrypt", 400)
			return
		}
		m, err := wechat.ParseMessage(plain)
		if err != nil {
			http.Error(w, "xml", 400)
			return
		}
		reply, _ := wechat.BuildReply(m.FromUserName, m.ToUserName, time.Now().Unix(), wechat.TextReply{Content: "ok"})
		sealed, _ := c.SealReply(acctSafe.Token, reply, time.Now().Unix(), q.Get("nonce"), idx)
		_, _ = w.Write(sealed)
	})
	pushes := benchPushes(b, 1000, now)
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := pushes[next.Add(1)%int64(len(pushes))]
			req := httptest.NewRequest(http.MethodPost, "/wx/safe?"+p.query.Encode(), bytes.NewReader(p.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	})
}
