package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

var testAccount = Account{
	Token:      "spamtest",
	AESKey:     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
	AppID:      "wx2c2769f8efd9abc2",
	OriginalID: "gh_10f6c3c3ac5a",
}

// fakeGateway answers like a safe-mode gateway, then lets mutate spoil the
// answer in one way.
func fakeGateway(t *testing.T, mutate func(w http.ResponseWriter, m *wechat.Message, reply []byte, sealed []byte) bool) *httptest.Server {
	t.Helper()
	c, err := wechat.NewCrypter(testAccount.AppID, testAccount.AESKey)
	if err != nil {
		t.Fatal(err)
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !wechat.VerifySignature(testAccount.Token, q.Get("timestamp"), q.Get("nonce"), q.Get("signature")) {
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		outer, err := wechat.ParseMessage(body)
		if err != nil || !wechat.VerifyMsgSignature(testAccount.Token, q.Get("timestamp"), q.Get("nonce"), outer.Encrypt, q.Get("msg_signature")) {
			http.Error(w, "msg_signature", http.StatusUnauthorized)
			return
		}
		plain, _, err := c.Decrypt(outer.Encrypt)
		if err != nil {
			http.Error(w, "decrypt", http.StatusBadRequest)
			return
		}
		m, err := wechat.ParseMessage(plain)
		if err != nil || m.MsgType != "text" || m.MsgID == 0 || m.ToUserName != testAccount.OriginalID || q.Get("openid") != m.FromUserName {
			http.Error(w, "message", http.StatusBadRequest)
			return
		}
		reply, _ := wechat.BuildReply(m.FromUserName, m.ToUserName, time.Now().Unix(), wechat.TextReply{Content: "收到：" + m.Content})
		sealed, _ := c.SealReply(testAccount.Token, reply, time.Now().Unix(), q.Get("nonce"), 0)
		if mutate != nil && mutate(w, m, reply, sealed) {
			return
		}
		_, _ = w.Write(sealed)
	}))
}

func runOne(t *testing.T, srv *httptest.Server, n, conc int) Result {
	t.Helper()
	b, err := NewBuilder(srv.URL+"/wx/main", testAccount)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Client: NewClient(conc), Builder: b, Verifier: v, Log: io.Discard}
	res, err := r.RunLevel(context.Background(), Level{Concurrency: conc, Requests: n, Warmup: 5})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunAcceptsValidReplies(t *testing.T) {
	srv := fakeGateway(t, nil)
	defer srv.Close()
	res := runOne(t, srv, 200, 8)
	if res.Failures != 0 || res.WarmupFailures != 0 || res.Requests != 200 || res.WarmupRequests != 5 {
		t.Fatalf("result %+v", res)
	}
	if res.RPS <= 0 || res.P50 <= 0 || res.P50 > res.P90 || res.P90 > res.P99 || res.P99 > res.Max {
		t.Fatalf("statistics %+v", res)
	}
}

