package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// The seeds below run in every plain `go test`; `go test -fuzz=FuzzX` explores
// from them.

// fuzzCrypters are one Crypter per (AppID, key) of the vectors, plus one in
// the middle of a key rotation.
var fuzzCrypters = sync.OnceValue(func() []*Crypter {
	vs, err := loadVectorFile()
	if err != nil {
		panic(err)
	}
	seen := map[string]bool{}
	var cs []*Crypter
	for _, v := range vs {
		if seen[v.AppID+v.EncodingAESKey] {
			continue
		}
		seen[v.AppID+v.EncodingAESKey] = true
		c, err := NewCrypter(v.AppID, v.EncodingAESKey)
		if err != nil {
			panic(err)
		}
		cs = append(cs, c)
	}
	rotated, err := NewCrypter("wx2c2769f8efd9abc2", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
	if err != nil {
		panic(err)
	}
	return append(cs, rotated)
})

const fuzzKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
const fuzzAppID = "wx2c2769f8efd9abc2"

// openOracle is the scheme's decryption rule written out independently:
// valid pad 1..32, at least 20 bytes, msg_len within bounds, trailing id equal
// to the AppID.
func openOracle(plain []byte, appID string) ([]byte, bool) {
	if len(plain) == 0 {
		return nil, false
	}
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 32 || pad > len(plain) {
		return nil, false
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < 20 {
		return nil, false
	}
	n := uint64(binary.BigEndian.Uint32(plain[16:20]))
	if n > uint64(len(plain)-20) {
		return nil, false
	}
	if string(plain[20+n:]) != appID {
		return nil, false
	}
	return plain[20 : 20+n], true
}

func FuzzDecrypt(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Encrypt, []byte(v.Msg))
	}
	f.Add("", []byte{})
	f.Add("AAAA", []byte{0})
	f.Add("====", bytes.Repeat([]byte{32}, 32))
	f.Add("not base64!", []byte("0123456789abcdef\x00\x00\x00\x05hellowx2c2769f8efd9abc2\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15"))
	f.Add(vectorByName(f, "V1").Encrypt[:40], []byte("0123456789abcdef\xff\xff\xff\xff"))

	f.Fuzz(func(t *testing.T, encrypted string, raw []byte) {
		// 1. Arbitrary Encrypt strings: never panic; whatever opens re-seals
		// to something that opens to the same message with the same key.
		for _, c := range fuzzCrypters() {
			msg, idx, err := c.Decrypt(encrypted)
			if err != nil {
				var ce *CryptoError
				if !errors.As(err, &ce) {
					t.Fatalf("Decrypt error %v is not a *CryptoError", err)
				}
				continue
			}
			again, err := c.Encrypt(msg, idx)
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			back, idx2, err := c.Decrypt(again)
			if err != nil || !bytes.Equal(back, msg) || idx2 != idx {
				t.Fatalf("re-encrypted message opened as %q, %d, %v; want %q, %d", back, idx2, err, msg, idx)
			}
		}

		// 2. Raw bytes as ciphertext.
		for _, c := range fuzzCrypters() {
			_, _, _ = c.Decrypt(base64.StdEncoding.EncodeToString(raw))
		}

		// 3. Raw bytes as the decrypted plaintext: Decrypt agrees with the
		// oracle on every framing (pad, length field, trailing id).
		c := mustCrypter(t, fuzzAppID, fuzzKey)
		if n := len(raw) &^ 15; n > 0 {
			plain := raw[:n]
			msg, _, err := c.Decrypt(sealRaw(t, fuzzKey, plain))
			want, ok := openOracle(plain, fuzzAppID)
			if ok != (err == nil) {
				t.Fatalf("Decrypt error %v, oracle ok=%v for plaintext %x", err, ok, plain)
			}
			if ok && !bytes.Equal(msg, want) {
				t.Fatalf("Decrypt = %q, oracle %q", msg, want)
			}
		}

		// 4. Raw bytes as a message: sealing and opening is the identity.
		random := make([]byte, 16)
		copy(random, raw)
		enc, err := c.EncryptWithRandom(random, raw, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := c.Decrypt(enc)
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("round trip of %q gave %q, %v", raw, back, err)
		}
	})
}

// messagesEqual compares messages, an empty list being the same as none
// (JSON's [] against XML's absent items). ParseMessage refuses NaN, so
// reflect.DeepEqual is exact otherwise.
func messagesEqual(a, b *Message) bool {
	return reflect.DeepEqual(canonical(reflect.ValueOf(a)).Interface(), canonical(reflect.ValueOf(b)).Interface())
}

// canonical deep-copies v with empty slices made nil.
func canonical(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(canonical(v.Elem()))
		return p
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range c.NumField() {
			if c.Type().Field(i).IsExported() {
				c.Field(i).Set(canonical(v.Field(i)))
			}
		}
		return c
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(canonical(v.Index(i)))
		}
		return c
	}
	return v
}

func addMessageSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "messages", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Msg))
	}
	v1 := vectorByName(f, "V1")
	f.Add(CompatibleModeBody([]byte(v1.Msg), v1.Encrypt))
	f.Add(SafeModeBody("gh_97417a04a28d", v1.Encrypt))
	for _, s := range []string{
		`<xml xmlns="urn:x"><Content>namespaced</Content></xml>`,
		`<xml><Content>cr&#13;lf&#10;</Content><MsgType>text</MsgType></xml>`,
		`<xml><Content>a]]&gt;b</Content></xml>`,
		`<xml><Latitude>NaN</Latitude></xml>`,
		`<xml><SendPicsInfo><PicList></PicList></SendPicsInfo></xml>`,
		`<xml><SubscribeMsgPopupEvent/></xml>`,
		`<xml><CreateTime> 12 </CreateTime><MsgId>+7</MsgId></xml>`,
		`<xml><MsgId>1</MsgId><MsgId>2</MsgId></xml>`,
		`<xml><PublishEventInfo><fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo></xml>`,
	} {
		f.Add([]byte(s))
	}
}

func FuzzParseMessage(f *testing.F) {
	addMessageSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error %v does not wrap ErrMalformedMessage", err)
			}
			return
		}
		m.QRScene()
		TemplateJobStatus(m.Status)

		// EncodeMessage → ParseMessage is the identity on parsed messages, and
		// EncodeMessage is stable.
		enc := EncodeMessage(m)
		back, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("EncodeMessage wrote what ParseMessage rejects: %v\n%q", err, enc)
		}
		if !messagesEqual(m, back) {
			t.Fatalf("round trip changed the message\n got: %#v\nwant: %#v\nxml: %q", back, m, enc)
		}
		if again := EncodeMessage(back); !bytes.Equal(again, enc) {
			t.Fatalf("EncodeMessage not stable\n%q\n%q", enc, again)
		}
		if m.DedupKey() != back.DedupKey() {
			t.Fatalf("DedupKey changed: %s vs %s", m.DedupKey(), back.DedupKey())
		}

		// The JSON form carries the same message.
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		fromJSON, err := ParseJSONMessage(js)
		if err != nil {
			t.Fatalf("ParseJSONMessage(json.Marshal(m)): %v\n%s", err, js)
		}
		if !messagesEqual(m, fromJSON) {
			t.Fatalf("JSON round trip changed the message\n got: %#v\nwant: %#v\njson: %s", fromJSON, m, js)
		}
	})
}

func FuzzParseJSONMessage(f *testing.F) {
	for _, s := range []string{
		vectorByName(f, "V4").Msg,
		`{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c=="}`,
		`{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":"1482048670","MsgType":"location","Location_X":"23.134521","Location_Y":"113.358803","Scale":"20","Label":"位置","MsgId":"6054768590064713728","Idx":""}`,
		`{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_popup_event","List":{"PopupScene":"0","SubscribeStatusString":"accept","TemplateId":"T"}}`,
		`{"Event":"subscribe_msg_popup_event","List":[{"PopupScene":"1","TemplateId":"T1"},{"PopupScene":2,"TemplateId":"T2"}]}`,
		`{"Event":"subscribe_msg_sent_event","List":{"TemplateId":"T1","MsgID":"1700827132819554304","ErrorCode":"0"}}`,
		`{"Event":"subscribe_msg_change_event","SubscribeMsgChangeEvent":{"List":{"TemplateId":"T1"}}}`,
		`{"MsgType":"text","Content":"nul\u0000 cr\r ]]> \ud800"}`,
		`{"SendPicsInfo":{"Count":"2","PicList":[{"PicMd5Sum":"a"}]}}`,
		`{"MsgId":"NaN"}`, `{"CreateTime":"1e3"}`, `null`, `[]`, `{"List":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseJSONMessage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error %v does not wrap ErrMalformedMessage", err)
			}
			return
		}
		m.DedupKey()
		m.QRScene()

		// Its JSON form parses back to the same message.
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		again, err := ParseJSONMessage(js)
		if err != nil {
			t.Fatalf("ParseJSONMessage(json.Marshal(m)): %v\n%s", err, js)
		}
		if !messagesEqual(m, again) {
			t.Fatalf("JSON round trip changed the message\n got: %#v\nwant: %#v", again, m)
		}

		// Any JSON push can be written as an XML push: always well-formed,
		// and stable from the first re-parse on (text XML cannot carry, such
		// as NUL, becomes U+FFFD once).
		enc := EncodeMessage(m)
		x, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("EncodeMessage wrote invalid XML: %v\n%q", err, enc)
		}
		if isXMLSafeMessage(m) && !messagesEqual(m, x) {
			t.Fatalf("XML form changed the message\n got: %#v\nwant: %#v", x, m)
		}
		x2, err := ParseMessage(EncodeMessage(x))
		if err != nil || !messagesEqual(x, x2) {
			t.Fatalf("XML form not stable: %v\n got: %#v\nwant: %#v", err, x2, x)
		}
	})
}

// isXMLSafeMessage reports whether every string of m is text XML carries
// exactly.
func isXMLSafeMessage(m *Message) bool {
	safe := true
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.String:
			if !isXMLText(v.String()) || strings.ContainsRune(v.String(), '\r') {
				safe = false
			}
		}
	}
	walk(reflect.ValueOf(m))
	return safe
}

func addReplySeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "replies", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v := vectorByName(f, "V5-reply")
	f.Add(SealedReplyXML(v.Token, v.Encrypt, 1713424427, v.Nonce))
	for _, s := range []string{"", "success", "<xml/>", `<xml xmlns="u"><MsgType>text</MsgType><Content>a&#13;b</Content></xml>`,
		`<xml><MsgType>news</MsgType><ArticleCount>9</ArticleCount><Articles><item><Title>t</Title></item></Articles></xml>`} {
		f.Add([]byte(s))
	}
}

