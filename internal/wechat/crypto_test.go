package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// vector is one known-answer test vector of the protocol notes (§2.4), stored
// in testdata/vectors.json. Random is the 16-byte prefix as the ASCII string
// the senders used; Kind says whether the source used it to test encryption
// or decryption (every vector is checked both ways here).
type vector struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Source         string `json:"source"`
	Token          string `json:"token"`
	EncodingAESKey string `json:"encodingAESKey"`
	AESKeyHex      string `json:"aesKeyHex"`
	AppID          string `json:"appID"`
	Timestamp      string `json:"timestamp"`
	Nonce          string `json:"nonce"`
	Signature      string `json:"signature"`
	MsgSignature   string `json:"msgSignature"`
	Random         string `json:"random"`
	Msg            string `json:"msg"`
	Encrypt        string `json:"encrypt"`
}

var loadVectorFile = sync.OnceValues(func() ([]vector, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		return nil, err
	}
	var vs []vector
	err = json.Unmarshal(b, &vs)
	return vs, err
})

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	vs, err := loadVectorFile()
	if err != nil {
		tb.Fatal(err)
	}
	return vs
}

func vectorByName(tb testing.TB, name string) vector {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if v.Name == name {
			return v
		}
	}
	tb.Fatalf("no vector %q", name)
	return vector{}
}

func mustCrypter(tb testing.TB, appID, key string, previous ...string) *Crypter {
	tb.Helper()
	c, err := NewCrypter(appID, key, previous...)
	if err != nil {
		tb.Fatalf("NewCrypter(%q, %q): %v", appID, key, err)
	}
	return c
}

// The vector file covers what the protocol notes list.
func TestVectorsPresent(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"V1": "decrypt", "V3": "decrypt", "V4": "decrypt", "V5": "decrypt", "V7": "decrypt", "V8": "decrypt", "V7-echostr": "decrypt",
		"V2a": "encrypt", "V2b": "encrypt", "V4-reply": "encrypt", "V5-reply": "encrypt", "V6": "encrypt", "V7-encrypt": "encrypt",
	}
	got := map[string]string{}
	for _, v := range loadVectors(t) {
		got[v.Name] = v.Kind
		if len(v.Random) != 16 {
			t.Errorf("%s: random prefix %q is not 16 bytes", v.Name, v.Random)
		}
	}
	for name, kind := range want {
		if got[name] != kind {
			t.Errorf("vector %s: kind %q, want %q", name, got[name], kind)
		}
	}
}

func TestVectorKeys(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		key, err := ParseEncodingAESKey(v.EncodingAESKey)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if got := hex.EncodeToString(key); got != v.AESKeyHex {
			t.Errorf("%s: AES key %s, want %s", v.Name, got, v.AESKeyHex)
		}
	}
}

// Decrypt side: signatures as WeChat computes them, then the plaintext and the
// trailing receive id.
func TestVectorsDecrypt(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			if v.Signature != "" && !VerifySignature(v.Token, v.Timestamp, v.Nonce, v.Signature) {
				t.Errorf("signature %s rejected", v.Signature)
			}
			if v.MsgSignature != "" {
				if !VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, v.Encrypt, v.MsgSignature) {
					t.Errorf("msg_signature %s rejected", v.MsgSignature)
				}
				if got := Signature(v.Token, v.Timestamp, v.Nonce, v.Encrypt); got != v.MsgSignature {
					t.Errorf("Signature = %s, want %s", got, v.MsgSignature)
				}
			}
			msg, keyIndex, err := mustCrypter(t, v.AppID, v.EncodingAESKey).Decrypt(v.Encrypt)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if string(msg) != v.Msg {
				t.Errorf("Decrypt = %q, want %q", msg, v.Msg)
			}
			if keyIndex != 0 {
				t.Errorf("keyIndex = %d, want 0", keyIndex)
			}
		})
	}
}

