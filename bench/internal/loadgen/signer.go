package loadgen

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
)

// signer computes WeChat's signature as wechat.Signature does (the parts
// sorted in byte order, concatenated, SHA-1, lower-case hex) in buffers it
// keeps: each push needs three of them, and wechat.Signature allocates four
// times per call.
type signer struct {
	joined []byte
	hex    [2 * sha1.Size]byte
}

// sign returns the signature of parts, which it reorders; the result is
// valid until the next call.
func (s *signer) sign(parts ...[]byte) []byte {
	// Insertion sort: there are three or four parts.
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && bytes.Compare(parts[j], parts[j-1]) < 0; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	s.joined = s.joined[:0]
	for _, p := range parts {
		s.joined = append(s.joined, p...)
	}
	sum := sha1.Sum(s.joined)
	hex.Encode(s.hex[:], sum[:])
	return s.hex[:]
}
