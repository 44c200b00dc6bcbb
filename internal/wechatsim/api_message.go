package wechatsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Sends: template messages, subscription messages (OA bizsend and mini
// program subscribe/send) and customer-service messages.

// clientMsgIDWindow is template/send's anti-replay window (protocol doc §5.6).
const clientMsgIDWindow = 10 * time.Minute

// dataValue is one entry of "data": {"value": "…", "color": "…"}; color is
// ignored, and a number given as value is read as its text.
type dataValue struct {
	Value any    `json:"value"`
	Color string `json:"color,omitempty"`
}

func flattenData(data map[string]dataValue) map[string]string {
	out := make(map[string]string, len(data))
	for k, v := range data {
		if wechat.DroppedKeyword(k) {
			continue // first and remark are filtered since May 2023
		}
		switch val := v.Value.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = val
		default:
			out[k] = fmt.Sprint(val)
		}
	}
	return out
}

type templateSendRequest struct {
	ToUser      string               `json:"touser"`
	TemplateID  string               `json:"template_id"`
	URL         string               `json:"url"`
	MiniProgram *MiniProgram         `json:"miniprogram"`
	ClientMsgID string               `json:"client_msg_id"`
	Data        map[string]dataValue `json:"data"`
}

type msgIDAnswer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	MsgID   int64  `json:"msgid"`
}

// handleTemplateSend is POST /cgi-bin/message/template/send. The checks run
// in this order: openid (40003), template (40037), follower (43004), data
// (47003). A client_msg_id already used for the same openid within 10
// minutes returns success with the first send's msgid and sends nothing:
// WeChat documents only that one message is sent, and answering the same
// msgid lets an idempotent client match the delivery receipt it waits for.
func (s *Simulator) handleTemplateSend(c *apiCall) (any, *apiError) {
	var req templateSendRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.appUser(c.app, req.ToUser)
	if u == nil {
		return nil, wxErr(40003)
	}
	t := c.app.template(req.TemplateID)
	if t == nil || t.Kind != TemplateKindTemplate {
		return nil, wxErr(40037)
	}
	if !u.Subscribed {
		return nil, wxErr(43004)
	}
	data := flattenData(req.Data)
	if apiErr := validateData(t, data); apiErr != nil {
		return nil, apiErr
	}
	if req.ClientMsgID != "" {
		c.app.pruneReplays(c.now)
		if r := c.app.Replays[u.OpenID+"\x00"+req.ClientMsgID]; r != nil && c.now.Sub(r.At) < clientMsgIDWindow {
			return msgIDAnswer{0, "ok", r.MsgID}, nil
		}
	}

	msgID := s.st.nextMsgID()
	if req.ClientMsgID != "" {
		c.app.Replays[u.OpenID+"\x00"+req.ClientMsgID] = &replay{MsgID: msgID, At: c.now}
	}
	status := wechat.TemplateStatusSuccess
	switch {
	case u.BlockedTemplates:
		status = wechat.TemplateStatusUserBlock
	case s.jobFailureLocked(c.app.Config.AppID, c.r.URL.Path):
		status = wechat.TemplateStatusSystemFailed
	}
	if status == wechat.TemplateStatusSuccess {
		item := InboxItem{Kind: ItemTemplate, MsgType: "template", TemplateID: t.ID, Title: t.Title, Data: data,
			Text: renderTemplate(t.Content, data), URL: req.URL, MiniProgram: req.MiniProgram, MsgID: msgID, Status: "sending"}
		s.addItem(u, item)
	}
	s.scheduleTemplateJobFinish(c.app.Config.AppID, c.app.Config.OriginalID, u.OpenID, msgID, status)
	return msgIDAnswer{0, "ok", msgID}, nil
}

// replayPruneInterval is how often template/send sweeps expired
// client_msg_ids. A sweep walks every id of the last 10 minutes: one per
// send made a large send quadratic (a 100 000-recipient send spent most of
// the simulator's CPU there). Lookups check the age themselves, so an
// expired id waiting for the next sweep is never honoured.
const replayPruneInterval = time.Minute