// Encrypt side: with the sender's prefix, EncryptWithRandom reproduces the
// Encrypt value byte for byte (which also proves the recovered prefix).
func TestVectorsEncrypt(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			c := mustCrypter(t, v.AppID, v.EncodingAESKey)
			got, err := c.EncryptWithRandom([]byte(v.Random), []byte(v.Msg), 0)
			if err != nil {
				t.Fatalf("EncryptWithRandom: %v", err)
			}
			if got != v.Encrypt {
				t.Errorf("EncryptWithRandom =\n%s\nwant\n%s", got, v.Encrypt)
			}
			raw, _ := base64.StdEncoding.DecodeString(got)
			if len(raw)%32 != 0 {
				t.Errorf("ciphertext is %d bytes, not a multiple of 32", len(raw))
			}
			if v.MsgSignature != "" {
				if sig := Signature(v.Token, v.Timestamp, v.Nonce, got); sig != v.MsgSignature {
					t.Errorf("MsgSignature = %s, want %s", sig, v.MsgSignature)
				}
			}
		})
	}
}

// The reply vectors as complete envelopes.
func TestVectorReplyEnvelopes(t *testing.T) {
	t.Parallel()
	t.Run("V4-reply JSON", func(t *testing.T) {
		t.Parallel()
		v := vectorByName(t, "V4-reply")
		ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
		got := string(SealedReplyJSON(v.Token, v.Encrypt, ts, v.Nonce))
		want := `{"Encrypt":"` + v.Encrypt + `","MsgSignature":"1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1","TimeStamp":1713424427,"Nonce":"415670741"}`
		if got != want {
			t.Errorf("SealedReplyJSON =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("V5-reply XML", func(t *testing.T) {
		t.Parallel()
		v := vectorByName(t, "V5-reply")
		ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
		body := SealedReplyXML(v.Token, v.Encrypt, ts, v.Nonce)
		want := "<xml><Encrypt><![CDATA[" + v.Encrypt + "]]></Encrypt><MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]></MsgSignature>" +
			"<TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
		if string(body) != want {
			t.Errorf("SealedReplyXML =\n%s\nwant\n%s", body, want)
		}
		plain, err := mustCrypter(t, v.AppID, v.EncodingAESKey).OpenReply(v.Token, body)
		if err != nil {
			t.Fatalf("OpenReply: %v", err)
		}
		if string(plain) != v.Msg {
			t.Errorf("OpenReply = %q, want %q", plain, v.Msg)
		}
		// The trailing id matters: the same reply for another app is refused.
		if _, err := mustCrypter(t, "wxba5fad812f8e6fb9", v.EncodingAESKey).OpenReply(v.Token, body); !errors.Is(err, ErrAppIDMismatch) {
			t.Errorf("OpenReply for another appid: %v, want ErrAppIDMismatch", err)
		}
	})
	t.Run("V7 encrypted echostr", func(t *testing.T) {
		t.Parallel()
		v := vectorByName(t, "V7-echostr")
		msg, _, err := mustCrypter(t, v.AppID, v.EncodingAESKey).Decrypt(v.Encrypt)
		if err != nil || string(msg) != "5927782489442352469" {
			t.Errorf("Decrypt(echostr) = %q, %v", msg, err)
		}
	})
}

// flipChar replaces the character at i by another base64 character.
func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// flipHexDigit changes one hex digit to another (signatures are compared
// case-insensitively, so flipping 'a' to 'A' would change nothing).
func flipHexDigit(s string, i int) string {
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func TestTamperedEncrypt(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"V1", "V4", "V5", "V8"} {
		v := vectorByName(t, name)
		c := mustCrypter(t, v.AppID, v.EncodingAESKey)
		body := strings.TrimRight(v.Encrypt, "=")
		for i := range body {
			tampered := flipChar(v.Encrypt, i)
			// The signature is what protects integrity: it fails for every flip.
			if VerifyMsgSignature(v.Token, v.Timestamp, v.Nonce, tampered, v.MsgSignature) {
				t.Fatalf("%s: msg_signature accepted with char %d flipped", name, i)
			}
			// CBC has no MAC, so decryption alone may "succeed" on a flip in the
			// message area, but never returns the original message unnoticed...
			msg, _, err := c.Decrypt(tampered)
			if err == nil && string(msg) == v.Msg && i < len(body)-1 {
				t.Fatalf("%s: flip at %d decrypted to the original message", name, i)
			}
		}
		// ...and a flip in the final block (pad and appid) is always refused.
		tampered := flipChar(v.Encrypt, len(body)-8)
		_, _, err := c.Decrypt(tampered)
		if !errors.Is(err, ErrIllegalBuffer) && !errors.Is(err, ErrAppIDMismatch) {
			t.Errorf("%s: Decrypt(tampered tail) = %v, want ErrIllegalBuffer or ErrAppIDMismatch", name, err)
		}
	}
}

func TestDecryptWrongAppID(t *testing.T) {
	t.Parallel()
	v := vectorByName(t, "V1")
	_, _, err := mustCrypter(t, "wx0000000000000000", v.EncodingAESKey).Decrypt(v.Encrypt)
	if !errors.Is(err, ErrAppIDMismatch) {
		t.Fatalf("Decrypt = %v, want ErrAppIDMismatch", err)
	}
	if !IsCryptoCode(err, -40005) {
		t.Errorf("error %v does not carry code -40005", err)
	}
	var ce *CryptoError
	if !errors.As(err, &ce) || !strings.Contains(ce.Error(), v.AppID) {
		t.Errorf("error %v should name the envelope's appid", err)
	}
}

// sealRaw encrypts a hand-made plaintext (already a multiple of 16 bytes) the
// way the scheme does, to build malformed envelopes.
func sealRaw(tb testing.TB, encodingAESKey string, plain []byte) string {
	tb.Helper()
	key, err := ParseEncodingAESKey(encodingAESKey)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out)
}

// frame builds random ‖ len ‖ msg ‖ appid with a chosen length field and pad.
func frame(msgLen uint32, msg, appID string, pad byte, padLen int) []byte {
	b := []byte("0123456789abcdef")
	b = binary.BigEndian.AppendUint32(b, msgLen)
	b = append(b, msg...)
	b = append(b, appID...)
	return append(b, bytes.Repeat([]byte{pad}, padLen)...)
}

func TestDecryptMalformed(t *testing.T) {
	t.Parallel()
	const key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	const appID = "wx2c2769f8efd9abc2"
	c := mustCrypter(t, appID, key)
	// "0123456789abcdef" + 4 + "hello" + 18 = 43 bytes; 21 bytes of pad make 64.
	tests := []struct {
		name    string
		encrypt string
		want    error
	}{
		{"valid control", sealRaw(t, key, frame(5, "hello", appID, 21, 21)), nil},
		{"pad byte 0", sealRaw(t, key, frame(5, "hello", appID, 0, 21)), ErrIllegalBuffer},
		{"pad byte 33", sealRaw(t, key, frame(5, "hello", appID, 33, 21)), ErrIllegalBuffer},
		{"pad byte 255", sealRaw(t, key, frame(5, "hello", appID, 255, 21)), ErrIllegalBuffer},
		{"msg_len past the end", sealRaw(t, key, frame(1000, "hello", appID, 21, 21)), ErrIllegalBuffer},
		{"msg_len 2^32-1", sealRaw(t, key, frame(0xFFFFFFFF, "hello", appID, 21, 21)), ErrIllegalBuffer},
		{"shorter than 20 bytes", sealRaw(t, key, append([]byte("0123456789abcdef"), bytes.Repeat([]byte{16}, 16)...)), ErrIllegalBuffer},
		{"pad eats the whole block", sealRaw(t, key, bytes.Repeat([]byte{32}, 32)), ErrIllegalBuffer},
		{"empty message", sealRaw(t, key, frame(0, "", appID, 26, 26)), nil},
		{"no appid", sealRaw(t, key, frame(5, "hello", "", 7, 7)), ErrAppIDMismatch},
		{"not base64", "not*base64!", ErrDecodeBase64},
		{"url-safe base64", strings.NewReplacer("+", "-", "/", "_").Replace(vectorByName(t, "V1").Encrypt), ErrDecodeBase64},
		{"empty", "", ErrDecryptAES},
		{"not a block multiple", base64.StdEncoding.EncodeToString(make([]byte, 33)), ErrDecryptAES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, _, err := c.Decrypt(tt.encrypt)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decrypt = %q, %v; want %v", msg, err, tt.want)
			}
			var ce *CryptoError
			if !errors.As(err, &ce) || ce.Code != tt.want.(*CryptoError).Code {
				t.Errorf("error %v lacks code %d", err, tt.want.(*CryptoError).Code)
			}
		})
	}
}

