package wechat

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

func TestSignatureKnownAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parts []string
		want  string
	}{
		// Official GET verification example: echo echostr 4375120948345356249.
		{"GET verification", []string{"AAAAA", "1714036504", "1514711492"}, "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		// Official plaintext-mode POST example.
		{"plaintext POST", []string{"AAAAA", "1714037059", "486452656"}, "899cf89e464efb63f54ddac96b0a0a235f53aa78"},
		// Safe-mode push of V4: the plain 3-way signature is still sent.
		{"safe-mode POST signature", []string{"AAAAA", "1714112445", "415670741"}, "6c5c811b55cc85e0e1b54100749188c20beb3f5d"},
		// silenceper/wechat util/signature_test.go: sha1("abc").
		{"silenceper a,b,c", []string{"a", "b", "c"}, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"silenceper order-free", []string{"c", "a", "b"}, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		// WxJava SHA1Test.
		{"WxJava 123,345", []string{"123", "345"}, "9f537aeb751ec72605f57f94a2f6dc3e3958e1dd"},
		{"WxJava 345,123", []string{"345", "123"}, "9f537aeb751ec72605f57f94a2f6dc3e3958e1dd"},
	}
	for _, tt := range tests {
		if got := Signature(tt.parts...); got != tt.want {
			t.Errorf("%s: Signature(%q) = %s, want %s", tt.name, tt.parts, got, tt.want)
		}
	}
}

func TestSignatureSortsBytewise(t *testing.T) {
	t.Parallel()
	// Byte order puts upper case before lower case and '+' '/' '=' before
	// digits — the Encrypt value of msg_signature contains all of them.
	sum := func(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	if got, want := Signature("a", "B"), sum("Ba"); got != want {
		t.Errorf("Signature(a, B) = %s, want sha1(\"Ba\") = %s", got, want)
	}
	if got, want := Signature("1", "+x=", "/y"), sum("+x=/y1"); got != want {
		t.Errorf("Signature with base64 punctuation = %s, want %s", got, want)
	}
	if got, want := Signature(), sum(""); got != want {
		t.Errorf("Signature() = %s, want sha1 of the empty string", got)
	}
	parts := []string{"c", "b", "a"}
	Signature(parts...)
	if !slices.Equal(parts, []string{"c", "b", "a"}) {
		t.Errorf("Signature reordered its argument: %q", parts)
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	const good = "f464b24fc39322e44b38aa78f5edd27bd1441696"
	tests := []struct {
		name string
		sig  string
		want bool
	}{
		{"as sent", good, true},
		{"upper-case hex", strings.ToUpper(good), true},
		{"mixed case", "F464b24FC39322e44b38aa78f5edd27bd1441696", true},
		{"one char changed", "f464b24fc39322e44b38aa78f5edd27bd1441697", false},
		{"truncated", good[:39], false},
		{"extra char", good + "0", false},
		{"surrounding space", " " + good, false},
		{"empty", "", false},
		{"other request's", "899cf89e464efb63f54ddac96b0a0a235f53aa78", false},
	}
	for _, tt := range tests {
		if got := VerifySignature("AAAAA", "1714036504", "1514711492", tt.sig); got != tt.want {
			t.Errorf("%s: VerifySignature(%q) = %v, want %v", tt.name, tt.sig, got, tt.want)
		}
	}
	// Each input matters.
	if VerifySignature("AAAAB", "1714036504", "1514711492", good) ||
		VerifySignature("AAAAA", "1714036505", "1514711492", good) ||
		VerifySignature("AAAAA", "1714036504", "1514711493", good) {
		t.Error("signature accepted with a changed token, timestamp or nonce")
	}
}

func TestVerifyMsgSignature(t *testing.T) {
	t.Parallel()
	v := vectorByName(t, "V4")
	if !VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt, v.MsgSignature) {
		t.Fatal("V4 msg_signature rejected")
	}
	if !VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt, strings.ToUpper(v.MsgSignature)) {
		t.Error("upper-case msg_signature rejected")
	}
	// The plain signature is not a msg_signature ("不要使用signature验证").
	if VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt, v.Signature) {
		t.Error("plain signature accepted as msg_signature")
	}
	if VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt+"x", v.MsgSignature) {
		t.Error("msg_signature accepted for another Encrypt")
	}
}
