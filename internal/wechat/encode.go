package wechat

import (
	"bytes"
	"encoding/xml"
	"reflect"
	"strconv"
	"strings"
)

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

// writeCDATA writes s as CDATA, splitting any "]]>" so the section stays valid.
func writeCDATA(buf *bytes.Buffer, s string) {
	if !strings.Contains(s, "]]>") {
		buf.WriteString("<![CDATA[" + s + "]]>")
		return
	}
	// Fall back to escaped text for the rare value that would end the section.
	_ = xml.EscapeText(buf, []byte(s))
}