func TestParseEncodingAESKey(t *testing.T) {
	t.Parallel()
	// The four real keys of the vectors set the two discarded low bits of the
	// 43rd character; a strict decoder rejects them, ours must not.
	for _, k := range []string{
		"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
		"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
		"kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
		"AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS",
	} {
		if _, err := base64.StdEncoding.Strict().DecodeString(k + "="); err == nil {
			t.Errorf("%s: expected the strict decoder to reject it (test premise)", k)
		}
		key, err := ParseEncodingAESKey(k)
		if err != nil {
			t.Errorf("ParseEncodingAESKey(%s): %v", k, err)
			continue
		}
		if len(key) != 32 {
			t.Errorf("%s: key is %d bytes", k, len(key))
		}
		if _, err := NewCrypter("wx1", k); err != nil {
			t.Errorf("NewCrypter(%s): %v", k, err)
		}
	}

	bad := map[string]string{
		"42 chars":       strings.Repeat("A", 42),
		"44 chars":       strings.Repeat("A", 44),
		"empty":          "",
		"with padding":   strings.Repeat("A", 42) + "=",
		"illegal char":   strings.Repeat("A", 42) + "!",
		"url-safe chars": strings.Repeat("A", 41) + "-_",
		"multibyte":      strings.Repeat("A", 40) + "中",
	}
	for name, k := range bad {
		_, err := ParseEncodingAESKey(k)
		if !errors.Is(err, ErrIllegalAESKey) || !IsCryptoCode(err, CodeIllegalAESKey) {
			t.Errorf("%s: ParseEncodingAESKey(%q) = %v, want ErrIllegalAESKey", name, k, err)
		}
		if _, err := NewCrypter("wx1", k); !errors.Is(err, ErrIllegalAESKey) {
			t.Errorf("%s: NewCrypter = %v, want ErrIllegalAESKey", name, err)
		}
		if _, err := NewCrypter("wx1", strings.Repeat("A", 43), k); k != "" && !errors.Is(err, ErrIllegalAESKey) {
			t.Errorf("%s: NewCrypter with bad previous key = %v, want ErrIllegalAESKey", name, err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	v := vectorByName(t, "V1") // sealed with the previous key
	const newKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	c := mustCrypter(t, v.AppID, newKey, v.EncodingAESKey)

	msg, keyIndex, err := c.Decrypt(v.Encrypt)
	if err != nil {
		t.Fatalf("Decrypt with previous key: %v", err)
	}
	if keyIndex != 1 || string(msg) != v.Msg {
		t.Errorf("Decrypt = %q, keyIndex %d; want the V1 message with keyIndex 1", msg, keyIndex)
	}

	// The answer goes out with the key that opened the request: WeChat, still on
	// the previous key, can read it.
	reply, err := c.Encrypt([]byte("<xml/>"), keyIndex)
	if err != nil {
		t.Fatal(err)
	}
	old := mustCrypter(t, v.AppID, v.EncodingAESKey)
	if got, _, err := old.Decrypt(reply); err != nil || string(got) != "<xml/>" {
		t.Errorf("previous-key Crypter reads reply as %q, %v", got, err)
	}

	// Messages under the new key open with index 0.
	fresh, err := c.Encrypt([]byte("new"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, idx, err := c.Decrypt(fresh); err != nil || idx != 0 || string(got) != "new" {
		t.Errorf("Decrypt(new key) = %q, %d, %v", got, idx, err)
	}
	if _, _, err := old.Decrypt(fresh); err == nil {
		t.Error("previous-key Crypter opened a message under the new key")
	}

	// A key nobody has is refused with a crypto error.
	stranger := mustCrypter(t, v.AppID, "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")
	alien, _ := stranger.Encrypt([]byte("x"), 0)
	var ce *CryptoError
	if _, _, err := c.Decrypt(alien); !errors.As(err, &ce) {
		t.Errorf("Decrypt(unknown key) = %v, want a *CryptoError", err)
	}

	// An empty previous key (rotation not configured) is skipped.
	single := mustCrypter(t, v.AppID, newKey, "")
	if _, _, err := single.Decrypt(v.Encrypt); err == nil {
		t.Error("Crypter without the previous key opened V1")
	}
	// An out-of-range key index falls back to the current key.
	if enc, err := c.Encrypt([]byte("y"), 7); err != nil {
		t.Error(err)
	} else if _, idx, err := c.Decrypt(enc); err != nil || idx != 0 {
		t.Errorf("Encrypt(keyIndex 7) opened with %d, %v", idx, err)
	}
}

func TestEncryptIsRandomised(t *testing.T) {
	t.Parallel()
	c := mustCrypter(t, "wx1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	a, err := c.Encrypt([]byte("same"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Encrypt([]byte("same"), 0)
	if a == b {
		t.Error("two Encrypt calls gave the same ciphertext")
	}
	for _, e := range []string{a, b} {
		if msg, _, err := c.Decrypt(e); err != nil || string(msg) != "same" {
			t.Errorf("Decrypt = %q, %v", msg, err)
		}
	}
	// Aligned input gets a whole block of padding (0x20), as the scheme says.
	msg := bytes.Repeat([]byte("x"), 32-20-len("wx1")) // 16+4+9+3 = 32
	enc, _ := c.EncryptWithRandom(make([]byte, 16), msg, 0)
	if raw, _ := base64.StdEncoding.DecodeString(enc); len(raw) != 64 {
		t.Errorf("aligned plaintext gave %d bytes of ciphertext, want 64", len(raw))
	}
	if got, _, err := c.Decrypt(enc); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("Decrypt(aligned) = %q, %v", got, err)
	}
	if _, err := c.EncryptWithRandom(make([]byte, 15), msg, 0); !IsCryptoCode(err, CodeEncryptAES) {
		t.Errorf("EncryptWithRandom(15-byte prefix) = %v, want code %d", err, CodeEncryptAES)
	}
}

// A Crypter that was never built by NewCrypter has no key: it must fail
// cleanly rather than panic or report success.
func TestZeroCrypter(t *testing.T) {
	t.Parallel()
	var c Crypter
	if msg, _, err := c.Decrypt(vectorByName(t, "V1").Encrypt); !errors.Is(err, ErrIllegalAESKey) {
		t.Errorf("Decrypt = %q, %v; want ErrIllegalAESKey", msg, err)
	}
	if _, err := c.Encrypt([]byte("x"), 0); !errors.Is(err, ErrIllegalAESKey) {
		t.Errorf("Encrypt = %v; want ErrIllegalAESKey", err)
	}
}

func TestSealReplyOpenReply(t *testing.T) {
	t.Parallel()
	const token = "AAAAA"
	c := mustCrypter(t, "wxba5fad812f8e6fb9", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	plain, err := BuildReply(userOA, ghOA, 1713424427, TextReply{Content: "你好 & <b>welcome</b>"})
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.SealReply(token, plain, 1713424427, "415670741", 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseReply(body)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimeStamp != 1713424427 || r.Nonce != "415670741" || r.Encrypt == "" {
		t.Errorf("envelope %+v", r)
	}
	if !VerifyMsgSignature(token, "1713424427", "415670741", r.Encrypt, r.MsgSignature) {
		t.Error("envelope MsgSignature does not verify")
	}
	got, err := c.OpenReply(token, body)
	if err != nil {
		t.Fatalf("OpenReply: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("OpenReply = %s, want %s", got, plain)
	}

	t.Run("tampered MsgSignature", func(t *testing.T) {
		tampered := bytes.Replace(body, []byte(r.MsgSignature), []byte(flipHexDigit(r.MsgSignature, 3)), 1)
		if _, err := c.OpenReply(token, tampered); !errors.Is(err, ErrInvalidSignature) || !IsCryptoCode(err, CodeValidateSignature) {
			t.Errorf("OpenReply = %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("tampered TimeStamp", func(t *testing.T) {
		tampered := bytes.Replace(body, []byte("<TimeStamp>1713424427<"), []byte("<TimeStamp>1713424428<"), 1)
		if _, err := c.OpenReply(token, tampered); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("OpenReply = %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("tampered Encrypt", func(t *testing.T) {
		tampered := bytes.Replace(body, []byte(r.Encrypt), []byte(flipChar(r.Encrypt, 10)), 1)
		if _, err := c.OpenReply(token, tampered); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("OpenReply = %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		if _, err := c.OpenReply("BBBBB", body); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("OpenReply = %v, want ErrInvalidSignature", err)
		}
	})
	t.Run("plain reply is not an envelope", func(t *testing.T) {
		if _, err := c.OpenReply(token, plain); !errors.Is(err, ErrParseXML) {
			t.Errorf("OpenReply(plain) = %v, want ErrParseXML", err)
		}
	})
	t.Run("not XML", func(t *testing.T) {
		for _, b := range []string{"", "success", `{"Encrypt":"x"}`} {
			if _, err := c.OpenReply(token, []byte(b)); !errors.Is(err, ErrParseXML) {
				t.Errorf("OpenReply(%q) = %v, want ErrParseXML", b, err)
			}
		}
	})
	t.Run("sealed with the previous key", func(t *testing.T) {
		rotated := mustCrypter(t, "wxba5fad812f8e6fb9", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		body, err := rotated.SealReply(token, plain, 1, "n", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.OpenReply(token, body); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("OpenReply = %s, %v", got, err)
		}
	})
}

func TestSealedReplyJSONEscaping(t *testing.T) {
	t.Parallel()
	// Base64 '+' and '/' stay literal (no \u escapes), as WeChat's sample shows.
	got := string(SealedReplyJSON("t", "a+b/c==", 1, "n<&>"))
	want := `{"Encrypt":"a+b/c==","MsgSignature":"` + Signature("t", "1", "n<&>", "a+b/c==") + `","TimeStamp":1,"Nonce":"n<&>"}`
	if got != want {
		t.Errorf("SealedReplyJSON = %s, want %s", got, want)
	}
	var decoded map[string]any
	if err := json.Unmarshal([]byte(got), &decoded); err != nil {
		t.Fatal(err)
	}
	if _, isNumber := decoded["TimeStamp"].(float64); !isNumber {
		t.Errorf("TimeStamp is %T, want a JSON number", decoded["TimeStamp"])
	}
}

func TestCryptoErrorIs(t *testing.T) {
	t.Parallel()
	err := error(&CryptoError{Code: CodeValidateAppID, Msg: "envelope is for appid x"})
	if !errors.Is(err, ErrAppIDMismatch) || errors.Is(err, ErrIllegalBuffer) {
		t.Error("errors.Is must match on the code only")
	}
	wrapped := errors.Join(errors.New("callback"), err)
	if !errors.Is(wrapped, ErrAppIDMismatch) || !IsCryptoCode(wrapped, -40005) {
		t.Error("wrapped crypto errors must still match")
	}
	if IsCryptoCode(errors.New("other"), -40005) || IsCryptoCode(nil, -40005) {
		t.Error("IsCryptoCode matched a non-crypto error")
	}
	if got := ErrIllegalBuffer.Error(); !strings.Contains(got, "-40008") {
		t.Errorf("Error() = %q, want the code in it", got)
	}
}
