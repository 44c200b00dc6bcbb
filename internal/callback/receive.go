package callback

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// inbound is a push that passed every check.
type inbound struct {
	msg *wechat.Message
	// raw is the push (XML, or JSON) as WeChat wrote it, decrypted in
	// encrypted modes.
	raw []byte
	// encrypted requests get encrypted replies, sealed with the key that
	// opened the request and the request's nonce.
	encrypted bool
	keyIndex  int
	nonce     string
	// json: a Mini Program that chose the JSON data format. Such a push
	// gets no passive reply ("success"): a Mini Program shows none.
	json bool
}

// receive handles a push: open it, then dispatch it.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// The log's writer waits for announced pushes only (Expect).
	h.expect()
	a, e := h.lookup(r)
	if e != nil {
		h.arrived()
		h.refuse(w, r, nil, e, start)
		return
	}
	in, e := h.open(a, w, r)
	if e != nil {
		h.arrived()
		h.refuse(w, r, a, e, start)
		return
	}
	h.dispatch(w, r, a, in, start) // calls arrived before it logs the push
}

// open verifies, reads and decrypts a push. The checks run cheapest first
// and all of them before anything is stored. The mode is the account's
// configured one: a query saying otherwise cannot downgrade a safe-mode
// account to plaintext.
func (h *Handler) open(a *account, w http.ResponseWriter, r *http.Request) (*inbound, *problem.Error) {
	q := parseCallbackQuery(r.URL)
	signature, timestamp, nonce := q.signature, q.timestamp, q.nonce
	if signature == "" {
		return nil, errMissingSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, errInvalidTimestamp
	}
	if !wechat.VerifySignature(a.cfg.Token, timestamp, nonce, signature) {
		return nil, errInvalidSignature
	}
	// The window is checked after the signature so only requests signed
	// with the Token can probe it; wide enough for WeChat's retries.
	if skew := h.now().Sub(time.Unix(ts, 0)); skew > h.window || skew < -h.window {
		return nil, errStaleTimestamp
	}
	if a.mode == config.ModeSafe && q.encryptType != "aes" {
		return nil, errEncryptionRequired
	}

	body, e := h.readBody(w, r)
	if e != nil {
		return nil, e
	}
	// outer is the body's plain part; in safe mode the usual body is only
	// the envelope, whose Encrypt is taken without a full XML decode (the
	// costliest step of a push after the crypto). What it takes is checked
	// by msg_signature like any other.
	var (
		outer   *wechat.Message
		encrypt string
	)
	// A Mini Program may choose JSON; its decrypted content is JSON too.
	isJSON := looksLikeJSON(body)
	parseOuter, parseInner := wechat.ParseMessage, parsePlain
	if isJSON {
		parseOuter, parseInner = wechat.ParseJSONMessage, wechat.ParseJSONMessage
	}
	if a.mode == config.ModeSafe && !isJSON {
		encrypt, _ = safeEnvelope(body)
	}
	if encrypt == "" {
		if outer, err = parseOuter(body); err != nil {
			return nil, errMalformedBody
		}
		encrypt = outer.Encrypt
	}

	in := &inbound{nonce: nonce, json: isJSON}
	if a.mode == config.ModePlaintext {
		if outer.Encrypt != "" && outer.MsgType == "" {
			// A safe-mode body: WeChat's console and wxgate disagree.
			return nil, errModeMismatch
		}
		outer.Encrypt = ""
		in.msg, in.raw = outer, body
	} else {
		if encrypt == "" {
			return nil, errEncryptionRequired
		}
		if !wechat.VerifyMsgSignature(a.cfg.Token, timestamp, nonce, encrypt, q.msgSignature) {
			return nil, errInvalidMsgSignature
		}
		plain, keyIndex, err := a.crypter.Decrypt(encrypt)
		if err != nil {
			if wechat.IsCryptoCode(err, wechat.CodeValidateAppID) {
				return nil, errAppIDMismatch
			}
			return nil, errDecryptFailed
		}
		msg, err := parseInner(plain)
		if err != nil {
			return nil, errMalformedBody
		}
		// In compatible mode the plain fields travel unsigned beside the
		// signed, encrypted copy; only the copy is used, and a body whose
		// two halves disagree is refused as tampered.
		if a.mode == config.ModeCompatible && !agree(outer, msg) {
			return nil, errCompatibleMismatch
		}
		in.msg, in.raw, in.encrypted, in.keyIndex = msg, plain, true, keyIndex
	}

	if in.msg.FromUserName == "" || in.msg.MsgType == "" {
		return nil, errMalformedBody
	}
	if a.cfg.OriginalID != "" && in.msg.ToUserName != a.cfg.OriginalID {
		return nil, errToUserMismatch
	}
	return in, nil
}

