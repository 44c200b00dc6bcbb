package wechat

import (
	"context"
	"net/http"
)

// Mass send (群发).

// Mass message types sendall accepts.
const (
	MassTypeText    = "text"
	MassTypeImage   = "image"
	MassTypeVoice   = "voice"
	MassTypeMPVideo = "mpvideo"
	MassTypeMPNews  = "mpnews"
	MassTypeWxCard  = "wxcard"
)

// Errcodes of mass sends.
const (
	CodeMassNoQuota        = 45028
	CodeClientMsgIDExists  = 45065
	CodeClientMsgIDTooSoon = 45066
	CodeClientMsgIDTooLong = 45067
	CodeInvalidMassMsgID   = 40059
)

// MassContent is what a mass message says; exactly one part matches MsgType.
type MassContent struct {
	MsgType string        `json:"msgtype"`
	Text    *MassText     `json:"text,omitempty"`
	Images  *MassImages   `json:"images,omitempty"`
	Voice   *MassMediaRef `json:"voice,omitempty"`
	MPVideo *MassMediaRef `json:"mpvideo,omitempty"`
	MPNews  *MassMediaRef `json:"mpnews,omitempty"`
	WxCard  *MassCard     `json:"wxcard,omitempty"`
}

// MassText is a text mass message.
type MassText struct {
	Content string `json:"content"`
}

// MassImages is an image mass message: up to 8 images.
type MassImages struct {
	MediaIDs  []string `json:"media_ids"`
	Recommend string   `json:"recommend,omitempty"`
}

// MassMediaRef names uploaded media.
type MassMediaRef struct {
	MediaID string `json:"media_id"`
}

// MassCard names a card.
type MassCard struct {
	CardID string `json:"card_id"`
}

// MassFilter chooses the followers of a sendall: all, or one tag.
type MassFilter struct {
	IsToAll bool  `json:"is_to_all"`
	TagID   int64 `json:"tag_id,omitempty"`
}

type massSendRequest struct {
	Filter *MassFilter `json:"filter,omitempty"`
	MassContent
	SendIgnoreReprint int    `json:"send_ignore_reprint"`
	ClientMsgID       string `json:"clientmsgid,omitempty"`
}

// MassResult is the answer of sendall: the job's ids. The outcome comes
// later in MASSSENDJOBFINISH.
type MassResult struct {
	MsgID     Int64 `json:"msg_id"`
	MsgDataID Int64 `json:"msg_data_id"`
}

// SendAll calls POST /cgi-bin/message/mass/sendall. clientMsgID (≤64
// bytes) makes WeChat refuse a second send of the same job (45065).
func (c *Client) SendAll(ctx context.Context, filter MassFilter, content MassContent, clientMsgID string) (MassResult, error) {
	var out MassResult
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/mass/sendall", token: true, once: true,
		body: massSendRequest{Filter: &filter, MassContent: content, ClientMsgID: clientMsgID}}, &out)
	return out, err
}

type massPreviewRequest struct {
	ToUser string `json:"touser"`
	MassContent
}

// PreviewMass calls POST /cgi-bin/message/mass/preview: the message reaches
// one follower and uses no mass-send quota.
func (c *Client) PreviewMass(ctx context.Context, openid string, content MassContent) (MassResult, error) {
	var out MassResult
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/mass/preview", token: true, once: true,
		body: massPreviewRequest{ToUser: openid, MassContent: content}}, &out)
	return out, err
}

// DeleteMass calls POST /cgi-bin/message/mass/delete; articleIdx 0 deletes
// every article.
func (c *Client) DeleteMass(ctx context.Context, msgID int64, articleIdx int) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/mass/delete", token: true,
		body: map[string]int64{"msg_id": msgID, "article_idx": int64(articleIdx)}}, nil)
}

// MassStatus calls POST /cgi-bin/message/mass/get: SEND_SUCCESS, SENDING,
// SEND_FAIL or DELETE.
func (c *Client) MassStatus(ctx context.Context, msgID int64) (string, error) {
	var out struct {
		Status string `json:"msg_status"`
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/message/mass/get", token: true,
		body: map[string]int64{"msg_id": msgID}}, &out)
	return out.Status, err
}
