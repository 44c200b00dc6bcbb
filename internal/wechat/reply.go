package wechat

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Reply is one of the seven passive reply kinds.
type Reply interface {
	// MsgType is the reply's MsgType element.
	MsgType() string
}

// TextReply answers with text; Content may contain \n and <a href> links.
type TextReply struct{ Content string }

// ImageReply answers with an uploaded image.
type ImageReply struct{ MediaID string }

// VoiceReply answers with an uploaded voice clip.
type VoiceReply struct{ MediaID string }

// VideoReply answers with an uploaded video; Title and Description are optional.
type VideoReply struct{ MediaID, Title, Description string }

// MusicReply answers with music; ThumbMediaID is required by WeChat.
type MusicReply struct{ Title, Description, MusicURL, HQMusicURL, ThumbMediaID string }

// NewsReply answers with article cards. WeChat shows one article when
// replying to a user message and up to eight for events.
type NewsReply struct{ Articles []Article }

// Article is one card of a NewsReply.
type Article struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	PicURL      string `json:"pic_url,omitempty"`
	URL         string `json:"url,omitempty"`
}

// TransferCustomerServiceReply hands the conversation to customer service,
// optionally to one kf account.
type TransferCustomerServiceReply struct{ KfAccount string }

func (TextReply) MsgType() string                    { return "text" }
func (ImageReply) MsgType() string                   { return "image" }
func (VoiceReply) MsgType() string                   { return "voice" }
func (VideoReply) MsgType() string                   { return "video" }
func (MusicReply) MsgType() string                   { return "music" }
func (NewsReply) MsgType() string                    { return "news" }
func (TransferCustomerServiceReply) MsgType() string { return "transfer_customer_service" }

// cdata makes encoding/xml write <![CDATA[…]]> as WeChat's samples do.
type cdata struct {
	Value string `xml:",cdata"`
}

type mediaXML struct {
	MediaID cdata `xml:"MediaId"`
}

type videoXML struct {
	MediaID     cdata  `xml:"MediaId"`
	Title       *cdata `xml:"Title,omitempty"`
	Description *cdata `xml:"Description,omitempty"`
}

type musicXML struct {
	Title        *cdata `xml:"Title,omitempty"`
	Description  *cdata `xml:"Description,omitempty"`
	MusicURL     *cdata `xml:"MusicUrl,omitempty"`
	HQMusicURL   *cdata `xml:"HQMusicUrl,omitempty"`
	ThumbMediaID cdata  `xml:"ThumbMediaId"`
}

type articleXML struct {
	Title       cdata `xml:"Title"`
	Description cdata `xml:"Description"`
	PicURL      cdata `xml:"PicUrl"`
	URL         cdata `xml:"Url"`
}

// articlesXML wraps the news items. A pointer to it (rather than an
// "Articles>item" path, which encoding/xml writes as an empty <Articles/> even
// when omitted) keeps the element out of the other reply kinds.
type articlesXML struct {
	Items []articleXML `xml:"item"`
}

type transInfoXML struct {
	KfAccount cdata `xml:"KfAccount"`
}

type replyXML struct {
	XMLName      xml.Name      `xml:"xml"`
	ToUserName   cdata         `xml:"ToUserName"`
	FromUserName cdata         `xml:"FromUserName"`
	CreateTime   int64         `xml:"CreateTime"`
	MsgType      cdata         `xml:"MsgType"`
	Content      *cdata        `xml:"Content,omitempty"`
	Image        *mediaXML     `xml:"Image,omitempty"`
	Voice        *mediaXML     `xml:"Voice,omitempty"`
	Video        *videoXML     `xml:"Video,omitempty"`
	Music        *musicXML     `xml:"Music,omitempty"`
	ArticleCount int           `xml:"ArticleCount,omitempty"`
	Articles     *articlesXML  `xml:"Articles,omitempty"`
	TransInfo    *transInfoXML `xml:"TransInfo,omitempty"`
}

