package wechat

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// MessageJSON is json.Marshal(m), byte for byte, written without
// reflection for the pushes that make most of the traffic: text, image,
// voice, video and link messages and the plain events, whose fields are
// strings and integers. A push with a coordinate or a nested element
// (location, scancode, pictures, subscription and mass-send reports) goes
// through encoding/json. The message log stores this for every push, and
// encoding/json's reflection was a noticeable part of a callback's CPU
// (docs/benchmarks.md).
func MessageJSON(m *Message) ([]byte, error) {
	if m.LocationX != 0 || m.LocationY != 0 || m.Scale != 0 ||
		m.Latitude != 0 || m.Longitude != 0 || m.Precision != 0 ||
		m.ScanCodeInfo != nil || m.SendPicsInfo != nil || m.SendLocationInfo != nil ||
		m.CopyrightCheckResult != nil || m.ArticleURLResult != nil ||
		m.SubscribeMsgPopupEvent != nil || m.SubscribeMsgChangeEvent != nil || m.SubscribeMsgSentEvent != nil ||
		m.PublishEventInfo != nil {
		return json.Marshal(m)
	}
	o := jsonObject{buf: make([]byte, 0, 256)}
	// The fields in declaration order, as encoding/json writes them; a test
	// checks that every string and integer field of Message is here.
	o.str("ToUserName", m.ToUserName)
	o.str("FromUserName", m.FromUserName)
	o.int("CreateTime", m.CreateTime)
	o.str("MsgType", m.MsgType)
	o.int("MsgId", m.MsgID)
	o.str("MsgDataId", m.MsgDataID)
	o.int("Idx", m.Idx)
	o.str("Content", m.Content)
	o.str("bizmsgmenuid", m.BizMsgMenuID)
	o.str("PicUrl", m.PicURL)
	o.str("MediaId", m.MediaID)
	o.str("Format", m.Format)
	o.str("MediaId16K", m.MediaID16K)
	o.str("Recognition", m.Recognition)
	o.str("ThumbMediaId", m.ThumbMediaID)
	o.str("Label", m.Label)
	o.str("Title", m.Title)
	o.str("Description", m.Description)
	o.str("Url", m.URL)
	o.str("AppId", m.AppID)
	o.str("PagePath", m.PagePath)
	o.str("ThumbUrl", m.ThumbURL)
	o.str("Event", m.Event)
	o.str("EventKey", m.EventKey)
	o.str("Ticket", m.Ticket)
	o.str("MenuId", m.MenuID)
	o.int("MsgID", m.JobMsgID)
	o.str("Status", m.Status)
	o.int("TotalCount", m.TotalCount)
	o.int("FilterCount", m.FilterCount)
	o.int("SentCount", m.SentCount)
	o.int("ErrorCount", m.ErrorCount)
	o.str("KfAccount", m.KfAccount)
	o.str("FromKfAccount", m.FromKfAccount)
	o.str("ToKfAccount", m.ToKfAccount)
	o.str("SessionFrom", m.SessionFrom)
	o.str("Encrypt", m.Encrypt)
	return o.close(), nil
}

// jsonObject writes one JSON object of omitempty fields.
type jsonObject struct{ buf []byte }

func (o *jsonObject) key(name string) {
	if len(o.buf) == 0 {
		o.buf = append(o.buf, '{')
	} else {
		o.buf = append(o.buf, ',')
	}
	o.buf = append(o.buf, '"')
	o.buf = append(o.buf, name...)
	o.buf = append(o.buf, '"', ':')
}

func (o *jsonObject) str(name, v string) {
	if v == "" {
		return
	}
	o.key(name)
	o.buf = appendJSONString(o.buf, v)
}

func (o *jsonObject) int(name string, v int64) {
	if v == 0 {
		return
	}
	o.key(name)
	o.buf = strconv.AppendInt(o.buf, v, 10)
}

func (o *jsonObject) close() []byte {
	if len(o.buf) == 0 {
		return append(o.buf, '{', '}')
	}
	return append(o.buf, '}')
}

// appendJSONString quotes s as encoding/json does by default: HTML
// characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029
// escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