// callbackQuery is what a push's query string carries.
type callbackQuery struct {
	signature, timestamp, nonce, encryptType, msgSignature string
}

// parseCallbackQuery reads the query parameters of a push, as
// url.Values.Get would (the first value of each). WeChat's query needs no
// unescaping, and such a query is read in place without building the
// url.Values map; any other goes through url.ParseQuery.
func parseCallbackQuery(u *url.URL) callbackQuery {
	var q callbackQuery
	raw := u.RawQuery
	if strings.ContainsAny(raw, "%+;") {
		v := u.Query()
		return callbackQuery{v.Get("signature"), v.Get("timestamp"), v.Get("nonce"), v.Get("encrypt_type"), v.Get("msg_signature")}
	}
	var seen [5]bool
	first := func(i int, dst *string, value string) {
		if !seen[i] {
			seen[i], *dst = true, value
		}
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		key, value, _ := strings.Cut(pair, "=")
		switch key {
		case "signature":
			first(0, &q.signature, value)
		case "timestamp":
			first(1, &q.timestamp, value)
		case "nonce":
			first(2, &q.nonce, value)
		case "encrypt_type":
			first(3, &q.encryptType, value)
		case "msg_signature":
			first(4, &q.msgSignature, value)
		}
	}
	return q
}

// readBody reads at most max_body_bytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *problem.Error) {
	if r.ContentLength > h.maxBody {
		return nil, errBodyTooLarge
	}
	size := r.ContentLength
	if size <= 0 || size > h.maxBody {
		size = 4 << 10
	}
	// Room for the whole body plus the read that sees EOF, so the buffer
	// never grows (bytes.Buffer wants MinRead bytes free per read).
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errBodyTooLarge
	case err != nil && !errors.Is(err, io.EOF):
		return nil, errMalformedBody
	case buf.Len() == 0:
		return nil, errMalformedBody
	}
	return buf.Bytes(), nil
}

// agree reports whether the plain fields of a compatible-mode body match
// the decrypted message, for every field the plain part carries.
func agree(plain, decrypted *wechat.Message) bool {
	str := func(p, d string) bool { return p == "" || p == d }
	num := func(p, d int64) bool { return p == 0 || p == d }
	return str(plain.ToUserName, decrypted.ToUserName) &&
		str(plain.FromUserName, decrypted.FromUserName) &&
		num(plain.CreateTime, decrypted.CreateTime) &&
		str(plain.MsgType, decrypted.MsgType) &&
		num(plain.MsgID, decrypted.MsgID) &&
		str(plain.Event, decrypted.Event) &&
		str(plain.EventKey, decrypted.EventKey) &&
		str(plain.Content, decrypted.Content)
}

var (
	xmlOpen      = []byte("<xml>")
	xmlClose     = []byte("</xml>")
	encryptOpen  = []byte("<Encrypt><![CDATA[")
	encryptClose = []byte("]]></Encrypt>")
)

// safeEnvelope extracts the Encrypt value of a safe-mode body shaped as
// WeChat writes it: <xml>…<Encrypt><![CDATA[base64]]></Encrypt>…</xml>,
// with Encrypt once. Anything else reports false and goes through the XML
// decoder.
func safeEnvelope(body []byte) (string, bool) {
	b := bytes.TrimSpace(body)
	if !bytes.HasPrefix(b, xmlOpen) || !bytes.HasSuffix(b, xmlClose) {
		return "", false
	}
	start := bytes.Index(b, encryptOpen)
	if start < 0 {
		return "", false
	}
	rest := b[start+len(encryptOpen):]
	end := bytes.Index(rest, encryptClose)
	if end <= 0 || bytes.Contains(rest[end:], []byte("<Encrypt")) || bytes.Contains(b[:start], []byte("<Encrypt")) {
		return "", false
	}
	enc := rest[:end]
	for _, c := range enc {
		if !base64Alphabet[c] {
			return "", false
		}
	}
	return string(enc), true
}

// base64Alphabet marks the bytes of standard Base64: one table load per
// byte of an Encrypt value.
var base64Alphabet = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
	}
	return t
}()

var (
	cdataOpen  = []byte("<![CDATA[")
	cdataClose = []byte("]]>")
)

