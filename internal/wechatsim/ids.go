package wechatsim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Identifiers look like WeChat's so that clients validating shapes (length,
// alphabet) accept them. Random parts come from crypto/rand: they are
// credentials (tokens, codes, session keys) or must not collide.

const (
	alphabetURL   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	alphabetAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	alphabetDigit = "0123456789"
)

func randomString(n int, alphabet string) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("wechatsim: crypto/rand: %v", err))
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf)
}

func randomBytes(n int) []byte {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("wechatsim: crypto/rand: %v", err))
	}
	return buf
}

// prefixFor derives a stable 5-character prefix, as real openids of one app
// share their first characters.
func prefixFor(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:5]
}

// newOpenID returns a 28-character openid: "o", a per-app prefix, 22 random.
func newOpenID(appID string) string {
	return "o" + prefixFor("openid:"+appID) + randomString(22, alphabetURL)
}

// newUnionID returns a 28-character unionid with a per-Open-Platform prefix.
func newUnionID(group string) string {
	return "o" + prefixFor("unionid:"+group) + randomString(22, alphabetURL)
}

// newOriginalID returns a gh_ id of 12 hex digits.
func newOriginalID() string { return "gh_" + hex.EncodeToString(randomBytes(6)) }

// accessTokenPattern matches the tokens this simulator issues; anything else
// presented as a token is garbage (40014) rather than unknown (40001).
var accessTokenPattern = regexp.MustCompile(`^[0-9]{2}_[A-Za-z0-9_-]{120,}$`)

// newAccessToken returns an opaque token shaped like "86_-_rXbFe1YOal-…",
// about 136 characters.
func newAccessToken() string {
	return fmt.Sprintf("%02d_%s", 80+int(randomBytes(1)[0])%10, randomString(133, alphabetURL))
}

// newTemplateID returns a 43-character template id.
func newTemplateID() string { return randomString(43, alphabetURL) }

// newJSCode returns a 32-character wx.login code.
func newJSCode() string { return randomString(32, alphabetURL) }

// newSessionKey returns a base64 16-byte session_key.
func newSessionKey() string { return base64.StdEncoding.EncodeToString(randomBytes(16)) }

// newQRCodePath returns the path segment of a QR url (weixin.qq.com/q/…).
func newQRCodePath() string { return randomString(24, alphabetAlnum) }

// newTicket returns a base64 ticket that, like WeChat's, carries the url it
// stands for; it contains '+', '/' and '=' so clients must URL-encode it.
func newTicket(url string, expiresAt time.Time) string {
	buf := []byte{0x81, 0x01}
	buf = append(buf, randomBytes(10)...)
	buf = append(buf, byte(len(url)))
	buf = append(buf, url...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(expiresAt.Unix()))
	buf = append(buf, randomBytes(2)...)
	return base64.StdEncoding.EncodeToString(buf)
}

// newEchostr returns the digits WeChat sends as echostr.
func newEchostr() string { return "4" + randomString(18, alphabetDigit) }

// newNonce returns the digits WeChat sends as nonce.
func newNonce() string { return randomString(10, alphabetDigit) }

// rid renders the request id WeChat appends to errmsg: hex Unix time of the
// request, then two random groups.
func rid(now time.Time) string {
	r := randomBytes(8)
	return fmt.Sprintf("%08x-%08x-%08x", uint32(now.Unix()), binary.BigEndian.Uint32(r[:4]), binary.BigEndian.Uint32(r[4:]))
}

// firstMsgID starts message ids above 2^62: every id the simulator hands out
// exceeds 2^53, so a client that decodes them through float64 breaks at once.
func firstMsgID() int64 {
	return 1<<62 + int64(binary.BigEndian.Uint32(randomBytes(4)))<<16
}

// nextMsgID hands out MsgId, template msgid and subscription msgid values.
// Callers hold s.mu.
func (st *state) nextMsgID() int64 {
	st.NextMsgID += 1 + int64(randomBytes(1)[0]%7)
	return st.NextMsgID
}