// cdataText wraps s for CDATA, replacing characters XML cannot carry (control
// characters, invalid UTF-8) with U+FFFD: one stray byte must not turn the
// whole reply into a body WeChat rejects.
func cdataText(s string) cdata { return cdata{xmlText(s)} }

func optional(s string) *cdata {
	if s == "" {
		return nil
	}
	c := cdataText(s)
	return &c
}

// BuildReply renders a passive reply. to is the follower's openid (the push's
// FromUserName) and from the account's original id (the push's ToUserName).
func BuildReply(to, from string, createTime int64, r Reply) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("nil reply")
	}
	// Every callback with a reply comes here, so the usual reply is written
	// directly; the encoding/xml path below is the reference it must match
	// byte for byte, and it handles the text CDATA cannot carry as is.
	if out, ok := appendReply(nil, to, from, createTime, r); ok {
		return out, nil
	}
	return marshalReply(to, from, createTime, r)
}

// marshalReply renders a reply with encoding/xml.
func marshalReply(to, from string, createTime int64, r Reply) ([]byte, error) {
	x := replyXML{ToUserName: cdataText(to), FromUserName: cdataText(from), CreateTime: createTime, MsgType: cdataText(r.MsgType())}
	switch v := r.(type) {
	case TextReply:
		c := cdataText(v.Content)
		x.Content = &c
	case ImageReply:
		x.Image = &mediaXML{cdataText(v.MediaID)}
	case VoiceReply:
		x.Voice = &mediaXML{cdataText(v.MediaID)}
	case VideoReply:
		x.Video = &videoXML{MediaID: cdataText(v.MediaID), Title: optional(v.Title), Description: optional(v.Description)}
	case MusicReply:
		if v.ThumbMediaID == "" {
			return nil, fmt.Errorf("music reply needs a ThumbMediaID")
		}
		x.Music = &musicXML{Title: optional(v.Title), Description: optional(v.Description),
			MusicURL: optional(v.MusicURL), HQMusicURL: optional(v.HQMusicURL), ThumbMediaID: cdataText(v.ThumbMediaID)}
	case NewsReply:
		if len(v.Articles) == 0 || len(v.Articles) > 8 {
			return nil, fmt.Errorf("news reply needs 1 to 8 articles, got %d", len(v.Articles))
		}
		x.ArticleCount = len(v.Articles)
		x.Articles = &articlesXML{}
		for _, a := range v.Articles {
			x.Articles.Items = append(x.Articles.Items, articleXML{cdataText(a.Title), cdataText(a.Description), cdataText(a.PicURL), cdataText(a.URL)})
		}
	case TransferCustomerServiceReply:
		if v.KfAccount != "" {
			x.TransInfo = &transInfoXML{cdataText(v.KfAccount)}
		}
	default:
		return nil, fmt.Errorf("unknown reply kind %T", r)
	}
	return xml.Marshal(x)
}

