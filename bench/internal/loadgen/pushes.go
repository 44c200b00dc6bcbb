// Package loadgen replays signed safe-mode callbacks against a WeChat
// callback URL, as WeChat's servers would post them, and checks every answer
// the way WeChat checks a passive reply. It is shared by the callbackload
// command and the in-process profiling harness.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Account is the callback configuration of the official account under test,
// as it is pasted into WeChat's console.
type Account struct {
	Token      string
	AESKey     string // EncodingAESKey, 43 characters
	AppID      string
	OriginalID string // gh_…; the pushes' ToUserName and the replies' FromUserName
}

// Push is one pre-signed, pre-encrypted safe-mode text message.
type Push struct {
	URL    string // callback URL with signature, timestamp, nonce, openid, encrypt_type, msg_signature
	Body   []byte // <xml><ToUserName/><Encrypt/></xml>
	OpenID string // the sender; the reply must be addressed to it
	MsgID  int64
}

// Builder makes distinct pushes: every MsgId is new (a re-run against the same
// database does not turn into de-duplication hits), senders rotate over a set
// of openids.
type Builder struct {
	acct    Account
	crypter *wechat.Crypter
	base    string
	token   []byte
	// directXML writes the message and the body directly rather than with
	// encoding/xml, which gives the same bytes for a plain original id.
	directXML bool
	nextID    atomic.Int64
	openids   []string
	// DistinctSenders gives every push a follower of its own (a real
	// account's messages come from many followers) instead of rotating
	// over Senders of them.
	DistinctSenders bool
}

// senderPrefix starts the openids of the pushes.
const senderPrefix = "oBench"

// Senders is how many distinct followers the pushes come from.
const Senders = 1000

