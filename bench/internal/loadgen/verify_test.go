package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

const testOpenID = "oBench0000000000000000000042"

// replyFixture builds encrypted answers to testOpenID in various shapes.
type replyFixture struct {
	t       testing.TB
	crypter *wechat.Crypter
	now     int64
	nonce   string
}

func newReplyFixture(t testing.TB) *replyFixture {
	t.Helper()
	c, err := wechat.NewCrypter(testAccount.AppID, testAccount.AESKey)
	if err != nil {
		t.Fatal(err)
	}
	return &replyFixture{t: t, crypter: c, now: time.Now().Unix(), nonce: "1234567890"}
}

// textReply is the reply the ceiling writes, with the given content.
func (f *replyFixture) textReply(to, from, content string) string {
	return "<xml><ToUserName><![CDATA[" + to + "]]></ToUserName><FromUserName><![CDATA[" + from +
		"]]></FromUserName><CreateTime>" + strconv.FormatInt(f.now, 10) +
		"</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content + "]]></Content></xml>"
}

// seal encrypts inner and returns the Encrypt value and its MsgSignature
// for token and the fixture's timestamp and nonce.
func (f *replyFixture) seal(c *wechat.Crypter, token, inner string) (encrypted, signature string) {
	f.t.Helper()
	encrypted, err := c.Encrypt([]byte(inner), 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return encrypted, wechat.Signature(token, strconv.FormatInt(f.now, 10), f.nonce, encrypted)
}

// envelope fills format with the Encrypt value, MsgSignature, TimeStamp and
// Nonce, in this order (use %[n]s to reorder).
func (f *replyFixture) envelope(format, inner string) []byte {
	enc, sig := f.seal(f.crypter, testAccount.Token, inner)
	return []byte(fmt.Sprintf(format, enc, sig, strconv.FormatInt(f.now, 10), f.nonce))
}

const (
	cdataEnvelope = "<xml><Encrypt><![CDATA[%s]]></Encrypt><MsgSignature><![CDATA[%s]]></MsgSignature><TimeStamp>%s</TimeStamp><Nonce><![CDATA[%s]]></Nonce></xml>"
	// encoding/xml's rendering of a struct without CDATA, as the Go SDK
	// answers.
	bareEnvelope = "<xml><Encrypt>%s</Encrypt><MsgSignature>%s</MsgSignature><TimeStamp>%s</TimeStamp><Nonce>%s</Nonce></xml>"
)

type answerCase struct {
	name     string
	status   int
	body     []byte
	wantKind string // "" for a valid answer
	wantFast bool   // the fast path accepts it
}

func answerCases(t *testing.T) []answerCase {
	f := newReplyFixture(t)
	orig := testAccount.OriginalID
	inner := f.textReply(testOpenID, orig, "收到：你好，第 42 条")
	sealReply := func(reply wechat.Reply, to, from string) []byte {
		plain, err := wechat.BuildReply(to, from, f.now, reply)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := f.crypter.SealReply(testAccount.Token, plain, f.now, f.nonce, 0)
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	other, err := wechat.NewCrypter("wx0000000000000000", testAccount.AESKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(f.now, 10)
	encrypted, signature := f.seal(f.crypter, testAccount.Token, inner)
	custom := func(format string, args ...any) []byte { return []byte(fmt.Sprintf(format, args...)) }
	wrongAppID, wrongAppIDSig := f.seal(other, testAccount.Token, inner)
	_, otherTokenSig := f.seal(f.crypter, "wrong-token", inner)

	return []answerCase{
		// The shapes the servers write.
		{name: "wechat_SealReply", status: 200, body: sealReply(wechat.TextReply{Content: "收到：你好"}, testOpenID, orig), wantFast: true},
		{name: "ceiling", status: 200, body: f.envelope(cdataEnvelope, inner), wantFast: true},
		{name: "go_sdk", status: 200, wantFast: true, body: f.envelope(bareEnvelope,
			"<xml><ToUserName><![CDATA["+testOpenID+"]]></ToUserName><FromUserName><![CDATA["+orig+"]]></FromUserName><CreateTime>"+ts+
				"</CreateTime><MsgType>text</MsgType><Content><![CDATA[收到：你好]]></Content></xml>")},
		{name: "whitespace", status: 200, wantFast: true, body: f.envelope(
			"\n  <xml>\n\t<Encrypt><![CDATA[%s]]></Encrypt>\r\n\t<MsgSignature>%s</MsgSignature>\n\t<TimeStamp>%s</TimeStamp>\n\t<Nonce><![CDATA[%s]]></Nonce>\n</xml>\n",
			"\n<xml>\n  <ToUserName>"+testOpenID+"</ToUserName>\n  <FromUserName><![CDATA["+orig+"]]></FromUserName>\n  <CreateTime>"+ts+
				"</CreateTime>\n  <MsgType><![CDATA[text]]></MsgType>\n  <Content><![CDATA[hi]]></Content>\n</xml>\n")},
		{name: "reordered", status: 200, wantFast: true, body: f.envelope(
			"<xml><Nonce>%[4]s</Nonce><TimeStamp>%[3]s</TimeStamp><Encrypt>%[1]s</Encrypt><MsgSignature>%[2]s</MsgSignature></xml>",
			"<xml><Content><![CDATA[hi]]></Content><MsgType><![CDATA[text]]></MsgType><CreateTime>"+ts+"</CreateTime><FromUserName><![CDATA["+orig+
				"]]></FromUserName><ToUserName><![CDATA["+testOpenID+"]]></ToUserName></xml>")},
		{name: "markup_in_cdata", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID, orig, "a <b> & c ]] >")), wantFast: true},
		{name: "bare_content", status: 200, wantFast: true, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA[收到：你好，第 42 条]]>", "收到 > 你好", 1))},

		// Valid, but not of the plain shape: the full path decides.
		{name: "extra_envelope_element", status: 200, body: custom(
			"<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><MsgSignature><![CDATA[%s]]></MsgSignature><TimeStamp>%s</TimeStamp><Nonce><![CDATA[%s]]></Nonce></xml>",
			orig, encrypted, signature, ts, f.nonce)},
		{name: "extra_reply_element", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "</xml>", "<FuncFlag>0</FuncFlag></xml>", 1))},
		{name: "upper_case_signature", status: 200, body: custom(cdataEnvelope, encrypted, strings.ToUpper(signature), ts, f.nonce)},
		{name: "leading_zero_timestamp", status: 200, body: custom(cdataEnvelope, encrypted, signature, "0"+ts, f.nonce)},
		{name: "xml_declaration", status: 200, body: append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`), f.envelope(cdataEnvelope, inner)...)},
		{name: "comment", status: 200, body: custom("<xml><!-- sealed -->"+cdataEnvelope[len("<xml>"):], encrypted, signature, ts, f.nonce)},
		{name: "attribute", status: 200, body: custom(strings.Replace(cdataEnvelope, "<Encrypt>", `<Encrypt a="1">`, 1), encrypted, signature, ts, f.nonce)},
		{name: "entity_in_content", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA[收到：你好，第 42 条]]>", "a &amp; b", 1))},
		{name: "entity_in_recipient", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA["+testOpenID+"]]>", "oBench&#48;000000000000000000042", 1))},
		{name: "crlf_in_content", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID, orig, "a\r\nb"))},
		{name: "content_split_in_cdata_sections", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA[收到：你好，第 42 条]]>", "<![CDATA[收到]]><![CDATA[你好]]>", 1))},
		{name: "trailing_text", status: 200, body: append(f.envelope(cdataEnvelope, inner), "\nok"...)},

		// Bad answers.
		{name: "http_500", status: 500, body: []byte("boom"), wantKind: "http_500"},
		{name: "http_500_with_a_valid_body", status: 500, body: f.envelope(cdataEnvelope, inner), wantKind: "http_500"},
		{name: "success", status: 200, body: []byte("success"), wantKind: "no_reply"},
		{name: "empty", status: 200, body: nil, wantKind: "no_reply"},
		{name: "plaintext", status: 200, body: []byte(inner), wantKind: "not_encrypted"},
		{name: "malformed_envelope", status: 200, body: []byte("<xml><Encrypt>"), wantKind: "malformed_envelope"},
		{name: "other_root", status: 200, body: custom(strings.ReplaceAll(cdataEnvelope, "xml>", "root>"), encrypted, signature, ts, f.nonce), wantKind: "malformed_envelope"},
		{name: "wrong_signature", status: 200, body: custom(cdataEnvelope, encrypted, otherTokenSig, ts, f.nonce), wantKind: "bad_msg_signature"},
		{name: "other_timestamp", status: 200, body: custom(cdataEnvelope, encrypted, signature, strconv.FormatInt(f.now+1, 10), f.nonce), wantKind: "bad_msg_signature"},
		{name: "other_nonce", status: 200, body: custom(cdataEnvelope, encrypted, signature, ts, "1"), wantKind: "bad_msg_signature"},
		{name: "wrong_appid", status: 200, body: custom(cdataEnvelope, wrongAppID, wrongAppIDSig, ts, f.nonce), wantKind: "wrong_appid"},
		{name: "wrong_recipient", status: 200, body: f.envelope(cdataEnvelope, f.textReply("oSomeoneElse", orig, "hi")), wantKind: "wrong_recipient"},
		{name: "recipient_prefix", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID[:20], orig, "hi")), wantKind: "wrong_recipient"},
		{name: "wrong_sender", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID, "gh_other", "hi")), wantKind: "wrong_sender"},
		{name: "not_text", status: 200, body: sealReply(wechat.ImageReply{MediaID: "x"}, testOpenID, orig), wantKind: "not_text"},
		{name: "empty_content", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA[收到：你好，第 42 条]]>", "", 1)), wantKind: "empty_content"},
		{name: "malformed_reply", status: 200, body: f.envelope(cdataEnvelope, "<xml><ToUserName>"), wantKind: "malformed_reply"},
		{name: "cdata_end_in_bare_content", status: 200, body: f.envelope(cdataEnvelope, strings.Replace(inner, "<![CDATA[收到：你好，第 42 条]]>", "a]]>b", 1)), wantKind: "malformed_reply"},
		{name: "invalid_utf8_content", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID, orig, "a\xffb")), wantKind: "malformed_reply"},
		{name: "control_character_content", status: 200, body: f.envelope(cdataEnvelope, f.textReply(testOpenID, orig, "a\x01b")), wantKind: "malformed_reply"},
		{name: "not_base64", status: 200, body: custom(cdataEnvelope, "!!!!", wechat.Signature(testAccount.Token, ts, f.nonce, "!!!!"), ts, f.nonce), wantKind: "decrypt"},
	}
}

// The fast path and encoding/xml agree on every answer, and the fast path
// takes the shapes the servers write.
func TestFastAndFullVerifiersAgree(t *testing.T) {
	v, err := NewVerifier(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	var buf checkBuffers
	for _, tc := range answerCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			full := v.fullCheck(testOpenID, tc.status, tc.body)
			fast := tc.status == 200 && v.fastAccept(&buf, testOpenID, tc.body)
			if kind(full) != tc.wantKind {
				t.Errorf("full check: %v, want kind %q", full, tc.wantKind)
			}
			if fast != tc.wantFast {
				t.Errorf("fast path accepts: %v, want %v", fast, tc.wantFast)
			}
			if fast && full != nil {
				t.Errorf("the fast path accepts what the full check rejects: %v", full)
			}
			if got := v.check(&buf, testOpenID, tc.status, tc.body); kind(got) != kind(full) {
				t.Errorf("check: %v, full check: %v", got, full)
			}
			if got := v.Check(Push{OpenID: testOpenID}, tc.status, tc.body); kind(got) != kind(full) {
				t.Errorf("Check: %v, full check: %v", got, full)
			}
		})
	}
}

func kind(f *Failure) string {
	if f == nil {
		return ""
	}
	return f.Kind
}

// Any one-byte change to an answer the fast path takes is either still
// accepted by both paths or left to the full one.
func TestFastPathOnlyAcceptsWhatTheFullCheckAccepts(t *testing.T) {
	v, err := NewVerifier(testAccount)
	if err != nil {
		t.Fatal(err)
	}
	f := newReplyFixture(t)
	var buf checkBuffers
	replacements := []byte{' ', '\n', '\r', '<', '>', '/', '&', ']', '[', '!', '0', 'a', 'A', '=', '+', 0, 0x80, 0xff}
	agree := func(t *testing.T, what string, body []byte) {
		if v.fastAccept(&buf, testOpenID, body) {
			if full := v.fullCheck(testOpenID, 200, body); full != nil {
				t.Fatalf("%s: the fast path accepts what the full check rejects (%v): %q", what, full, body)
			}
		}
	}
	inner := f.textReply(testOpenID, testAccount.OriginalID, "hi")
	for _, format := range []string{cdataEnvelope, bareEnvelope} {
		body := f.envelope(format, inner)
		for i := range body {
			for _, r := range replacements {
				mutated := []byte(string(body))
				mutated[i] = r
				agree(t, "envelope byte "+strconv.Itoa(i), mutated)
			}
			agree(t, "envelope without byte "+strconv.Itoa(i), append(append([]byte{}, body[:i]...), body[i+1:]...))
		}
	}
	// The reply inside, sealed again after each change.
	for i := range len(inner) {
		for _, r := range replacements {
			mutated := []byte(inner)
			mutated[i] = r
			agree(t, "reply byte "+strconv.Itoa(i), f.envelope(cdataEnvelope, string(mutated)))
		}
	}
}

// FuzzFastPathImpliesFullCheck seals arbitrary replies: whatever the fast
// path accepts, the full check accepts.
func FuzzFastPathImpliesFullCheck(f *testing.F) {
	for _, seed := range []string{
		"<xml><ToUserName><![CDATA[" + testOpenID + "]]></ToUserName><FromUserName><![CDATA[" + testAccount.OriginalID +
			"]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>",
		"<xml><ToUserName>" + testOpenID + "</ToUserName><FromUserName>" + testAccount.OriginalID +
			"</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>a&amp;b</Content></xml>",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, inner string, bare bool) {
		v, err := NewVerifier(testAccount)
		if err != nil {
			t.Fatal(err)
		}
		format := cdataEnvelope
		if bare {
			format = bareEnvelope
		}
		body := newReplyFixture(t).envelope(format, inner)
		var buf checkBuffers
		if v.fastAccept(&buf, testOpenID, body) {
			if full := v.fullCheck(testOpenID, 200, body); full != nil {
				t.Fatalf("the fast path accepts what the full check rejects (%v): reply %q", full, inner)
			}
		}
	})
}

func TestSignerMatchesWechat(t *testing.T) {
	var s signer
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte('0' + r.IntN(75))
		}
		return string(b)
	}
	for range 500 {
		parts := []string{word(), word(), word()}
		if r.IntN(2) == 0 {
			parts = append(parts, word())
		}
		var raw [][]byte
		for _, p := range parts {
			raw = append(raw, []byte(p))
		}
		if got, want := string(s.sign(raw...)), wechat.Signature(parts...); got != want {
			t.Fatalf("sign(%q) = %s, want %s", parts, got, want)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	v, err := NewVerifier(testAccount)
	if err != nil {
		b.Fatal(err)
	}
	f := newReplyFixture(b)
	body := f.envelope(cdataEnvelope, f.textReply(testOpenID, testAccount.OriginalID, "收到：你好"))
	var buf checkBuffers
	for b.Loop() {
		if f := v.check(&buf, testOpenID, 200, body); f != nil {
			b.Fatal(f)
		}
	}
}