// appendReply writes the reply the way marshalReply does, without
// reflection, when every text value goes into CDATA unchanged (see
// cdataSafe) and the reply is one BuildReply accepts; otherwise it reports
// false and the caller takes the encoding/xml path.
func appendReply(dst []byte, to, from string, createTime int64, r Reply) ([]byte, bool) {
	if !cdataSafe(to) || !cdataSafe(from) {
		return nil, false
	}
	switch v := r.(type) {
	case TextReply:
		if !cdataSafe(v.Content) {
			return nil, false
		}
		dst = grow(dst, replyHeaderSize+len(to)+len(from)+len(v.Content)+32)
		dst = appendReplyHeader(dst, to, from, createTime, "text")
		dst = appendElement(dst, "Content", v.Content)
	case ImageReply:
		if !cdataSafe(v.MediaID) {
			return nil, false
		}
		dst = appendReplyHeader(grow(dst, replyHeaderSize+len(to)+len(from)+len(v.MediaID)+48), to, from, createTime, "image")
		dst = append(dst, "<Image>"...)
		dst = appendElement(dst, "MediaId", v.MediaID)
		dst = append(dst, "</Image>"...)
	case VoiceReply:
		if !cdataSafe(v.MediaID) {
			return nil, false
		}
		dst = appendReplyHeader(grow(dst, replyHeaderSize+len(to)+len(from)+len(v.MediaID)+48), to, from, createTime, "voice")
		dst = append(dst, "<Voice>"...)
		dst = appendElement(dst, "MediaId", v.MediaID)
		dst = append(dst, "</Voice>"...)
	case VideoReply:
		if !cdataSafe(v.MediaID) || !cdataSafe(v.Title) || !cdataSafe(v.Description) {
			return nil, false
		}
		dst = appendReplyHeader(grow(dst, replyHeaderSize+len(to)+len(from)+len(v.MediaID)+len(v.Title)+len(v.Description)+128), to, from, createTime, "video")
		dst = append(dst, "<Video>"...)
		dst = appendElement(dst, "MediaId", v.MediaID)
		dst = appendOptional(dst, "Title", v.Title)
		dst = appendOptional(dst, "Description", v.Description)
		dst = append(dst, "</Video>"...)
	case MusicReply:
		if v.ThumbMediaID == "" || !cdataSafe(v.Title) || !cdataSafe(v.Description) || !cdataSafe(v.MusicURL) ||
			!cdataSafe(v.HQMusicURL) || !cdataSafe(v.ThumbMediaID) {
			return nil, false
		}
		dst = appendReplyHeader(grow(dst, replyHeaderSize+len(to)+len(from)+len(v.Title)+len(v.Description)+len(v.MusicURL)+len(v.HQMusicURL)+len(v.ThumbMediaID)+224), to, from, createTime, "music")
		dst = append(dst, "<Music>"...)
		dst = appendOptional(dst, "Title", v.Title)
		dst = appendOptional(dst, "Description", v.Description)
		dst = appendOptional(dst, "MusicUrl", v.MusicURL)
		dst = appendOptional(dst, "HQMusicUrl", v.HQMusicURL)
		dst = appendElement(dst, "ThumbMediaId", v.ThumbMediaID)
		dst = append(dst, "</Music>"...)
	case NewsReply:
		if len(v.Articles) == 0 || len(v.Articles) > 8 {
			return nil, false
		}
		size := replyHeaderSize + len(to) + len(from) + 64
		for _, a := range v.Articles {
			if !cdataSafe(a.Title) || !cdataSafe(a.Description) || !cdataSafe(a.PicURL) || !cdataSafe(a.URL) {
				return nil, false
			}
			size += 144 + len(a.Title) + len(a.Description) + len(a.PicURL) + len(a.URL)
		}
		dst = appendReplyHeader(grow(dst, size), to, from, createTime, "news")
		dst = append(dst, "<ArticleCount>"...)
		dst = strconv.AppendInt(dst, int64(len(v.Articles)), 10)
		dst = append(dst, "</ArticleCount><Articles>"...)
		for _, a := range v.Articles {
			dst = append(dst, "<item>"...)
			dst = appendElement(dst, "Title", a.Title)
			dst = appendElement(dst, "Description", a.Description)
			dst = appendElement(dst, "PicUrl", a.PicURL)
			dst = appendElement(dst, "Url", a.URL)
			dst = append(dst, "</item>"...)
		}
		dst = append(dst, "</Articles>"...)
	case TransferCustomerServiceReply:
		if !cdataSafe(v.KfAccount) {
			return nil, false
		}
		dst = appendReplyHeader(grow(dst, replyHeaderSize+len(to)+len(from)+len(v.KfAccount)+64), to, from, createTime, "transfer_customer_service")
		if v.KfAccount != "" {
			dst = append(dst, "<TransInfo>"...)
			dst = appendElement(dst, "KfAccount", v.KfAccount)
			dst = append(dst, "</TransInfo>"...)
		}
	default:
		return nil, false
	}
	return append(dst, "</xml>"...), true
}