// looksLikeJSON tells a Mini Program's JSON push from XML by its first
// byte: the Content-Type WeChat sends is not reliable.
func looksLikeJSON(body []byte) bool {
	b := trimXMLSpace(body)
	return len(b) > 0 && b[0] == '{'
}

// parsePlain parses a decrypted push: the usual flat one (a text message,
// a menu click) directly, anything else with wechat.ParseMessage.
func parsePlain(body []byte) (*wechat.Message, error) {
	if m, ok := parseFlatMessage(body); ok {
		return m, nil
	}
	return wechat.ParseMessage(body)
}

// parseFlatMessage reads a push shaped as WeChat writes the common ones:
// <xml>, then only elements of the fields setFlatField knows, once each,
// each holding one CDATA section or plain ASCII text, and nothing but
// white space around them. It yields what wechat.ParseMessage yields; any
// other shape (entities, attributes, nesting, carriage returns, characters
// XML does not allow, numbers with signs or spaces…) reports false and is
// left to ParseMessage, so that every edge case keeps one reading.
func parseFlatMessage(body []byte) (*wechat.Message, bool) {
	b := trimXMLSpace(body)
	if !bytes.HasPrefix(b, xmlOpen) {
		return nil, false
	}
	b = b[len(xmlOpen):]
	m := &wechat.Message{XMLName: xml.Name{Local: "xml"}}
	var seen uint32
	for {
		b = trimXMLSpace(b)
		if bytes.Equal(b, xmlClose) {
			return m, true
		}
		if len(b) < 2 || b[0] != '<' {
			return nil, false
		}
		end := bytes.IndexByte(b, '>')
		if end < 2 {
			return nil, false
		}
		name := b[1:end]
		b = b[end+1:]
		var value []byte
		if bytes.HasPrefix(b, cdataOpen) {
			rest := b[len(cdataOpen):]
			stop := bytes.Index(rest, cdataClose)
			if stop < 0 || !flatCDATA(rest[:stop]) {
				return nil, false
			}
			value, b = rest[:stop], rest[stop+len(cdataClose):]
		} else {
			stop := 0
			for stop < len(b) && flatTextByte[b[stop]] {
				stop++
			}
			value, b = b[:stop], b[stop:]
		}
		if len(b) < len(name)+3 || b[0] != '<' || b[1] != '/' || !bytes.Equal(b[2:2+len(name)], name) || b[2+len(name)] != '>' {
			return nil, false
		}
		b = b[3+len(name):]
		bit, ok := setFlatField(m, name, value)
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
}

// setFlatField stores value in the field of element name; it reports the
// field's bit and false for an element it does not handle.
func setFlatField(m *wechat.Message, name, value []byte) (uint32, bool) {
	var ok bool
	switch string(name) {
	case "ToUserName":
		m.ToUserName = string(value)
		return 1 << 0, true
	case "FromUserName":
		m.FromUserName = string(value)
		return 1 << 1, true
	case "CreateTime":
		m.CreateTime, ok = flatInt(value)
		return 1 << 2, ok
	case "MsgType":
		m.MsgType = string(value)
		return 1 << 3, true
	case "MsgId":
		m.MsgID, ok = flatInt(value)
		return 1 << 4, ok
	case "MsgDataId":
		m.MsgDataID = string(value)
		return 1 << 5, true
	case "Idx":
		m.Idx, ok = flatInt(value)
		return 1 << 6, ok
	case "Content":
		m.Content = string(value)
		return 1 << 7, true
	case "Event":
		m.Event = string(value)
		return 1 << 8, true
	case "EventKey":
		m.EventKey = string(value)
		return 1 << 9, true
	}
	return 0, false
}

// flatInt reads plain decimal digits, as encoding/xml reads them into an
// int64; anything else (signs, spaces, overflow, nothing) is for the
// decoder to judge.
func flatInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// flatCDATA reports whether CDATA content reads back as it is: valid UTF-8
// of characters XML allows, without the carriage returns a parser turns
// into line feeds.
func flatCDATA(v []byte) bool {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 || r > 0xD7FF && r < 0xE000 || r == 0xFFFE || r == 0xFFFF {
			return false
		}
		i += size
	}
	return true
}

// flatTextByte marks the bytes plain element text may have on the direct
// path: printable ASCII but markup and entities, tab and line feed.
var flatTextByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '<' && c != '>' && c != '&' && c != ']'
	}
	t['\t'], t['\n'] = true, true
	return t
}()

// trimXMLSpace drops the white space XML allows around elements.
func trimXMLSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\n\r")
}