// pruneReplays forgets the client_msg_ids older than the window, at most
// once per replayPruneInterval.
func (a *appState) pruneReplays(now time.Time) {
	if d := now.Sub(a.replaysPrunedAt); d >= 0 && d < replayPruneInterval {
		return
	}
	a.replaysPrunedAt = now
	for k, r := range a.Replays {
		if now.Sub(r.At) >= clientMsgIDWindow {
			delete(a.Replays, k)
		}
	}
}

// scheduleTemplateJobFinish pushes TEMPLATESENDJOBFINISH after the job
// delay; the inbox card turns to "success" when it is pushed.
func (s *Simulator) scheduleTemplateJobFinish(appID, originalID, openid string, msgID int64, status string) {
	s.background(s.cfg.JobFinishDelay, func(ctx context.Context) {
		if status == wechat.TemplateStatusSuccess {
			s.setItemStatus(openid, msgID, wechat.TemplateStatusSuccess)
		}
		msg := &wechat.Message{ToUserName: originalID, FromUserName: openid, CreateTime: s.now().Unix(),
			MsgType: wechat.MsgTypeEvent, Event: wechat.EventTemplateSendJobFinish, JobMsgID: msgID, Status: status}
		s.deliver(ctx, appID, msg, pushSilent)
	})
}

type subscribeSendRequest struct {
	ToUser           string               `json:"touser"`
	TemplateID       string               `json:"template_id"`
	Page             string               `json:"page"`
	MiniProgram      *MiniProgram         `json:"miniprogram"`
	MiniProgramState string               `json:"miniprogram_state"`
	Lang             string               `json:"lang"`
	Data             map[string]dataValue `json:"data"`
}

// handleBizSend is POST /cgi-bin/message/subscribe/bizsend (OA subscription
// notifications): one accepted grant per send, followers or not.
func (s *Simulator) handleBizSend(c *apiCall) (any, *apiError) { return s.subscribeSend(c, false) }

// handleSubscribeSend is POST /cgi-bin/message/subscribe/send (mini program).
func (s *Simulator) handleSubscribeSend(c *apiCall) (any, *apiError) { return s.subscribeSend(c, true) }

// subscribeSend checks openid (40003), template (40037), the mini program
// fields, data (47003) and then consumes a grant (43101 when none is left),
// so an invalid send never costs the user's consent.
func (s *Simulator) subscribeSend(c *apiCall, miniProgram bool) (any, *apiError) {
	var req subscribeSendRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.appUser(c.app, req.ToUser)
	if u == nil {
		return nil, wxErr(40003)
	}
	t := c.app.template(req.TemplateID)
	if t == nil || t.Kind != TemplateKindSubscribe {
		return nil, wxErr(40037)
	}
	if miniProgram {
		switch req.MiniProgramState {
		case "", "developer", "trial", "formal":
		default:
			return nil, wxErrf(47003, "argument invalid! miniprogram_state")
		}
		switch req.Lang {
		case "", "zh_CN", "en_US", "zh_HK", "zh_TW":
		default:
			return nil, wxErrf(47003, "argument invalid! lang")
		}
	}
	data := flattenData(req.Data)
	if apiErr := validateData(t, data); apiErr != nil {
		return nil, apiErr
	}
	if u.Grants[t.ID] <= 0 {
		return nil, wxErr(43101)
	}
	u.Grants[t.ID]--
	if u.Grants[t.ID] == 0 {
		delete(u.Grants, t.ID)
	}
	msgID := s.st.nextMsgID()
	item := InboxItem{Kind: ItemSubscribe, MsgType: "subscribe", TemplateID: t.ID, Title: t.Title, Data: data,
		Text: renderTemplate(t.Content, data), Page: req.Page, MiniProgram: req.MiniProgram, MsgID: msgID, Status: "success"}
	if miniProgram {
		item.MiniProgram = &MiniProgram{AppID: c.app.Config.AppID, PagePath: req.Page}
	} else {
		item.URL = req.Page
	}
	s.addItem(u, item)
	s.scheduleSubscribeSent(c.app.Config.AppID, c.app.Config.OriginalID, u.OpenID, t.ID, msgID)
	return msgIDAnswer{0, "ok", msgID}, nil
}