// replyFromParsed turns a parsed reply back into the Reply that builds it.
func replyFromParsed(r *ParsedReply) Reply {
	switch r.MsgType {
	case "text":
		return TextReply{Content: r.Content}
	case "image":
		return ImageReply{MediaID: r.Image.MediaID}
	case "voice":
		return VoiceReply{MediaID: r.Voice.MediaID}
	case "video":
		return VideoReply{MediaID: r.Video.MediaID, Title: r.Video.Title, Description: r.Video.Description}
	case "music":
		return MusicReply{Title: r.Music.Title, Description: r.Music.Description, MusicURL: r.Music.MusicURL, HQMusicURL: r.Music.HQMusicURL, ThumbMediaID: r.Music.ThumbMediaID}
	case "news":
		var n NewsReply
		for _, a := range r.Articles {
			n.Articles = append(n.Articles, Article{Title: a.Title, Description: a.Description, PicURL: a.PicURL, URL: a.URL})
		}
		return n
	case "transfer_customer_service":
		return TransferCustomerServiceReply{KfAccount: r.TransInfo.KfAccount}
	}
	return nil
}

// crlf folds line ends the way an XML parser reads raw CDATA.
var crlf = strings.NewReplacer("\r\n", "\n", "\r", "\n")

func FuzzParseReply(f *testing.F) {
	addReplySeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		IsNoReply(body)
		r, err := ParseReply(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error %v does not wrap ErrMalformedMessage", err)
			}
			return
		}
		if r.Encrypt != "" {
			env := SealedReplyXML("token", r.Encrypt, r.TimeStamp, r.Nonce)
			e, err := ParseReply(env)
			if err != nil {
				t.Fatalf("SealedReplyXML wrote invalid XML: %v\n%q", err, env)
			}
			if e.Encrypt != crlf.Replace(r.Encrypt) || e.TimeStamp != r.TimeStamp || e.Nonce != crlf.Replace(r.Nonce) {
				t.Fatalf("envelope changed: %+v vs %+v", e, r)
			}
		}
		reply := replyFromParsed(r)
		if reply == nil {
			return
		}
		out, err := BuildReply(r.ToUserName, r.FromUserName, r.CreateTime, reply)
		if err != nil {
			return // news with 0 or >8 articles, music without thumb
		}
		back, err := ParseReply(out)
		if err != nil {
			t.Fatalf("BuildReply wrote invalid XML: %v\n%q", err, out)
		}
		// What the reply carries survives (line ends as a parser reads them).
		want := replyFromParsed(r)
		if got := replyFromParsed(back); !reflect.DeepEqual(got, normalizeReply(want)) {
			t.Fatalf("rebuilt reply differs\n got: %#v\nwant: %#v", got, want)
		}
		if back.ToUserName != crlf.Replace(r.ToUserName) || back.FromUserName != crlf.Replace(r.FromUserName) || back.CreateTime != r.CreateTime {
			t.Fatalf("header changed: %+v vs %+v", back, r)
		}
		if reply.MsgType() == "news" && back.ArticleCount != len(back.Articles) {
			t.Fatalf("ArticleCount %d for %d articles", back.ArticleCount, len(back.Articles))
		}
	})
}

// normalizeReply applies crlf to every string of a Reply value.
func normalizeReply(r Reply) Reply {
	v := reflect.New(reflect.TypeOf(r)).Elem()
	v.Set(reflect.ValueOf(r))
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice:
			if !v.IsNil() {
				s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
				reflect.Copy(s, v)
				v.Set(s)
				for i := range v.Len() {
					walk(v.Index(i))
				}
			}
		case reflect.String:
			v.SetString(crlf.Replace(v.String()))
		}
	}
	walk(v)
	return v.Interface().(Reply)
}
