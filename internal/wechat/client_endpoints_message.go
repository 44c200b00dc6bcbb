package wechat

import (
	"context"
	"net/http"
)

// DataValue is one field of template or subscription message data.
type DataValue struct {
	Value string `json:"value"`
	// Color is legacy; WeChat ignores it on current templates.
	Color string `json:"color,omitempty"`
}

// TemplateData maps field keys (thing1, time2, …) to values.
type TemplateData map[string]DataValue

// Values builds TemplateData from plain strings.
func Values(m map[string]string) TemplateData {
	d := make(TemplateData, len(m))
	for k, v := range m {
		d[k] = DataValue{Value: v}
	}
	return d
}

// MiniProgramLink opens a page of a mini program bound to the account.
type MiniProgramLink struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath,omitempty"`
}

// TemplateMessage is the body of message/template/send.
type TemplateMessage struct {
	ToUser      string           `json:"touser"`
	TemplateID  string           `json:"template_id"`
	URL         string           `json:"url,omitempty"`
	MiniProgram *MiniProgramLink `json:"miniprogram,omitempty"`
	// ClientMsgID makes WeChat send one message per openid and id within 10 minutes.
	ClientMsgID string       `json:"client_msg_id,omitempty"`
	Data        TemplateData `json:"data"`
}

// msgIDAnswer is the answer of the send endpoints.
type msgIDAnswer struct {
	MsgID Int64 `json:"msgid"`
}

// SendTemplate calls POST /cgi-bin/message/template/send and returns the
// msgid that the TEMPLATESENDJOBFINISH event will carry.
func (c *Client) SendTemplate(ctx context.Context, m *TemplateMessage) (int64, error) {
	var a msgIDAnswer
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/template/send", token: true, body: m, once: m.ClientMsgID == ""}, &a)
	return int64(a.MsgID), err
}

// Template is an entry of get_all_private_template.
type Template struct {
	TemplateID      string `json:"template_id"`
	Title           string `json:"title"`
	PrimaryIndustry string `json:"primary_industry,omitempty"`
	DeputyIndustry  string `json:"deputy_industry,omitempty"`
	Content         string `json:"content"`
	Example         string `json:"example,omitempty"`
}