// replyHeaderSize bounds the markup of appendReplyHeader and the closing
// </xml>: the elements around ToUserName, FromUserName, a 20-character
// CreateTime and the longest MsgType.
const replyHeaderSize = 200

func appendReplyHeader(dst []byte, to, from string, createTime int64, msgType string) []byte {
	dst = append(dst, "<xml>"...)
	dst = appendElement(dst, "ToUserName", to)
	dst = appendElement(dst, "FromUserName", from)
	dst = append(dst, "<CreateTime>"...)
	dst = strconv.AppendInt(dst, createTime, 10)
	dst = append(dst, "</CreateTime>"...)
	return appendElement(dst, "MsgType", msgType)
}

// appendElement writes <name>value</name> with the value in CDATA; an empty
// value leaves the element empty, as encoding/xml does. The value must be
// cdataSafe.
func appendElement(dst []byte, name, value string) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	if value != "" {
		dst = append(dst, "<![CDATA["...)
		dst = append(dst, value...)
		dst = append(dst, "]]>"...)
	}
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendOptional writes the element unless value is empty (omitempty).
func appendOptional(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	return appendElement(dst, name, value)
}

func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	return append(make([]byte, 0, len(dst)+n), dst...)
}

// cdataSafe reports whether s goes into a CDATA section as it is and reads
// back the same: valid UTF-8 of characters XML 1.0 allows, no "]]>" (which
// would end the section) and no carriage return (which a parser turns into
// a line feed). Text failing it takes the encoding/xml path, which splits
// "]]>" and replaces what XML cannot carry with U+FFFD.
func cdataSafe(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ']':
				if strings.HasPrefix(s[i:], "]]>") {
					return false
				}
			case c < 0x20 && c != '\t' && c != '\n':
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			return false
		}
		i += size
	}
	return true
}

// ParsedReply is a passive reply as read back (by the simulator, or tests).
type ParsedReply struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
	Image        struct {
		MediaID string `xml:"MediaId"`
	} `xml:"Image"`
	Voice struct {
		MediaID string `xml:"MediaId"`
	} `xml:"Voice"`
	Video struct {
		MediaID     string `xml:"MediaId"`
		Title       string `xml:"Title"`
		Description string `xml:"Description"`
	} `xml:"Video"`
	Music struct {
		Title        string `xml:"Title"`
		Description  string `xml:"Description"`
		MusicURL     string `xml:"MusicUrl"`
		HQMusicURL   string `xml:"HQMusicUrl"`
		ThumbMediaID string `xml:"ThumbMediaId"`
	} `xml:"Music"`
	ArticleCount int `xml:"ArticleCount"`
	Articles     []struct {
		Title       string `xml:"Title"`
		Description string `xml:"Description"`
		PicURL      string `xml:"PicUrl"`
		URL         string `xml:"Url"`
	} `xml:"Articles>item"`
	TransInfo struct {
		KfAccount string `xml:"KfAccount"`
	} `xml:"TransInfo"`
	// Encrypted-reply envelope fields, present when the reply is encrypted.
	Encrypt      string `xml:"Encrypt"`
	MsgSignature string `xml:"MsgSignature"`
	TimeStamp    int64  `xml:"TimeStamp"`
	Nonce        string `xml:"Nonce"`
}

// IsNoReply reports whether a callback answer means "no reply": an empty body
// or the literal "success".
func IsNoReply(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) == 0 || string(b) == "success"
}

// ParseReply decodes a passive reply (plain, or the encrypted envelope).
func ParseReply(body []byte) (*ParsedReply, error) {
	var r ParsedReply
	if err := xml.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if r.XMLName.Local != "xml" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <xml>", ErrMalformedMessage, r.XMLName.Local)
	}
	r.XMLName = xml.Name{Local: "xml"}
	return &r, nil
}
