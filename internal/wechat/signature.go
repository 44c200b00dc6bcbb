package wechat

import (
	"crypto/sha1"
	"encoding/hex"
)

// Signature computes WeChat's signature: the parts sorted in byte order,
// concatenated without separator, SHA-1, lower-case hex. With (token,
// timestamp, nonce) it is the query `signature`; with the Encrypt value added
// it is `msg_signature`.
func Signature(parts ...string) string {
	sum := signatureSum(parts)
	return hex.EncodeToString(sum[:])
}

// signatureSum is the SHA-1 behind Signature. WeChat signs three or four
// parts, and every safe-mode callback checks two signatures, so the parts
// are sorted and joined on the stack instead of in fresh allocations.
func signatureSum(parts []string) [sha1.Size]byte {
	var small [4]string
	sorted := small[:0]
	if len(parts) > len(small) {
		sorted = make([]string, 0, len(parts))
	}
	sorted = append(sorted, parts...)
	// Insertion sort: the fastest for a handful of strings.
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	// Room for a token, a timestamp, a nonce and the Encrypt value of a
	// text push; longer input moves to the heap.
	var joined [1024]byte
	buf := joined[:0]
	for _, p := range sorted {
		buf = append(buf, p...)
	}
	return sha1.Sum(buf)
}

// VerifySignature checks the query `signature` of a callback in constant time.
func VerifySignature(token, timestamp, nonce, signature string) bool {
	return equalHex(signatureSum([]string{token, timestamp, nonce}), signature)
}

// VerifyMsgSignature checks `msg_signature` (or a reply's MsgSignature) over
// the Base64 Encrypt value, in constant time.
func VerifyMsgSignature(token, timestamp, nonce, encrypted, msgSignature string) bool {
	return equalHex(signatureSum([]string{token, timestamp, nonce, encrypted}), msgSignature)
}

// equalHex compares sum with a hex signature in constant time. Upper-case
// hex from hand-written clients is accepted; WeChat sends lower case.
func equalHex(sum [sha1.Size]byte, got string) bool {
	var want [2 * sha1.Size]byte
	hex.Encode(want[:], sum[:])
	if len(got) != len(want) {
		return false
	}
	var diff byte
	for i := range want {
		c := got[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		diff |= want[i] ^ c
	}
	return diff == 0
}