// scheduleSubscribeSent pushes subscribe_msg_sent_event after the job delay.
func (s *Simulator) scheduleSubscribeSent(appID, originalID, openid, templateID string, msgID int64) {
	s.background(s.cfg.JobFinishDelay, func(ctx context.Context) {
		msg := &wechat.Message{ToUserName: originalID, FromUserName: openid, CreateTime: s.now().Unix(),
			MsgType: wechat.MsgTypeEvent, Event: wechat.EventSubscribeMsgSent,
			SubscribeMsgSentEvent: &wechat.SubscribeMsgEvent{List: []wechat.SubscribeMsgItem{
				{TemplateID: templateID, MsgID: msgID, ErrorCode: 0, ErrorStatus: "success"}}}}
		s.deliver(ctx, appID, msg, pushSilent)
	})
}

type customSendRequest struct {
	ToUser  string `json:"touser"`
	MsgType string `json:"msgtype"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Image *mediaRef `json:"image"`
	Voice *mediaRef `json:"voice"`
	Video *struct {
		MediaID      string `json:"media_id"`
		ThumbMediaID string `json:"thumb_media_id"`
		Title        string `json:"title"`
		Description  string `json:"description"`
	} `json:"video"`
	Music *struct {
		Title        string `json:"title"`
		Description  string `json:"description"`
		MusicURL     string `json:"musicurl"`
		HQMusicURL   string `json:"hqmusicurl"`
		ThumbMediaID string `json:"thumb_media_id"`
	} `json:"music"`
	News *struct {
		Articles []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			URL         string `json:"url"`
			PicURL      string `json:"picurl"`
		} `json:"articles"`
	} `json:"news"`
	MPNews        *mediaRef `json:"mpnews"`
	MPNewsArticle *struct {
		ArticleID string `json:"article_id"`
	} `json:"mpnewsarticle"`
	MsgMenu *struct {
		HeadContent string `json:"head_content"`
		List        []struct {
			ID      string `json:"id"`
			Content string `json:"content"`
		} `json:"list"`
		TailContent string `json:"tail_content"`
	} `json:"msgmenu"`
	WxCard *struct {
		CardID string `json:"card_id"`
	} `json:"wxcard"`
	MiniProgramPage *struct {
		Title        string `json:"title"`
		AppID        string `json:"appid"`
		PagePath     string `json:"pagepath"`
		ThumbMediaID string `json:"thumb_media_id"`
	} `json:"miniprogrampage"`
}

type mediaRef struct {
	MediaID string `json:"media_id"`
}

// handleCustomSend is POST /cgi-bin/message/custom/send: any msgtype of the
// protocol doc §5.7, within an interaction window (45015 outside, 45047
// when its sends are used up).
func (s *Simulator) handleCustomSend(c *apiCall) (any, *apiError) {
	var req customSendRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.appUser(c.app, req.ToUser)
	if u == nil {
		return nil, wxErr(40003)
	}
	item, apiErr := customItem(&req)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := s.useWindow(c.app, u, c.now); apiErr != nil {
		return nil, apiErr
	}
	var compact bytes.Buffer
	if json.Compact(&compact, c.body) == nil {
		item.Body = compact.Bytes()
	}
	s.addItem(u, item)
	return okAnswer, nil
}

// customItem validates a custom message and renders what the phone shows.
func customItem(req *customSendRequest) (InboxItem, *apiError) {
	it := InboxItem{Kind: ItemCustom, MsgType: req.MsgType}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return it, wxErr(44004)
		}
		it.Content = req.Text.Content
	case "image", "voice", "mpnews":
		ref := map[string]*mediaRef{"image": req.Image, "voice": req.Voice, "mpnews": req.MPNews}[req.MsgType]
		if ref == nil || ref.MediaID == "" {
			return it, wxErr(40007)
		}
		it.MediaID = ref.MediaID
	case "video":
		if req.Video == nil || req.Video.MediaID == "" {
			return it, wxErr(40007)
		}
		it.MediaID, it.Title, it.Description = req.Video.MediaID, req.Video.Title, req.Video.Description
	case "music":
		if req.Music == nil || req.Music.ThumbMediaID == "" {
			return it, wxErr(40007)
		}
		it.Title, it.Description, it.URL, it.MediaID = req.Music.Title, req.Music.Description, req.Music.MusicURL, req.Music.ThumbMediaID
	case "news":
		if req.News == nil || len(req.News.Articles) == 0 {
			return it, wxErrf(44003, "empty news data")
		}
		if len(req.News.Articles) > 1 {
			return it, wxErr(45008)
		}
		for _, a := range req.News.Articles {
			it.Articles = append(it.Articles, wechat.Article{Title: a.Title, Description: a.Description, URL: a.URL, PicURL: a.PicURL})
		}
	case "mpnewsarticle":
		if req.MPNewsArticle == nil || req.MPNewsArticle.ArticleID == "" {
			return it, wxErrf(44004, "empty content")
		}
		it.Content = "[图文 Article] " + req.MPNewsArticle.ArticleID
	case "msgmenu":
		if req.MsgMenu == nil || len(req.MsgMenu.List) == 0 {
			return it, wxErrf(44004, "empty content")
		}
		var lines []string
		if req.MsgMenu.HeadContent != "" {
			lines = append(lines, req.MsgMenu.HeadContent)
		}
		for _, o := range req.MsgMenu.List {
			lines = append(lines, "• "+o.Content)
		}
		if req.MsgMenu.TailContent != "" {
			lines = append(lines, req.MsgMenu.TailContent)
		}
		it.Content = strings.Join(lines, "\n")
	case "wxcard":
		if req.WxCard == nil || req.WxCard.CardID == "" {
			return it, wxErrf(40073, "invalid card id")
		}
		it.Content = "[卡券 Card] " + req.WxCard.CardID
	case "miniprogrampage":
		p := req.MiniProgramPage
		if p == nil || p.AppID == "" || p.ThumbMediaID == "" {
			return it, wxErr(40007)
		}
		it.Title, it.MediaID = p.Title, p.ThumbMediaID
		it.MiniProgram = &MiniProgram{AppID: p.AppID, PagePath: p.PagePath}
	default:
		return it, wxErr(40008)
	}
	return it, nil
}

// useWindow consumes one send of the user's interaction window. The two
// windows are kept apart (a menu click does not shrink the 48-hour window of
// an earlier message): the short event window is used first, then the
// message window.
func (s *Simulator) useWindow(app *appState, u *userState, now time.Time) *apiError {
	if app.Config.Kind == KindOfficialAccount && !u.Subscribed {
		return wxErr(45015)
	}
	for _, w := range []*window{&u.EventWindow, &u.MsgWindow} {
		if w.open(now) && w.Remaining > 0 {
			w.Remaining--
			return nil
		}
	}
	if u.EventWindow.open(now) || u.MsgWindow.open(now) {
		return wxErr(45047)
	}
	return wxErr(45015)
}

// handleCustomTyping is POST /cgi-bin/message/custom/typing: needs an open
// window, uses none of its sends.
func (s *Simulator) handleCustomTyping(c *apiCall) (any, *apiError) {
	var req struct {
		ToUser  string `json:"touser"`
		Command string `json:"command"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.appUser(c.app, req.ToUser)
	if u == nil {
		return nil, wxErr(40003)
	}
	if req.Command != "Typing" && req.Command != "CancelTyping" {
		return nil, wxErrf(47001, "data format error, command must be Typing or CancelTyping")
	}
	if c.app.Config.Kind == KindOfficialAccount && !u.Subscribed ||
		!u.EventWindow.open(c.now) && !u.MsgWindow.open(c.now) {
		return nil, wxErr(45015)
	}
	return okAnswer, nil
}