// badReplies spoil an answer in one way each, by the kind of failure
// expected.
func badReplies(t *testing.T) map[string]func(w http.ResponseWriter, m *wechat.Message, reply, sealed []byte) bool {
	other, err := wechat.NewCrypter("wx0000000000000000", testAccount.AESKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func(w http.ResponseWriter, m *wechat.Message, reply, sealed []byte) bool{
		"http_500": func(w http.ResponseWriter, _ *wechat.Message, _, _ []byte) bool {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		},
		"no_reply": func(w http.ResponseWriter, _ *wechat.Message, _, _ []byte) bool {
			_, _ = w.Write([]byte("success"))
			return true
		},
		"not_encrypted": func(w http.ResponseWriter, _ *wechat.Message, reply, _ []byte) bool {
			_, _ = w.Write(reply)
			return true
		},
		"malformed_envelope": func(w http.ResponseWriter, _ *wechat.Message, _, _ []byte) bool {
			_, _ = w.Write([]byte("<xml><Encrypt>"))
			return true
		},
		"bad_msg_signature": func(w http.ResponseWriter, _ *wechat.Message, _, sealed []byte) bool {
			r, _ := wechat.ParseReply(sealed)
			_, _ = w.Write(wechat.SealedReplyXML("wrong-token", r.Encrypt, r.TimeStamp, r.Nonce))
			return true
		},
		"wrong_appid": func(w http.ResponseWriter, _ *wechat.Message, reply, _ []byte) bool {
			enc, _ := other.Encrypt(reply, 0)
			_, _ = w.Write(wechat.SealedReplyXML(testAccount.Token, enc, time.Now().Unix(), "1"))
			return true
		},
		"wrong_recipient": func(w http.ResponseWriter, m *wechat.Message, _, _ []byte) bool {
			writeSealed(t, w, "oSomeoneElse", m.ToUserName, wechat.TextReply{Content: "hi"})
			return true
		},
		"wrong_sender": func(w http.ResponseWriter, m *wechat.Message, _, _ []byte) bool {
			writeSealed(t, w, m.FromUserName, "gh_other", wechat.TextReply{Content: "hi"})
			return true
		},
		"not_text": func(w http.ResponseWriter, m *wechat.Message, _, _ []byte) bool {
			writeSealed(t, w, m.FromUserName, m.ToUserName, wechat.ImageReply{MediaID: "x"})
			return true
		},
	}
}

func TestRunCountsEveryBadReply(t *testing.T) {
	for kind, mutate := range badReplies(t) {
		t.Run(kind, func(t *testing.T) {
			var calls atomic.Int64
			srv := fakeGateway(t, func(w http.ResponseWriter, m *wechat.Message, reply, sealed []byte) bool {
				// Spoil one answer in three: the others must still pass.
				if calls.Add(1)%3 != 0 {
					return false
				}
				return mutate(w, m, reply, sealed)
			})
			defer srv.Close()
			// 5 warmup + 30 timed answers, one in three spoilt: 1 + 10.
			res := runOne(t, srv, 30, 1)
			if res.WarmupFailures != 1 || res.Failures != 10 {
				t.Fatalf("failures %d (+%d warmup), want 10 (+1): %+v", res.Failures, res.WarmupFailures, res)
			}
			if res.FailureKinds[kind] != res.Failures {
				t.Fatalf("failure kinds %v, want only %s", res.FailureKinds, kind)
			}
		})
	}
}

// The sustained mode, with its own client and the fast verifier, counts
// the same failures.
func TestSustainedRunCountsEveryBadReply(t *testing.T) {
	for kind, mutate := range badReplies(t) {
		t.Run(kind, func(t *testing.T) {
			var calls, spoilt atomic.Int64
			srv := fakeGateway(t, func(w http.ResponseWriter, m *wechat.Message, reply, sealed []byte) bool {
				if calls.Add(1)%3 != 0 {
					return false
				}
				spoilt.Add(1)
				return mutate(w, m, reply, sealed)
			})
			defer srv.Close()
			b, err := NewBuilder(srv.URL+"/wx/main", testAccount)
			if err != nil {
				t.Fatal(err)
			}
			b.DistinctSenders = true
			v, _ := NewVerifier(testAccount)
			r := &Runner{Builder: b, Verifier: v, Log: io.Discard}
			res, err := r.RunLevel(context.Background(), Level{Concurrency: 2, Warmup: 5, Duration: 200 * time.Millisecond, Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := int64(res.Requests + res.WarmupRequests); n != calls.Load() || n < 30 {
				t.Fatalf("%d requests, the server answered %d", n, calls.Load())
			}
			if int64(res.Failures+res.WarmupFailures) != spoilt.Load() || res.FailureKinds[kind] != res.Failures {
				t.Fatalf("failures %d (+%d warmup) of kinds %v, the server spoilt %d with %s", res.Failures, res.WarmupFailures, res.FailureKinds, spoilt.Load(), kind)
			}
		})
	}
}

func writeSealed(t *testing.T, w http.ResponseWriter, to, from string, r wechat.Reply) {
	c, _ := wechat.NewCrypter(testAccount.AppID, testAccount.AESKey)
	reply, err := wechat.BuildReply(to, from, time.Now().Unix(), r)
	if err != nil {
		t.Error(err)
	}
	sealed, _ := c.SealReply(testAccount.Token, reply, time.Now().Unix(), "1", 0)
	_, _ = w.Write(sealed)
}

func TestTransportErrorsAreFailures(t *testing.T) {
	srv := fakeGateway(t, nil)
	url := srv.URL
	srv.Close()
	b, _ := NewBuilder(url+"/wx/main", testAccount)
	v, _ := NewVerifier(testAccount)
	r := &Runner{Client: NewClient(2), Builder: b, Verifier: v, Log: io.Discard}
	res, err := r.RunLevel(context.Background(), Level{Concurrency: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failures != 10 || res.FailureKinds["transport"] != 10 {
		t.Fatalf("result %+v", res)
	}

	// The sustained mode's client too.
	res, err = r.RunLevel(context.Background(), Level{Concurrency: 2, Duration: 100 * time.Millisecond, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Failures != res.Requests || res.FailureKinds["transport"] != res.Requests {
		t.Fatalf("sustained result %+v", res)
	}
}

func TestPushesAreDistinct(t *testing.T) {
	b, err := NewBuilder("http://127.0.0.1:1/wx/main", testAccount)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pushes, err := b.Build(500, now)
	if err != nil {
		t.Fatal(err)
	}
	more, _ := b.Build(500, now)
	seen := map[int64]bool{}
	for _, p := range append(pushes, more...) {
		if seen[p.MsgID] {
			t.Fatalf("MsgId %d twice", p.MsgID)
		}
		seen[p.MsgID] = true
	}
	// The timestamp in the URL is the one given.
	want := "timestamp=" + strconv.FormatInt(now.Unix(), 10)
	if u := pushes[0].URL; !strings.Contains(u, want) || !strings.Contains(u, "encrypt_type=aes") || !strings.Contains(u, "msg_signature=") {
		t.Fatalf("URL %s", u)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.9: 90 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		v           []float64
		lo, mid, hi float64
	}{
		{nil, 0, 0, 0},
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 1, 3, 5},
		{[]float64{4, 1, 3, 2}, 1, 2.5, 4},
	} {
		lo, mid, hi := Spread(tc.v)
		if lo != tc.lo || mid != tc.mid || hi != tc.hi {
			t.Errorf("Spread(%v) = %v, %v, %v; want %v, %v, %v", tc.v, lo, mid, hi, tc.lo, tc.mid, tc.hi)
		}
	}
}

// The target over several rounds is judged on the medians, whatever one
// round says.
func TestCompareRoundsUsesMedians(t *testing.T) {
	report := func(label string, rps, p99 float64) *Report {
		return &Report{Label: label, Levels: []Result{{Concurrency: 64, RPS: rps, P99: p99, ServerCPU: 50}}}
	}
	target := Target{Concurrency: 64, MinRatio: 0.6, MaxP99: 20 * time.Millisecond}
	rounds := []Round{
		{report("ceiling", 10000, 5), report("wxgate", 6500, 15)},
		{report("ceiling", 20000, 5), report("wxgate", 10000, 25)}, // 50%, p99 over: an outlier
		{report("ceiling", 15000, 5), report("wxgate", 9300, 18)},
	}
	var out strings.Builder
	if !CompareRounds(&out, rounds, target) {
		t.Errorf("target not met on medians 62%% and 18 ms:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "over 3 rounds") || !strings.Contains(out.String(), "62%") {
		t.Errorf("summary:\n%s", out.String())
	}
	rounds[0].Cand = report("wxgate", 5000, 15)
	out.Reset()
	if CompareRounds(&out, rounds, target) {
		t.Errorf("target met with a median ratio of 50%%:\n%s", out.String())
	}
}

// A sustained level builds, sends and verifies for its duration, every
// push from a follower of its own, and still counts a bad answer.
func TestSustainedLevel(t *testing.T) {
	var bad atomic.Int64
	seen := map[string]bool{}
	var seenMu sync.Mutex
	srv := fakeGateway(t, func(w http.ResponseWriter, m *wechat.Message, _, _ []byte) bool {
		seenMu.Lock()
		seen[m.FromUserName] = true
		seenMu.Unlock()
		if m.MsgID%50 == 0 && bad.Add(1) <= 3 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}
		return false
	})
	defer srv.Close()
	b, err := NewBuilder(srv.URL+"/wx/main", testAccount)
	if err != nil {
		t.Fatal(err)
	}
	b.DistinctSenders = true
	v, _ := NewVerifier(testAccount)
	r := &Runner{Client: NewClient(4), Builder: b, Verifier: v, Log: io.Discard}
	res, err := r.RunLevel(context.Background(), Level{Concurrency: 4, Warmup: 10, Duration: 300 * time.Millisecond, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.WarmupRequests != 10 || res.Requests < 20 || res.Seconds < 0.3 || res.RPS <= 0 || res.P99 <= 0 {
		t.Fatalf("result %+v", res)
	}
	if total := res.Failures + res.WarmupFailures; int64(total) != min(bad.Load(), 3) || (total > 0 && res.FailureKinds["http_500"]+res.WarmupFailures != total) {
		t.Errorf("failures %d (%v) warmup %d, the server spoiled %d", res.Failures, res.FailureKinds, res.WarmupFailures, bad.Load())
	}
	// The sustained client's raw socket calls are no synchronisation the
	// race detector knows of: the handler's writes are read under its lock.
	seenMu.Lock()
	defer seenMu.Unlock()
	if n := len(seen); n != res.Requests+res.WarmupRequests {
		t.Errorf("%d senders for %d pushes", n, res.Requests+res.WarmupRequests)
	}
}
