// Package loadgen replays signed safe-mode callbacks against a WeChat
// callback URL, as WeChat's servers would post them, and checks every answer
// the way WeChat checks a passive reply. It is shared by the callbackload
// command and the in-process profiling harness.
package loadgen

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
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
	nextID  atomic.Int64
	openids []string
	// DistinctSenders gives every push a follower of its own (a real
	// account's messages come from many followers) instead of rotating
	// over Senders of them.
	DistinctSenders bool
}

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
	b := &Builder{acct: acct, crypter: c, base: callbackURL}
	// MsgIds are 64-bit and WeChat's are ~6e18; starting from the clock
	// keeps runs apart without any state on disk.
	b.nextID.Store(time.Now().UnixNano())
	for i := range Senders {
		// Real openids are 28 characters of [A-Za-z0-9_-].
		b.openids = append(b.openids, fmt.Sprintf("oBench%022d", i))
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
	id := b.nextID.Add(1) - 1
	openid := b.openids[int(id%Senders)]
	if b.DistinctSenders {
		openid = fmt.Sprintf("oBench%022d", uint64(id))
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	m := wechat.Message{
		ToUserName:   b.acct.OriginalID,
		FromUserName: openid,
		CreateTime:   now.Unix(),
		MsgType:      wechat.MsgTypeText,
		Content:      "你好，第 " + strconv.FormatInt(id, 10) + " 条",
		MsgID:        id,
	}
	encrypted, err := b.crypter.Encrypt(wechat.EncodeMessage(&m), 0)
	if err != nil {
		return Push{}, err
	}
	nonce, err := randomDigits()
	if err != nil {
		return Push{}, err
	}
	var q strings.Builder
	q.WriteString(b.base)
	q.WriteString("?signature=")
	q.WriteString(wechat.Signature(b.acct.Token, ts, nonce))
	q.WriteString("&timestamp=" + ts + "&nonce=" + nonce)
	q.WriteString("&openid=" + url.QueryEscape(openid))
	q.WriteString("&encrypt_type=aes&msg_signature=")
	q.WriteString(wechat.Signature(b.acct.Token, ts, nonce, encrypted))
	return Push{URL: q.String(), Body: wechat.SafeModeBody(b.acct.OriginalID, encrypted), OpenID: openid, MsgID: id}, nil
}

// randomDigits is a nonce as WeChat sends them: a decimal number.
func randomDigits() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		return "", err
	}
	return n.String(), nil
}
