package wechat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EncodeJSONMessage renders a push in a Mini Program's JSON data format, as
// WeChat writes it: the XML's element names as keys, numbers as numbers,
// a subscription-message event's List at the top level, an object when it
// holds one item and an array otherwise, and each subscribe_msg_sent_event
// item's ErrorCode written even when 0 (a success). ParseJSONMessage reads
// it back.
func EncodeJSONMessage(m *Message) ([]byte, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode JSON push: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("encode JSON push: %w", err)
	}
	if container := listContainers[m.Event]; container != "" {
		if ev, ok := fields[container].(map[string]any); ok {
			delete(fields, container)
			items, _ := ev["List"].([]any)
			if m.Event == EventSubscribeMsgSent {
				for _, it := range items {
					if item, ok := it.(map[string]any); ok && item["ErrorCode"] == nil {
						item["ErrorCode"] = 0
					}
				}
			}
			if len(items) == 1 {
				fields["List"] = items[0]
			} else {
				fields["List"] = items
			}
		}
	}
	return json.Marshal(fields)
}

// EncodeMessage renders a push as WeChat writes it: root <xml>, text values in
// CDATA, numbers bare, empty optional elements left out. The simulator uses it
// to post callbacks; tests use it to build fixtures.
func EncodeMessage(m *Message) []byte {
	var buf bytes.Buffer
	buf.WriteString("<xml>")
	encodeFields(&buf, reflect.ValueOf(m).Elem(), true)
	buf.WriteString("</xml>")
	return buf.Bytes()
}

// alwaysWritten are header elements written even when empty or zero.
var alwaysWritten = map[string]bool{"ToUserName": true, "FromUserName": true, "CreateTime": true, "MsgType": true}

func encodeFields(buf *bytes.Buffer, v reflect.Value, top bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("xml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || f.Name == "XMLName" {
			continue
		}
		fv := v.Field(i)
		if fv.IsZero() && !(top && alwaysWritten[name]) {
			continue
		}
		// Sub-element paths like "PicList>item" wrap each item in the outer element.
		outer, inner, nested := strings.Cut(name, ">")
		if nested {
			buf.WriteString("<" + outer + ">")
			encodeValue(buf, inner, fv)
			buf.WriteString("</" + outer + ">")
			continue
		}
		encodeValue(buf, name, fv)
	}
}

func encodeValue(buf *bytes.Buffer, name string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			encodeValue(buf, name, v.Elem())
		}
	case reflect.Slice:
		for j := 0; j < v.Len(); j++ {
			encodeValue(buf, name, v.Index(j))
		}
	case reflect.Struct:
		buf.WriteString("<" + name + ">")
		encodeFields(buf, v, false)
		buf.WriteString("</" + name + ">")
	case reflect.String:
		buf.WriteString("<" + name + ">")
		writeCDATA(buf, v.String())
		buf.WriteString("</" + name + ">")
	case reflect.Int64, reflect.Int:
		buf.WriteString("<" + name + ">" + strconv.FormatInt(v.Int(), 10) + "</" + name + ">")
	case reflect.Float64:
		buf.WriteString("<" + name + ">" + strconv.FormatFloat(v.Float(), 'f', -1, 64) + "</" + name + ">")
	}
}

// writeCDATA writes s as CDATA when CDATA carries it verbatim.
func writeCDATA(buf *bytes.Buffer, s string) {
	if !strings.Contains(s, "]]>") && !strings.ContainsRune(s, '\r') && isXMLText(s) {
		buf.WriteString("<![CDATA[" + s + "]]>")
		return
	}
	// Escaped text for the rare value CDATA cannot hold: "]]>" would end the
	// section, a parser turns a raw \r into \n, and characters outside XML's
	// range (and invalid UTF-8) would make the document invalid; EscapeText
	// writes &#xD; for the first two and U+FFFD for the last.
	_ = xml.EscapeText(buf, []byte(s))
}

// isXMLText reports whether s is valid UTF-8 made only of characters XML 1.0
// allows.
func isXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !isXMLChar(r) {
			return false
		}
	}
	return true
}

// xmlText replaces invalid UTF-8 and characters XML 1.0 cannot carry with
// U+FFFD, so that text put into CDATA keeps the document well-formed.
func xmlText(s string) string {
	if isXMLText(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isXMLChar(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
