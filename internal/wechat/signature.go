package wechat

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
)

// Signature computes WeChat's signature: the parts sorted in byte order,
// concatenated without separator, SHA-1, lower-case hex. With (token,
// timestamp, nonce) it is the query `signature`; with the Encrypt value added
// it is `msg_signature`.
func Signature(parts ...string) string {
	sorted := slices.Clone(parts)
	slices.Sort(sorted)
	sum := sha1.Sum([]byte(strings.Join(sorted, "")))
	return hex.EncodeToString(sum[:])
}

// VerifySignature checks the query `signature` of a callback in constant time.
func VerifySignature(token, timestamp, nonce, signature string) bool {
	return equalHex(Signature(token, timestamp, nonce), signature)
}

// VerifyMsgSignature checks `msg_signature` (or a reply's MsgSignature) over
// the Base64 Encrypt value, in constant time.
func VerifyMsgSignature(token, timestamp, nonce, encrypted, msgSignature string) bool {
	return equalHex(Signature(token, timestamp, nonce, encrypted), msgSignature)
}

func equalHex(want, got string) bool {
	// Accept upper-case hex from hand-written clients; WeChat sends lower case.
	got = strings.ToLower(got)
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
