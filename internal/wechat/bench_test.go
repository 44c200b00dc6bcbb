package wechat

import (
	"testing"
)

// BenchmarkDecrypt opens V1 (a 280-byte text push, 320 bytes of ciphertext),
// the work of every safe-mode callback.
func BenchmarkDecrypt(b *testing.B) {
	v := vectorByName(b, "V1")
	c := mustCrypter(b, v.AppID, v.EncodingAESKey)
	b.ReportAllocs()
	b.SetBytes(int64(len(v.Msg)))
	for b.Loop() {
		if _, _, err := c.Decrypt(v.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncrypt seals the same message with a fresh random prefix, as an
// encrypted passive reply does.
func BenchmarkEncrypt(b *testing.B) {
	v := vectorByName(b, "V1")
	c := mustCrypter(b, v.AppID, v.EncodingAESKey)
	msg := []byte(v.Msg)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := c.Encrypt(msg, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMessage(b *testing.B) {
	for _, fixture := range []string{"text.xml", "event_subscribe_msg_popup.xml"} {
		body := readFixture(b, fixture)
		b.Run(fixture, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseMessage(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuildReply(b *testing.B) {
	replies := map[string]Reply{
		"text": TextReply{Content: "感谢关注！回复 1 查看今日天气。"},
		"news": NewsReply{Articles: []Article{{Title: "今日天气", Description: "晴 23°C", PicURL: "https://example.com/sun.jpg", URL: "https://example.com/weather"}}},
	}
	for _, name := range []string{"text", "news"} {
		r := replies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := BuildReply(userOA, ghOA, 1713424427, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyMsgSignature checks V1's msg_signature, the second of the
// two signatures every safe-mode callback verifies.
func BenchmarkVerifyMsgSignature(b *testing.B) {
	v := vectorByName(b, "V1")
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt, v.MsgSignature) {
			b.Fatal("V1's msg_signature rejected")
		}
	}
}
