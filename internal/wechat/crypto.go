package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Return codes of the WXBizMsgCrypt scheme (identical across WeChat's official
// samples). They are library codes, never sent on the wire, but users search
// for them, so errors carry them.
const (
	CodeValidateSignature = -40001
	CodeParseXML          = -40002
	CodeIllegalAESKey     = -40004
	CodeValidateAppID     = -40005
	CodeEncryptAES        = -40006
	CodeDecryptAES        = -40007
	CodeIllegalBuffer     = -40008
	CodeDecodeBase64      = -40010
)

// CryptoError is a failure of the message envelope, with its WXBizMsgCrypt code.
type CryptoError struct {
	Code int
	Msg  string
}

func (e *CryptoError) Error() string { return fmt.Sprintf("wechat crypto %d: %s", e.Code, e.Msg) }

// Is makes errors.Is match on the code, so callers can test against the
// sentinel values below.
func (e *CryptoError) Is(target error) bool {
	t, ok := target.(*CryptoError)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidSignature = &CryptoError{Code: CodeValidateSignature, Msg: "signature mismatch"}
	ErrParseXML         = &CryptoError{Code: CodeParseXML, Msg: "malformed envelope"}
	ErrIllegalAESKey    = &CryptoError{Code: CodeIllegalAESKey, Msg: "illegal EncodingAESKey"}
	ErrAppIDMismatch    = &CryptoError{Code: CodeValidateAppID, Msg: "appid in envelope does not match"}
	ErrDecryptAES       = &CryptoError{Code: CodeDecryptAES, Msg: "aes decrypt failed"}
	ErrIllegalBuffer    = &CryptoError{Code: CodeIllegalBuffer, Msg: "decrypted buffer invalid"}
	ErrDecodeBase64     = &CryptoError{Code: CodeDecodeBase64, Msg: "base64 decode failed"}
)

// blockSize is the PKCS#7 block size of the scheme: 32, not AES's 16.
const blockSize = 32

// ParseEncodingAESKey turns the 43-character EncodingAESKey into the 32-byte
// AES key. The non-strict decoder is deliberate: the 43rd character carries two
// discarded bits that real keys set, and a strict decoder rejects them.
func ParseEncodingAESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, &CryptoError{Code: CodeIllegalAESKey, Msg: fmt.Sprintf("EncodingAESKey must be 43 characters, got %d", len(encodingAESKey))}
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, &CryptoError{Code: CodeIllegalAESKey, Msg: "EncodingAESKey is not valid base64 of 32 bytes"}
	}
	return key, nil
}

// Crypter encrypts and decrypts message envelopes for one AppID. It holds the
// current EncodingAESKey and, during a key rotation, previous ones that are
// still accepted for decryption.
type Crypter struct {
	appID string
	keys  [][]byte
}

// NewCrypter builds a Crypter; previousKeys are tried in order when the current
// key fails to decrypt.
func NewCrypter(appID, encodingAESKey string, previousKeys ...string) (*Crypter, error) {
	c := &Crypter{appID: appID}
	for i, k := range append([]string{encodingAESKey}, previousKeys...) {
		if i > 0 && k == "" {
			continue
		}
		key, err := ParseEncodingAESKey(k)
		if err != nil {
			return nil, err
		}
		c.keys = append(c.keys, key)
	}
	return c, nil
}

// AppID is the receive id this Crypter writes and expects in envelopes.
func (c *Crypter) AppID() string { return c.appID }

// Decrypt opens an Encrypt value. It returns the message, the index of the key
// that opened it (0 = current; reply with the same key) and an error wrapping a
// *CryptoError. The trailing receive id must equal the AppID.
func (c *Crypter) Decrypt(encrypted string) (msg []byte, keyIndex int, err error) {
	if len(c.keys) == 0 {
		return nil, 0, ErrIllegalAESKey
	}
	ciphertext, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, 0, ErrDecodeBase64
	}
	var firstErr error
	for i, key := range c.keys {
		msg, receiveID, err := openWithKey(key, ciphertext)
		if err == nil && receiveID != c.appID {
			err = &CryptoError{Code: CodeValidateAppID, Msg: fmt.Sprintf("envelope is for appid %q, expected %q", receiveID, c.appID)}
		}
		if err == nil {
			return msg, i, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, 0, firstErr
}

// Encrypt seals msg with a fresh random prefix using key keyIndex.
func (c *Crypter) Encrypt(msg []byte, keyIndex int) (string, error) {
	if len(c.keys) == 0 {
		return "", ErrIllegalAESKey
	}
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", &CryptoError{Code: CodeEncryptAES, Msg: "random prefix: " + err.Error()}
	}
	return c.EncryptWithRandom(random[:], msg, keyIndex)
}

// EncryptWithRandom seals msg with the given 16-byte prefix; deterministic, for
// known-answer tests.
func (c *Crypter) EncryptWithRandom(random, msg []byte, keyIndex int) (string, error) {
	if len(random) != 16 {
		return "", &CryptoError{Code: CodeEncryptAES, Msg: "random prefix must be 16 bytes"}
	}
	if len(c.keys) == 0 {
		return "", ErrIllegalAESKey
	}
	if keyIndex < 0 || keyIndex >= len(c.keys) {
		keyIndex = 0
	}
	key := c.keys[keyIndex]
	plain := make([]byte, 0, 20+len(msg)+len(c.appID)+blockSize)
	plain = append(plain, random...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, c.appID...)
	pad := blockSize - len(plain)%blockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)

	block, err := aes.NewCipher(key)
	if err != nil {
		return "", &CryptoError{Code: CodeEncryptAES, Msg: err.Error()}
	}
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain), nil
}

func openWithKey(key, ciphertext []byte) (msg []byte, receiveID string, err error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, "", ErrDecryptAES
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, "", ErrDecryptAES
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, key[:16]).CryptBlocks(plain, ciphertext)

	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > blockSize || pad > len(plain) {
		return nil, "", ErrIllegalBuffer
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < 20 {
		return nil, "", ErrIllegalBuffer
	}
	n := binary.BigEndian.Uint32(plain[16:20])
	if uint64(n) > uint64(len(plain)-20) {
		return nil, "", ErrIllegalBuffer
	}
	return plain[20 : 20+n], string(plain[20+n:]), nil
}

// IsCryptoCode reports whether err carries the given WXBizMsgCrypt code.
func IsCryptoCode(err error, code int) bool {
	var ce *CryptoError
	return errors.As(err, &ce) && ce.Code == code
}
