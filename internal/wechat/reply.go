package wechat

import (
	"bytes"
	"encoding/xml"
	"fmt"
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