// NewBuilder checks the account settings and prepares the senders.
func NewBuilder(callbackURL string, acct Account) (*Builder, error) {
	u, err := url.Parse(callbackURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("callback URL %q is not an absolute http URL", callbackURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("callback URL %q must not carry a query; the signature parameters are added per push", callbackURL)
	}
	if acct.Token == "" || acct.AppID == "" {
		return nil, fmt.Errorf("token and app id are required")
	}
	c, err := wechat.NewCrypter(acct.AppID, acct.AESKey)
	if err != nil {
		return nil, err
	}
	b := &Builder{acct: acct, crypter: c, base: callbackURL, token: []byte(acct.Token), directXML: isPlainName(acct.OriginalID)}
	// MsgIds are 64-bit and WeChat's are ~6e18; starting from the clock
	// keeps runs apart without any state on disk.
	b.nextID.Store(time.Now().UnixNano())
	for i := range Senders {
		b.openids = append(b.openids, FollowerOpenID(senderPrefix, uint64(i)))
	}
	return b, nil
}

// Build makes n pushes stamped with now.
func (b *Builder) Build(n int, now time.Time) ([]Push, error) {
	out := make([]Push, n)
	for i := range out {
		p, err := b.One(now)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// One makes the next push, stamped with now; it is safe to call from
// several goroutines.
func (b *Builder) One(now time.Time) (Push, error) {
	var p pushBuffers
	if err := b.build(&p, now); err != nil {
		return Push{}, err
	}
	return Push{URL: b.base + "?" + string(p.query), Body: p.body, OpenID: p.openID, MsgID: p.msgID}, nil
}

// pushBuffers hold one push as a sustained worker sends it, in buffers
// reused from push to push: the query string of the callback URL and the
// body, valid until the next build.
type pushBuffers struct {
	query  []byte // signature=…&msg_signature=…, without the '?'
	body   []byte // <xml><ToUserName/><Encrypt/></xml>
	openID string
	msgID  int64

	message   []byte // the plain text message, before encryption
	timestamp []byte
	nonce     []byte
	signer    signer
}

// build makes the next push into p, stamped with now; it is safe to call
// from several goroutines with buffers of their own.
func (b *Builder) build(p *pushBuffers, now time.Time) error {
	id := b.nextID.Add(1) - 1
	p.msgID = id
	p.openID = b.openids[int(id%Senders)]
	if b.DistinctSenders {
		p.openID = FollowerOpenID(senderPrefix, uint64(id))
	}
	createTime := now.Unix()
	if b.directXML {
		p.message = appendTextMessage(p.message[:0], b.acct.OriginalID, p.openID, createTime, id)
	} else {
		p.message = wechat.EncodeMessage(&wechat.Message{
			ToUserName:   b.acct.OriginalID,
			FromUserName: p.openID,
			CreateTime:   createTime,
			MsgType:      wechat.MsgTypeText,
			Content:      contentPrefix + strconv.FormatInt(id, 10) + contentSuffix,
			MsgID:        id,
		})
	}
	encrypted, err := b.crypter.Encrypt(p.message, 0)
	if err != nil {
		return fmt.Errorf("encrypt push %d: %w", id, err)
	}
	// The body holds the Encrypt value the msg_signature covers: it is
	// signed from there rather than from a copy.
	var sealed []byte
	if b.directXML {
		p.body = append(p.body[:0], "<xml><ToUserName><![CDATA["...)
		p.body = append(p.body, b.acct.OriginalID...)
		p.body = append(p.body, "]]></ToUserName><Encrypt><![CDATA["...)
		start := len(p.body)
		p.body = append(p.body, encrypted...)
		sealed = p.body[start:len(p.body):len(p.body)]
		p.body = append(p.body, "]]></Encrypt></xml>"...)
	} else {
		p.body = wechat.SafeModeBody(b.acct.OriginalID, encrypted)
		sealed = []byte(encrypted)
	}

	p.timestamp = strconv.AppendInt(p.timestamp[:0], createTime, 10)
	// A nonce as WeChat sends them, a decimal number; a test nonce, not a
	// secret, so math/rand.
	p.nonce = strconv.AppendUint(p.nonce[:0], rand.Uint64N(1e10), 10)
	q := append(p.query[:0], "signature="...)
	q = append(q, p.signer.sign(b.token, p.timestamp, p.nonce)...)
	q = append(q, "&timestamp="...)
	q = append(q, p.timestamp...)
	q = append(q, "&nonce="...)
	q = append(q, p.nonce...)
	// openids are made of [A-Za-z0-9_-]: nothing to escape.
	q = append(q, "&openid="...)
	q = append(q, p.openID...)
	q = append(q, "&encrypt_type=aes&msg_signature="...)
	q = append(q, p.signer.sign(b.token, p.timestamp, p.nonce, sealed)...)
	p.query = q
	return nil
}

// FollowerOpenID is the openid of follower i: prefix, then characters
// that look random, 28 in all like a real openid, of [A-Za-z0-9_-]. The
// first eleven after the prefix spell out a bijective mix of i, so
// distinct followers have distinct openids. Real openids land all over a
// table's openid index; numbered ones (oBench0…01, oBench0…02) would only
// ever be appended at its end, which is far cheaper and would flatter the
// gateway under test.
func FollowerOpenID(prefix string, i uint64) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b [28]byte
	n := copy(b[:], prefix)
	x, y := mix64(i^0x632BE59BD9B4E019), mix64(i^0x9E3779B97F4A7C15)
	for j := 0; n+j < len(b); j++ {
		switch {
		case j < 11: // 6 bits at a time, then the last 4: all of x
			b[n+j] = alphabet[x&63]
			x >>= 6
		default:
			b[n+j] = alphabet[y&63]
			y >>= 6
		}
	}
	return string(b[:])
}

// mix64 is SplitMix64's finalizer, a bijection on uint64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}

// A push's Content: "你好，第 <MsgId> 条".
const (
	contentPrefix = "你好，第 "
	contentSuffix = " 条"
)

// appendTextMessage writes the text message of push msgID as
// wechat.EncodeMessage does, byte for byte, for names that go into CDATA as
// they are (see isPlainName).
func appendTextMessage(dst []byte, to, from string, createTime, msgID int64) []byte {
	dst = append(dst, "<xml><ToUserName><![CDATA["...)
	dst = append(dst, to...)
	dst = append(dst, "]]></ToUserName><FromUserName><![CDATA["...)
	dst = append(dst, from...)
	dst = append(dst, "]]></FromUserName><CreateTime>"...)
	dst = strconv.AppendInt(dst, createTime, 10)
	dst = append(dst, "</CreateTime><MsgType><![CDATA[text]]></MsgType><MsgId>"...)
	dst = strconv.AppendInt(dst, msgID, 10)
	dst = append(dst, "</MsgId><Content><![CDATA["+contentPrefix...)
	dst = strconv.AppendInt(dst, msgID, 10)
	return append(dst, contentSuffix+"]]></Content></xml>"...)
}

// isPlainName reports whether s is non-empty and made of [0-9A-Za-z_-], as
// original ids and openids are: such a value is written in CDATA and in a
// query string as it is.
func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
