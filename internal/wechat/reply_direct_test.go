package wechat

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"testing"
)

// awkwardTexts are values around the edges of what CDATA carries as is.
var awkwardTexts = []string{
	"", "a", "你好\n<a href=\"https://mp.weixin.qq.com/\">官网</a>", "tab\tand\nnewline", "😀", "&amp; <b> \"q\" 'a'",
	"]", "]]", "]]>", "a]]>b", "]]]>", "]>", "x]]", "cr\r", "\r\n", "x\x00y", "bell\x07", "bad \xff utf8", "\xef\xbf\xbd",
	"\uFFFE", "\uFFFF", "\xed\xa0\x80", "\x7f", "\u0085", "\U0010FFFF", "trail\xe4\xbd",
}

// buildReplyKinds returns one reply of every kind with s in every text field.
func buildReplyKinds(s string) []Reply {
	return []Reply{
		TextReply{Content: s},
		ImageReply{MediaID: s},
		VoiceReply{MediaID: s},
		VideoReply{MediaID: s, Title: s, Description: s},
		VideoReply{MediaID: s},
		MusicReply{Title: s, Description: s, MusicURL: s, HQMusicURL: s, ThumbMediaID: s + "t"},
		MusicReply{ThumbMediaID: s},
		NewsReply{Articles: []Article{{Title: s, Description: s, PicURL: s, URL: s}, {Title: "t", URL: s}}},
		NewsReply{},
		TransferCustomerServiceReply{KfAccount: s},
	}
}

// checkReplyMatchesXML fails when BuildReply (which writes the usual reply
// directly) differs from the encoding/xml rendering in output or error.
func checkReplyMatchesXML(t *testing.T, to, from string, createTime int64, r Reply) {
	t.Helper()
	got, err := BuildReply(to, from, createTime, r)
	want, wantErr := marshalReply(to, from, createTime, r)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("BuildReply(%q, %q, %d, %#v): error %v, encoding/xml error %v", to, from, createTime, r, err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("BuildReply(%q, %q, %d, %#v)\n got: %q\nwant: %q", to, from, createTime, r, got, want)
	}
}

func TestBuildReplyMatchesEncodingXML(t *testing.T) {
	t.Parallel()
	for _, tc := range replyCases {
		checkReplyMatchesXML(t, replyTo, replyFrom, replyTime, tc.reply)
	}
	for _, s := range awkwardTexts {
		for _, r := range buildReplyKinds(s) {
			checkReplyMatchesXML(t, replyTo, replyFrom, replyTime, r)
		}
		checkReplyMatchesXML(t, s, replyFrom, -1, TextReply{Content: "x"})
		checkReplyMatchesXML(t, replyTo, s, 0, TextReply{Content: "x"})
	}
}

// The direct path is the one the usual reply takes.
func TestBuildReplyDirectPath(t *testing.T) {
	t.Parallel()
	for _, tc := range replyCases {
		if _, ok := appendReply(nil, replyTo, replyFrom, replyTime, tc.reply); !ok {
			t.Errorf("%s: not written directly", tc.golden)
		}
	}
	for _, s := range []string{"a]]>b", "cr\r", "x\x00y", "bad \xff utf8", "\uFFFE"} {
		if _, ok := appendReply(nil, replyTo, replyFrom, replyTime, TextReply{Content: s}); ok {
			t.Errorf("%q written directly; want the encoding/xml path", s)
		}
	}
}

func sealedReplyXMLReference(token, encrypted string, timestamp int64, nonce string) []byte {
	sig := Signature(token, strconv.FormatInt(timestamp, 10), nonce, encrypted)
	out, _ := xml.Marshal(encryptedReplyXML{Encrypt: cdata{encrypted}, MsgSignature: cdata{sig}, TimeStamp: timestamp, Nonce: cdata{nonce}})
	return out
}

func TestSealedReplyXMLMatchesEncodingXML(t *testing.T) {
	t.Parallel()
	v := vectorByName(t, "V5-reply")
	encrypts := append([]string{v.Encrypt, "", "abc+/=", "a b", "x]]>y"}, awkwardTexts...)
	nonces := append([]string{v.Nonce, "1320562132", "", "abcXYZ09", "a-b", "a&b", "<x>", "]]>"}, awkwardTexts...)
	for _, enc := range encrypts {
		for _, nonce := range nonces {
			for _, ts := range []int64{1713424427, 0, -5} {
				got := SealedReplyXML(v.Token, enc, ts, nonce)
				want := sealedReplyXMLReference(v.Token, enc, ts, nonce)
				if !bytes.Equal(got, want) {
					t.Fatalf("SealedReplyXML(%q, %d, %q)\n got: %q\nwant: %q", enc, ts, nonce, got, want)
				}
			}
		}
	}
}

func FuzzBuildReplyMatchesEncodingXML(f *testing.F) {
	for _, s := range awkwardTexts {
		f.Add(replyTo, replyFrom, int64(replyTime), s, "1320562132")
	}
	f.Add("", "", int64(0), "", "")
	f.Fuzz(func(t *testing.T, to, from string, createTime int64, text, nonce string) {
		for _, r := range buildReplyKinds(text) {
			checkReplyMatchesXML(t, to, from, createTime, r)
		}
		if got, want := SealedReplyXML("token", text, createTime, nonce), sealedReplyXMLReference("token", text, createTime, nonce); !bytes.Equal(got, want) {
			t.Fatalf("SealedReplyXML(%q, %d, %q)\n got: %q\nwant: %q", text, createTime, nonce, got, want)
		}
	})
}

// BenchmarkSealedReplyXML writes the envelope of an encrypted reply
// (signature included), as every encrypted callback with a reply does.
func BenchmarkSealedReplyXML(b *testing.B) {
	v := vectorByName(b, "V5-reply")
	b.ReportAllocs()
	for b.Loop() {
		SealedReplyXML(v.Token, v.Encrypt, 1713424427, v.Nonce)
	}
}
