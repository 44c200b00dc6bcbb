package wechat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strconv"
)

type encryptedReplyXML struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      cdata    `xml:"Encrypt"`
	MsgSignature cdata    `xml:"MsgSignature"`
	TimeStamp    int64    `xml:"TimeStamp"`
	Nonce        cdata    `xml:"Nonce"`
}

// SealReply encrypts a plain reply into the XML envelope WeChat expects in
// compatible and safe mode (Encrypt, MsgSignature, TimeStamp, Nonce), with the
// key that opened the request.
func (c *Crypter) SealReply(token string, plain []byte, timestamp int64, nonce string, keyIndex int) ([]byte, error) {
	encrypted, err := c.Encrypt(plain, keyIndex)
	if err != nil {
		return nil, err
	}
	return SealedReplyXML(token, encrypted, timestamp, nonce), nil
}

// SealedReplyXML renders the encrypted-reply envelope around an Encrypt value.
func SealedReplyXML(token, encrypted string, timestamp int64, nonce string) []byte {
	ts := strconv.FormatInt(timestamp, 10)
	sig := Signature(token, ts, nonce, encrypted)
	// Every encrypted reply comes here. The nonce is echoed from the
	// request's query, so only the shape WeChat sends (alphanumeric, next to
	// base64 from Encrypt) is written directly; anything else goes through
	// encoding/xml, whose output this matches byte for byte.
	if !isBase64Text(encrypted) || !isAlphanumeric(nonce) {
		out, _ := xml.Marshal(encryptedReplyXML{Encrypt: cdata{encrypted}, MsgSignature: cdata{sig}, TimeStamp: timestamp, Nonce: cdata{nonce}})
		return out
	}
	out := make([]byte, 0, len(sealedReplyShape)+len(encrypted)+len(sig)+len(ts)+len(nonce))
	out = append(out, "<xml>"...)
	out = appendElement(out, "Encrypt", encrypted)
	out = appendElement(out, "MsgSignature", sig)
	out = append(out, "<TimeStamp>"...)
	out = append(out, ts...)
	out = append(out, "</TimeStamp>"...)
	out = appendElement(out, "Nonce", nonce)
	return append(out, "</xml>"...)
}

// sealedReplyShape is the envelope's markup, for sizing its buffer.
const sealedReplyShape = "<xml><Encrypt><![CDATA[]]></Encrypt><MsgSignature><![CDATA[]]></MsgSignature><TimeStamp></TimeStamp><Nonce><![CDATA[]]></Nonce></xml>"

// Byte classes of the envelope's fast path: one table load per byte.
var alphanumeric, base64Alphabet = func() (alnum, b64 [256]bool) {
	for c := range 256 {
		alnum[c] = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		b64[c] = alnum[c] || c == '+' || c == '/' || c == '='
	}
	return alnum, b64
}()

func isAlphanumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if !alphanumeric[s[i]] {
			return false
		}
	}
	return true
}

func isBase64Text(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64Alphabet[s[i]] {
			return false
		}
	}
	return true
}

// SealedReplyJSON renders the JSON variant of the encrypted-reply envelope
// (Mini Program JSON data format): TimeStamp a number, Nonce a string.
func SealedReplyJSON(token, encrypted string, timestamp int64, nonce string) []byte {
	sig := Signature(token, strconv.FormatInt(timestamp, 10), nonce, encrypted)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Encrypt      string `json:"Encrypt"`
		MsgSignature string `json:"MsgSignature"`
		TimeStamp    int64  `json:"TimeStamp"`
		Nonce        string `json:"Nonce"`
	}{encrypted, sig, timestamp, nonce})
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// OpenReply verifies and decrypts an encrypted passive reply, as WeChat does
// with a developer's answer: the MsgSignature must match and the envelope must
// be for this AppID.
func (c *Crypter) OpenReply(token string, body []byte) ([]byte, error) {
	r, err := ParseReply(body)
	if err != nil {
		return nil, ErrParseXML
	}
	if r.Encrypt == "" {
		return nil, ErrParseXML
	}
	if !VerifyMsgSignature(token, strconv.FormatInt(r.TimeStamp, 10), r.Nonce, r.Encrypt, r.MsgSignature) {
		return nil, ErrInvalidSignature
	}
	plain, _, err := c.Decrypt(r.Encrypt)
	return plain, err
}

type safePushXML struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName cdata    `xml:"ToUserName"`
	Encrypt    cdata    `xml:"Encrypt"`
}

// SafeModeBody renders a safe-mode push body: only ToUserName and Encrypt.
func SafeModeBody(toUserName, encrypted string) []byte {
	out, _ := xml.Marshal(safePushXML{ToUserName: cdata{toUserName}, Encrypt: cdata{encrypted}})
	return out
}

// CompatibleModeBody adds <Encrypt> to a plaintext push body, as WeChat does in
// compatible mode (plain fields and the encrypted copy side by side).
func CompatibleModeBody(plainXML []byte, encrypted string) []byte {
	end := bytes.LastIndex(plainXML, []byte("</xml>"))
	if end < 0 {
		return plainXML
	}
	enc, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"Encrypt"`
		cdata
	}{cdata: cdata{encrypted}})
	out := make([]byte, 0, len(plainXML)+len(enc))
	out = append(out, plainXML[:end]...)
	out = append(out, enc...)
	return append(out, plainXML[end:]...)
}