// ListTemplates calls GET /cgi-bin/template/get_all_private_template.
func (c *Client) ListTemplates(ctx context.Context) ([]Template, error) {
	var out struct {
		List []Template `json:"template_list"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/template/get_all_private_template", token: true}, &out)
	return out.List, err
}

// AddTemplate calls POST /cgi-bin/template/api_add_template with a
// template's short id from the library (e.g. TM00015) and, for category
// templates, the keyword names to use; it returns the new template_id.
func (c *Client) AddTemplate(ctx context.Context, shortID string, keywordNames []string) (string, error) {
	body := struct {
		ShortID  string   `json:"template_id_short"`
		Keywords []string `json:"keyword_name_list,omitempty"`
	}{shortID, keywordNames}
	var out struct {
		TemplateID string `json:"template_id"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/template/api_add_template", token: true, body: body}, &out)
	return out.TemplateID, err
}

// DeleteTemplate calls POST /cgi-bin/template/del_private_template.
func (c *Client) DeleteTemplate(ctx context.Context, templateID string) error {
	body := struct {
		TemplateID string `json:"template_id"`
	}{templateID}
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/template/del_private_template", token: true, body: body}, nil)
}

// SubscribeMessage is the body of the OA's message/subscribe/bizsend
// (订阅通知). Page is a web page; MiniProgram wins when both are set.
type SubscribeMessage struct {
	ToUser      string           `json:"touser"`
	TemplateID  string           `json:"template_id"`
	Page        string           `json:"page,omitempty"`
	MiniProgram *MiniProgramLink `json:"miniprogram,omitempty"`
	Data        TemplateData     `json:"data"`
}

// SendSubscribe calls POST /cgi-bin/message/subscribe/bizsend. The msgid
// is 0 when WeChat does not return one.
func (c *Client) SendSubscribe(ctx context.Context, m *SubscribeMessage) (int64, error) {
	var a msgIDAnswer
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/subscribe/bizsend", token: true, body: m, once: true}, &a)
	return int64(a.MsgID), err
}

// Mini program states for MiniProgramSubscribeMessage.State.
const (
	MiniProgramStateDeveloper = "developer"
	MiniProgramStateTrial     = "trial"
	MiniProgramStateFormal    = "formal"
)

// MiniProgramSubscribeMessage is the body of the mini program's
// message/subscribe/send. Page is a path in the mini program.
type MiniProgramSubscribeMessage struct {
	ToUser     string       `json:"touser"`
	TemplateID string       `json:"template_id"`
	Page       string       `json:"page,omitempty"`
	State      string       `json:"miniprogram_state,omitempty"`
	Lang       string       `json:"lang,omitempty"`
	Data       TemplateData `json:"data"`
}

// SendMiniProgramSubscribe calls POST /cgi-bin/message/subscribe/send;
// each send uses one grant the user gave with wx.requestSubscribeMessage.
func (c *Client) SendMiniProgramSubscribe(ctx context.Context, m *MiniProgramSubscribeMessage) (int64, error) {
	var a msgIDAnswer
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/subscribe/send", token: true, body: m, once: true}, &a)
	return int64(a.MsgID), err
}

// CustomMessage is the body of message/custom/send: MsgType names the
// one content field that is set.
type CustomMessage struct {
	ToUser          string                 `json:"touser"`
	MsgType         string                 `json:"msgtype"`
	Text            *CustomText            `json:"text,omitempty"`
	Image           *CustomMedia           `json:"image,omitempty"`
	Voice           *CustomMedia           `json:"voice,omitempty"`
	Video           *CustomVideo           `json:"video,omitempty"`
	Music           *CustomMusic           `json:"music,omitempty"`
	News            *CustomNews            `json:"news,omitempty"`
	MPNews          *CustomMedia           `json:"mpnews,omitempty"`
	MPNewsArticle   *CustomArticleRef      `json:"mpnewsarticle,omitempty"`
	MsgMenu         *CustomMsgMenu         `json:"msgmenu,omitempty"`
	WxCard          *CustomCard            `json:"wxcard,omitempty"`
	MiniProgramPage *CustomMiniProgramPage `json:"miniprogrampage,omitempty"`
	CustomService   *CustomService         `json:"customservice,omitempty"`
}

// CustomText is a text message; it may contain <a href> links.
type CustomText struct {
	Content string `json:"content"`
}

// CustomMedia refers to uploaded media.
type CustomMedia struct {
	MediaID string `json:"media_id"`
}

// CustomVideo is a video message.
type CustomVideo struct {
	MediaID      string `json:"media_id"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
}

// CustomMusic is a music message.
type CustomMusic struct {
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
	MusicURL     string `json:"musicurl"`
	HQMusicURL   string `json:"hqmusicurl,omitempty"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// CustomNews is a link card (one article).
type CustomNews struct {
	Articles []CustomNewsArticle `json:"articles"`
}

// CustomNewsArticle is the article of a CustomNews.
type CustomNewsArticle struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url"`
	PicURL      string `json:"picurl,omitempty"`
}

// CustomArticleRef refers to a published article.
type CustomArticleRef struct {
	ArticleID string `json:"article_id"`
}

// CustomMsgMenu is a menu of replies the user can tap.
type CustomMsgMenu struct {
	HeadContent string              `json:"head_content,omitempty"`
	List        []CustomMsgMenuItem `json:"list"`
	TailContent string              `json:"tail_content,omitempty"`
}

// CustomMsgMenuItem is one choice of a CustomMsgMenu.
type CustomMsgMenuItem struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

// CustomCard refers to a card voucher.
type CustomCard struct {
	CardID string `json:"card_id"`
}

// CustomMiniProgramPage is a mini program card.
type CustomMiniProgramPage struct {
	Title        string `json:"title"`
	AppID        string `json:"appid"`
	PagePath     string `json:"pagepath"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// CustomService sends as a given customer-service account.
type CustomService struct {
	KfAccount string `json:"kf_account"`
}

// NewCustomText returns a text customer-service message.
func NewCustomText(openID, content string) *CustomMessage {
	return &CustomMessage{ToUser: openID, MsgType: "text", Text: &CustomText{Content: content}}
}

// SendCustom calls POST /cgi-bin/message/custom/send. It works only in
// the window a user opened (45015 outside it, 45047 when its count is used up).
func (c *Client) SendCustom(ctx context.Context, m *CustomMessage) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/custom/send", token: true, body: m, once: true}, nil)
}

// CustomTyping calls POST /cgi-bin/message/custom/typing to show
// (typing=true) or hide the "typing…" indicator.
func (c *Client) CustomTyping(ctx context.Context, openID string, typing bool) error {
	cmd := "CancelTyping"
	if typing {
		cmd = "Typing"
	}
	body := struct {
		ToUser  string `json:"touser"`
		Command string `json:"command"`
	}{openID, cmd}
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/custom/typing", token: true, body: body}, nil)
}
