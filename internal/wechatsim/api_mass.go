package wechatsim

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Mass send (群发): sendall by tag or to all, send to a list of openids,
// preview to one follower, delete, get; MASSSENDJOBFINISH after the job
// delay; the monthly quota of a 服务号.

// ItemMass is a mass message on the phone.
const ItemMass = "mass"

// DefaultMassSendsPerMonth is a 服务号's monthly mass-send quota.
const DefaultMassSendsPerMonth = 4

// massJob is one mass send as WeChat keeps it.
type massJob struct {
	MsgID       int64     `json:"msg_id"`
	MsgDataID   int64     `json:"msg_data_id,omitempty"`
	MsgType     string    `json:"msgtype"`
	At          time.Time `json:"at"`
	ClientMsgID string    `json:"clientmsgid,omitempty"`
	Total       int       `json:"total"`
	Status      string    `json:"status"` // SENDING, SEND_SUCCESS, DELETE
}

type massRequest struct {
	Filter *struct {
		IsToAll bool        `json:"is_to_all"`
		TagID   json.Number `json:"tag_id"`
	} `json:"filter"`
	ToUser  json.RawMessage `json:"touser"`
	MsgType string          `json:"msgtype"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Images *struct {
		MediaIDs []string `json:"media_ids"`
	} `json:"images"`
	Image   *mediaRef `json:"image"`
	Voice   *mediaRef `json:"voice"`
	MPVideo *mediaRef `json:"mpvideo"`
	MPNews  *mediaRef `json:"mpnews"`
	WxCard  *struct {
		CardID string `json:"card_id"`
	} `json:"wxcard"`
	ClientMsgID string `json:"clientmsgid"`
}

// massItem checks the content (media ids must be stored, of the right
// type) and renders what a follower's phone shows.
func (s *Simulator) massItem(c *apiCall, req *massRequest) (InboxItem, *apiError) {
	it := InboxItem{Kind: ItemMass, MsgType: req.MsgType}
	media := func(ref *mediaRef, typ string) *apiError {
		if ref == nil || ref.MediaID == "" {
			return wxErr(40007)
		}
		m := c.app.liveMedia(ref.MediaID, c.now)
		if m == nil || m.Type != typ {
			return wxErr(40007)
		}
		it.MediaID = m.MediaID
		return nil
	}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return it, wxErr(44004)
		}
		it.Content = req.Text.Content
	case "image":
		// sendall takes images.media_ids; preview takes image.media_id.
		ids := []string{}
		if req.Images != nil {
			ids = req.Images.MediaIDs
		} else if req.Image != nil {
			ids = []string{req.Image.MediaID}
		}
		if len(ids) == 0 || len(ids) > 8 {
			return it, wxErr(40007)
		}
		for _, id := range ids {
			if apiErr := media(&mediaRef{MediaID: id}, "image"); apiErr != nil {
				return it, apiErr
			}
		}
		it.MediaID = ids[0]
		it.Content = "[图片 Image]"
	case "voice":
		if apiErr := media(req.Voice, "voice"); apiErr != nil {
			return it, apiErr
		}
		it.Content = "[语音 Voice]"
	case "mpvideo":
		if apiErr := media(req.MPVideo, "video"); apiErr != nil {
			return it, apiErr
		}
		it.Content = "[视频 Video]"
	case "mpnews":
		// Articles live in the draft box, which the simulator does not
		// keep: any id is taken.
		if req.MPNews == nil || req.MPNews.MediaID == "" {
			return it, wxErr(40007)
		}
		it.MediaID, it.Content = req.MPNews.MediaID, "[图文 Article] "+req.MPNews.MediaID
	case "wxcard":
		if req.WxCard == nil || req.WxCard.CardID == "" {
			return it, wxErrf(40073, "invalid card id")
		}
		it.Content = "[卡券 Card] " + req.WxCard.CardID
	default:
		return it, wxErr(40008)
	}
	return it, nil
}

// beijing is where WeChat's months begin.
var beijing = time.FixedZone("CST", 8*3600)

func (a *appState) massesThisMonth(now time.Time) int {
	month := now.In(beijing).Format("2006-01")
	n := 0
	for _, j := range a.Masses {
		if j.At.In(beijing).Format("2006-01") == month {
			n++
		}
	}
	return n
}

func (a *appState) massQuota() int {
	if a.Config.MassSendsPerMonth > 0 {
		return a.Config.MassSendsPerMonth
	}
	return DefaultMassSendsPerMonth
}

// massSend is sendall and send: checks, quota, clientmsgid, delivery.
func (s *Simulator) massSend(c *apiCall, req *massRequest, audience []*userState) (any, *apiError) {
	if len(req.ClientMsgID) > 64 {
		return nil, wxErr(45067)
	}
	it, apiErr := s.massItem(c, req)
	if apiErr != nil {
		return nil, apiErr
	}
	if req.ClientMsgID != "" {
		for _, j := range c.app.Masses {
			if j.ClientMsgID == req.ClientMsgID && c.now.Sub(j.At) < 24*time.Hour {
				if c.now.Sub(j.At) < time.Minute {
					return nil, wxErr(45066)
				}
				return nil, wxErr(45065)
			}
		}
	}
	if c.app.massesThisMonth(c.now) >= c.app.massQuota() {
		return nil, wxErr(45028)
	}
	job := &massJob{MsgID: s.st.nextMsgID(), MsgType: req.MsgType, At: c.now, ClientMsgID: req.ClientMsgID,
		Total: len(audience), Status: "SENDING"}
	if req.MsgType == "mpnews" {
		job.MsgDataID = s.st.nextMsgID() % 1000000000
	}
	c.app.Masses = append(c.app.Masses, job)
	it.MsgID = job.MsgID
	for _, u := range audience {
		s.addItem(u, it)
	}
	s.scheduleMassJobFinish(c.app.Config.AppID, c.app.Config.OriginalID, job.MsgID, len(audience))
	out := map[string]any{"errcode": 0, "errmsg": "send job submission success", "msg_id": job.MsgID}
	if job.MsgDataID != 0 {
		out["msg_data_id"] = job.MsgDataID
	}
	return out, nil
}

// scheduleMassJobFinish pushes MASSSENDJOBFINISH after the job delay.
func (s *Simulator) scheduleMassJobFinish(appID, originalID string, msgID int64, total int) {
	s.background(s.cfg.JobFinishDelay, func(ctx context.Context) {
		s.mu.Lock()
		if app := s.st.Apps[appID]; app != nil {
			for _, j := range app.Masses {
				if j.MsgID == msgID && j.Status == "SENDING" {
					j.Status = "SEND_SUCCESS"
				}
			}
		}
		s.mu.Unlock()
		n := int64(total)
		msg := &wechat.Message{ToUserName: originalID, FromUserName: massSender, CreateTime: s.now().Unix(),
			MsgType: wechat.MsgTypeEvent, Event: wechat.EventMassSendJobFinish, JobMsgID: msgID, Status: "send success",
			TotalCount: n, FilterCount: n, SentCount: n, ErrorCount: 0}
		s.deliver(ctx, appID, msg, pushSilent)
	})
}

// massSender is the FromUserName of MASSSENDJOBFINISH: the operator's
// openid in WeChat's pushes; a fixed one here.
const massSender = "oMassSendJobFinish000000000"

// handleMassSendAll is POST /cgi-bin/message/mass/sendall: to every
// follower or to one tag's.
func (s *Simulator) handleMassSendAll(c *apiCall) (any, *apiError) {
	var req massRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if req.Filter == nil {
		return nil, wxErrf(47001, "data format error, filter missing")
	}
	var tagID int
	if !req.Filter.IsToAll {
		id, err := req.Filter.TagID.Int64()
		if err != nil || c.app.tagByID(int(id)) == nil {
			return nil, wxErr(45159)
		}
		tagID = int(id)
	}
	var audience []*userState
	for _, openid := range c.app.UserOrder {
		u := s.st.Users[openid]
		if u == nil || !u.Subscribed {
			continue
		}
		if !req.Filter.IsToAll && !slices.Contains(u.TagIDs, tagID) {
			continue
		}
		audience = append(audience, u)
	}
	return s.massSend(c, &req, audience)
}

// handleMassSend is POST /cgi-bin/message/mass/send: to 2–10 000 openids.
func (s *Simulator) handleMassSend(c *apiCall) (any, *apiError) {
	var req massRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	var openids []string
	if json.Unmarshal(req.ToUser, &openids) != nil || len(openids) < 2 || len(openids) > 10000 {
		return nil, wxErrf(40130, "invalid openid list size, at least two openid")
	}
	var audience []*userState
	for _, openid := range openids {
		u := s.appUser(c.app, openid)
		if u == nil {
			return nil, wxErr(40003)
		}
		if u.Subscribed {
			audience = append(audience, u)
		}
	}
	return s.massSend(c, &req, audience)
}

// handleMassPreview is POST /cgi-bin/message/mass/preview: one follower,
// no quota used.
func (s *Simulator) handleMassPreview(c *apiCall) (any, *apiError) {
	var req massRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	var openid string
	if json.Unmarshal(req.ToUser, &openid) != nil || openid == "" {
		return nil, wxErr(40003)
	}
	u := s.appUser(c.app, openid)
	if u == nil {
		return nil, wxErr(40003)
	}
	if !u.Subscribed {
		return nil, wxErr(43004)
	}
	it, apiErr := s.massItem(c, &req)
	if apiErr != nil {
		return nil, apiErr
	}
	it.MsgID = s.st.nextMsgID()
	it.Status = "preview"
	s.addItem(u, it)
	return map[string]any{"errcode": 0, "errmsg": "preview success", "msg_id": it.MsgID}, nil
}

func (a *appState) findMass(raw json.Number) *massJob {
	id, err := raw.Int64()
	if err != nil {
		return nil
	}
	for _, j := range a.Masses {
		if j.MsgID == id {
			return j
		}
	}
	return nil
}

// handleMassDelete is POST /cgi-bin/message/mass/delete {"msg_id","article_idx"}:
// 40059 for an id that is not a sent mass message.
func (s *Simulator) handleMassDelete(c *apiCall) (any, *apiError) {
	var req struct {
		MsgID json.Number `json:"msg_id"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	j := c.app.findMass(req.MsgID)
	if j == nil || j.Status == "DELETE" {
		return nil, wxErr(40059)
	}
	j.Status = "DELETE"
	return okAnswer, nil
}

// handleMassGet is POST /cgi-bin/message/mass/get {"msg_id"}.
func (s *Simulator) handleMassGet(c *apiCall) (any, *apiError) {
	var req struct {
		MsgID json.Number `json:"msg_id"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	j := c.app.findMass(req.MsgID)
	if j == nil {
		return nil, wxErr(40059)
	}
	return map[string]any{"msg_id": j.MsgID, "msg_status": j.Status}, nil
}
