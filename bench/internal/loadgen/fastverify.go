package loadgen

import (
	"bytes"
	"unicode/utf8"
)

// The fast path of Verifier.check. The two encoding/xml parses of an answer
// cost some 20 µs of CPU, most of what a sustained load generator may spend
// on a push, so answers of the shape the servers write — wechat.SealReply and the ceiling
// (CDATA values), encoding/xml structs without CDATA (the Go SDK) — are
// read by scanning their bytes. fastAccept only ever accepts what fullCheck
// accepts: it says yes when the document is flat and plain enough that
// encoding/xml would read exactly the values it sees, and the values pass
// the same checks; for anything else it says no and fullCheck decides.

// flatElement is one <Name>value</Name> child of a flat <xml> document.
type flatElement struct {
	name, value []byte
	cdata       bool // the value was one CDATA section, taken verbatim
}

// maxFlatElements bounds the children scanned; the envelope has 4, the
// text reply 5.
const maxFlatElements = 8

// fastAccept reports whether body is a valid encrypted text reply to openID
// (the checks of fullCheck) whose envelope and reply are flat documents:
//
//	<xml><Encrypt>…</Encrypt><MsgSignature>…</MsgSignature><TimeStamp>…</TimeStamp><Nonce>…</Nonce></xml>
//	<xml><ToUserName>…</ToUserName><FromUserName>…</FromUserName><CreateTime>…</CreateTime><MsgType>…</MsgType><Content>…</Content></xml>
//
// with exactly these children, in any order, with or without whitespace
// between them and around the root, each value either one CDATA section or
// text without markup; Encrypt is base64, MsgSignature lower-case hex,
// TimeStamp a decimal number written without leading zeros, Nonce
// alphanumeric, CreateTime decimal, and every text value valid XML text
// that reads back as it is written. No declaration, comment, attribute,
// entity or other element: those take the full path.
func (v *Verifier) fastAccept(buf *checkBuffers, openID string, body []byte) bool {
	els, ok := scanFlat(body, buf.elements[:0])
	if !ok || len(els) != 4 {
		return false
	}
	var encrypt, signature, timestamp, nonce []byte
	var seen uint
	for _, el := range els {
		var bit uint
		switch string(el.name) {
		case "Encrypt":
			bit, encrypt = 1, el.value
			ok = len(el.value) > 0 && allIn(el.value, &base64Chars)
		case "MsgSignature":
			bit, signature = 2, el.value
			ok = len(el.value) == 40 && allIn(el.value, &lowerHexChars)
		case "TimeStamp":
			// The signature covers the timestamp as fullCheck re-formats
			// it from the parsed number: only the canonical form is the
			// same bytes.
			bit, timestamp = 4, el.value
			ok = isDecimal(el.value) && (el.value[0] != '0' || len(el.value) == 1)
		case "Nonce":
			bit, nonce = 8, el.value
			ok = len(el.value) > 0 && allIn(el.value, &alphanumericChars)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	if !bytes.Equal(buf.signer.sign(v.token, timestamp, nonce, encrypt), signature) {
		return false
	}
	plain, _, err := v.crypter.Decrypt(string(encrypt))
	if err != nil {
		return false
	}

	els, ok = scanFlat(plain, buf.elements[:0])
	if !ok || len(els) != 5 {
		return false
	}
	seen = 0
	for _, el := range els {
		var bit uint
		switch string(el.name) {
		case "ToUserName":
			bit, ok = 1, string(el.value) == openID && isLiteralText(el)
		case "FromUserName":
			bit, ok = 2, (v.acct.OriginalID == "" || string(el.value) == v.acct.OriginalID) && isLiteralText(el)
		case "CreateTime":
			bit, ok = 4, isDecimal(el.value)
		case "MsgType":
			bit, ok = 8, string(el.value) == "text"
		case "Content":
			bit, ok = 16, len(el.value) > 0 && isLiteralText(el)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return true
}

// scanFlat splits doc, <xml> children </xml> with only whitespace around,
// into its children, appended to out (at most its capacity of them). It
// reports false for anything else.
func scanFlat(doc []byte, out []flatElement) ([]flatElement, bool) {
	doc = bytes.Trim(doc, xmlSpace)
	const open, end = "<xml>", "</xml>"
	if len(doc) < len(open)+len(end) || string(doc[:len(open)]) != open || string(doc[len(doc)-len(end):]) != end {
		return nil, false
	}
	rest := doc[len(open) : len(doc)-len(end)]
	for {
		rest = bytes.TrimLeft(rest, xmlSpace)
		if len(rest) == 0 {
			return out, true
		}
		if len(out) == cap(out) {
			return nil, false
		}
		el, after, ok := cutElement(rest)
		if !ok {
			return nil, false
		}
		out = append(out, el)
		rest = after
	}
}

const xmlSpace = " \t\r\n"

// cutElement reads <Name>value</Name> at the start of s, Name made of ASCII
// letters, value one CDATA section or text up to the next '<'.
func cutElement(s []byte) (el flatElement, rest []byte, ok bool) {
	if len(s) == 0 || s[0] != '<' {
		return el, nil, false
	}
	i := 1
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i == 1 || i == len(s) || s[i] != '>' {
		return el, nil, false
	}
	el.name, s = s[1:i], s[i+1:]
	const cdataOpen, cdataEnd = "<![CDATA[", "]]>"
	if bytes.HasPrefix(s, []byte(cdataOpen)) {
		s = s[len(cdataOpen):]
		n := bytes.Index(s, []byte(cdataEnd))
		if n < 0 {
			return el, nil, false
		}
		el.value, el.cdata, s = s[:n], true, s[n+len(cdataEnd):]
	} else {
		n := bytes.IndexByte(s, '<')
		if n < 0 {
			return el, nil, false
		}
		el.value, s = s[:n], s[n:]
	}
	// The closing tag must follow at once.
	n := len(el.name)
	if len(s) < n+3 || s[0] != '<' || s[1] != '/' || !bytes.Equal(s[2:2+n], el.name) || s[2+n] != '>' {
		return el, nil, false
	}
	return el, s[n+3:], true
}

// isLiteralText reports whether encoding/xml reads el's value as exactly
// its bytes: valid UTF-8 of characters XML allows, no carriage return (read
// as a line feed) and, outside CDATA, no '&' (an entity) nor ']' (an
// unescaped "]]>" is an error).
func isLiteralText(el flatElement) bool {
	v := el.value
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\r', c < 0x20 && c != '\t' && c != '\n':
				return false
			case !el.cdata && (c == '&' || c == ']'):
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			return false
		}
		i += size
	}
	return true
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// isDecimal reports whether b is 1 to 18 decimal digits: an int64, whatever
// the digits.
func isDecimal(b []byte) bool {
	return len(b) > 0 && len(b) <= 18 && allIn(b, &digitChars)
}

// Byte classes of the envelope's values.
var base64Chars, lowerHexChars, alphanumericChars, digitChars = func() (b64, hex, alnum, digits [256]bool) {
	for c := range 256 {
		digits[c] = c >= '0' && c <= '9'
		hex[c] = digits[c] || c >= 'a' && c <= 'f'
		alnum[c] = digits[c] || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		b64[c] = alnum[c] || c == '+' || c == '/' || c == '='
	}
	return b64, hex, alnum, digits
}()

func allIn(b []byte, class *[256]bool) bool {
	for _, c := range b {
		if !class[c] {
			return false
		}
	}
	return true
}
