package loadgen

import (
	"fmt"
	"strconv"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Verifier checks an answer as WeChat checks a passive reply in safe mode:
// HTTP 200, an encrypted envelope whose MsgSignature matches, an envelope
// that decrypts with the account's key and carries its AppID, and inside a
// text reply addressed to the sender (and from the account, when its
// original id is known). The content is not checked: any text reply is the
// gateway's rules' business.
type Verifier struct {
	acct    Account
	crypter *wechat.Crypter
	token   []byte
}

// NewVerifier prepares the checks for acct.
func NewVerifier(acct Account) (*Verifier, error) {
	c, err := wechat.NewCrypter(acct.AppID, acct.AESKey)
	if err != nil {
		return nil, err
	}
	return &Verifier{acct: acct, crypter: c, token: []byte(acct.Token)}, nil
}

// Failure is a reply that WeChat would not accept. Kind is a short stable
// label used to count failures; Detail says what was seen.
type Failure struct {
	Kind   string
	Detail string
}

func (f *Failure) Error() string { return f.Kind + ": " + f.Detail }

func fail(kind, format string, args ...any) *Failure {
	return &Failure{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Check returns nil when the answer to p is a valid encrypted text reply.
func (v *Verifier) Check(p Push, status int, body []byte) *Failure {
	var buf checkBuffers
	return v.check(&buf, p.OpenID, status, body)
}

// checkBuffers are one worker's reused buffers for checking answers.
type checkBuffers struct {
	signer   signer
	elements [maxFlatElements]flatElement
}

// check is Check for an answer to a push from openID. An answer of the
// shape the servers write is accepted by scanning its bytes (fastAccept);
// any other, and every answer that fails, goes through encoding/xml
// (fullCheck), which gives the verdict and the kind of failure.
func (v *Verifier) check(buf *checkBuffers, openID string, status int, body []byte) *Failure {
	if status == 200 && v.fastAccept(buf, openID, body) {
		return nil
	}
	return v.fullCheck(openID, status, body)
}

// fullCheck parses the answer and its reply with encoding/xml.
func (v *Verifier) fullCheck(openID string, status int, body []byte) *Failure {
	if status != 200 {
		return fail("http_"+strconv.Itoa(status), "body %.200q", body)
	}
	if wechat.IsNoReply(body) {
		return fail("no_reply", "answered %q instead of a text reply", body)
	}
	env, err := wechat.ParseReply(body)
	if err != nil {
		return fail("malformed_envelope", "%v; body %.200q", err, body)
	}
	if env.Encrypt == "" {
		return fail("not_encrypted", "a safe-mode request got a plaintext answer: %.200q", body)
	}
	if !wechat.VerifyMsgSignature(v.acct.Token, strconv.FormatInt(env.TimeStamp, 10), env.Nonce, env.Encrypt, env.MsgSignature) {
		return fail("bad_msg_signature", "MsgSignature %q does not match TimeStamp %d, Nonce %q", env.MsgSignature, env.TimeStamp, env.Nonce)
	}
	plain, _, err := v.crypter.Decrypt(env.Encrypt)
	if err != nil {
		if wechat.IsCryptoCode(err, wechat.CodeValidateAppID) {
			return fail("wrong_appid", "%v", err)
		}
		return fail("decrypt", "%v", err)
	}
	r, err := wechat.ParseReply(plain)
	if err != nil {
		return fail("malformed_reply", "%v; reply %.200q", err, plain)
	}
	switch {
	case r.MsgType != wechat.MsgTypeText:
		return fail("not_text", "reply MsgType %q", r.MsgType)
	case r.ToUserName != openID:
		return fail("wrong_recipient", "reply to %q, sender was %q", r.ToUserName, openID)
	case v.acct.OriginalID != "" && r.FromUserName != v.acct.OriginalID:
		return fail("wrong_sender", "reply from %q, account is %q", r.FromUserName, v.acct.OriginalID)
	case r.Content == "":
		return fail("empty_content", "text reply without content")
	}
	return nil
}
