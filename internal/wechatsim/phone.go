package wechatsim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// This file is the simulated phone: what a user does, the state it changes
// on the platform, and the push WeChat makes of it.

// Action types of POST /sim/api/users/{openid}/actions.
const (
	ActionText             = "text"
	ActionImage            = "image"
	ActionVoice            = "voice"
	ActionVideo            = "video"
	ActionShortVideo       = "shortvideo"
	ActionLocation         = "location"
	ActionLink             = "link"
	ActionSubscribe        = "subscribe"   // also "follow"
	ActionUnsubscribe      = "unsubscribe" // also "unfollow"
	ActionScan             = "scan"
	ActionClick            = "click"
	ActionView             = "view"
	ActionReportLocation   = "report_location"
	ActionOpenMiniProgram  = "open_miniprogram"
	ActionSubscribePopup   = "subscribe_popup"
	ActionSubscribeOff     = "subscribe_off"
	ActionBlockTemplates   = "block_templates"
	ActionUnblockTemplates = "unblock_templates"
	ActionVerifyURL        = "verify_url"
	// ActionMenu presses a button of the app's menu, found by Title (its
	// name, or "submenu/name"): the event of its type is pushed.
	ActionMenu = "menu"
)

var actionAliases = map[string]string{"follow": ActionSubscribe, "unfollow": ActionUnsubscribe}

// Interaction windows of customer-service messages (protocol doc §5.7).
const (
	messageWindow      = 48 * time.Hour
	messageWindowSends = 5
	eventWindow        = time.Minute
	eventWindowSends   = 3
	loginCodeLifetime  = 5 * time.Minute
)

// Action is something a user does on their phone. Which fields matter
// depends on Type.
type Action struct {
	AppID string `json:"app_id"`
	Type  string `json:"type"`
	// text
	Content string `json:"content,omitempty"`
	// image, voice, video, shortvideo (generated when empty)
	MediaID      string `json:"media_id,omitempty"`
	PicURL       string `json:"pic_url,omitempty"`
	Format       string `json:"format,omitempty"`
	Recognition  string `json:"recognition,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	// location (Latitude = Location_X, Longitude = Location_Y), report_location
	Latitude  float64 `json:"latitude,omitempty"`
	Longitude float64 `json:"longitude,omitempty"`
	Precision float64 `json:"precision,omitempty"`
	Scale     float64 `json:"scale,omitempty"`
	Label     string  `json:"label,omitempty"`
	// link (Title, Description, URL); view (URL); scan (Ticket or the QR's URL)
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	Ticket      string `json:"ticket,omitempty"`
	// click
	EventKey string `json:"event_key,omitempty"`
	MenuID   string `json:"menu_id,omitempty"`
	// subscribe: the subscribe_scene of a plain follow (ADD_SCENE_SEARCH)
	Scene string `json:"scene,omitempty"`
	// subscribe_popup, subscribe_off: the templates of the request;
	// Accept (default true) answers all of them, Decisions ("accept" or
	// "reject" per template id) each one.
	TemplateIDs []string          `json:"template_ids,omitempty"`
	Accept      *bool             `json:"accept,omitempty"`
	Decisions   map[string]string `json:"decisions,omitempty"`
	PopupScene  *int64            `json:"popup_scene,omitempty"`
}

// ActionResult is what an action led to.
type ActionResult struct {
	Type string `json:"type"`
	User *User  `json:"user,omitempty"`
	// Sent is the action as it appears in the user's chat.
	Sent *InboxItem `json:"sent,omitempty"`
	// Delivery is the push to the app's server, when WeChat makes one.
	Delivery *Delivery `json:"delivery,omitempty"`
	// Reply is what the phone shows as a result: the passive reply, or
	// WeChat's notice when the server failed; nil when nothing is shown.
	Reply *InboxItem `json:"reply,omitempty"`
	// Code is the wx.login code of open_miniprogram.
	Code string `json:"code,omitempty"`
	// Verify is the result of verify_url.
	Verify *VerifyResult `json:"verify,omitempty"`
}

// plannedPush is what an action asks WeChat to push.
type plannedPush struct {
	msg  *wechat.Message
	kind pushKind
}

// Act performs an action of the user with this openid (Action.AppID may be
// empty: openids are unique). Pushes are delivered before Act returns.
func (s *Simulator) Act(ctx context.Context, openid string, a Action) (*ActionResult, error) {
	typ := strings.ToLower(strings.TrimSpace(a.Type))
	if alias, ok := actionAliases[typ]; ok {
		typ = alias
	}
	res := &ActionResult{Type: typ}

	s.mu.Lock()
	u, app, err := s.lookupUser(a.AppID, openid)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	appID := app.Config.AppID
	var push *plannedPush
	if typ != ActionVerifyURL {
		push, err = s.applyAction(app, u, typ, a, res)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}

	switch {
	case typ == ActionVerifyURL:
		v, err := s.VerifyURL(ctx, appID)
		if err != nil {
			return nil, err
		}
		res.Verify = v
	case push != nil:
		res.Delivery, res.Reply = s.deliver(ctx, appID, push.msg, push.kind)
	}
	user, err := s.GetUser(appID, openid)
	if err != nil {
		return nil, err
	}
	res.User = user
	return res, nil
}

// applyAction changes the platform's state for an action and plans its
// push; callers hold s.mu. State changes come first, so that an app server
// calling user/info while handling the push sees the new state.
func (s *Simulator) applyAction(app *appState, u *userState, typ string, a Action, res *ActionResult) (*plannedPush, error) {
	now := s.now()
	isOA := app.Config.Kind == KindOfficialAccount
	msg := &wechat.Message{ToUserName: app.Config.OriginalID, FromUserName: u.OpenID, CreateTime: now.Unix()}
	sent := InboxItem{Kind: ItemSent, Time: now}
	needFollower := func() error {
		if !isOA {
			return errorf(CodeInvalid, "小程序没有关注 a mini program has no followers: %s needs an official account", typ)
		}
		if !u.Subscribed {
			return errorf(CodeConflict, "用户未关注 the user does not follow %s", app.Config.AppID)
		}
		return nil
	}
	record := func(kind pushKind) *plannedPush {
		stored := s.addItem(u, sent)
		res.Sent = &stored
		return &plannedPush{msg: msg, kind: kind}
	}

	switch typ {
	case ActionText, ActionImage, ActionVoice, ActionVideo, ActionShortVideo, ActionLocation, ActionLink:
		if isOA && !u.Subscribed {
			return nil, errorf(CodeConflict, "用户未关注，不能发消息 the user does not follow %s", app.Config.AppID)
		}
		if err := fillUserMessage(msg, &sent, typ, a); err != nil {
			return nil, err
		}
		msg.MsgType = typ
		msg.MsgID = s.st.nextMsgID()
		sent.MsgType, sent.MsgID = typ, msg.MsgID
		if (typ == ActionImage || typ == ActionVoice) && a.MediaID == "" {
			app.userMedia(msg.MediaID, typ, now) // so that media/get can fetch it
		}
		u.MsgWindow = window{Until: now.Add(messageWindow), Remaining: messageWindowSends}
		return record(pushUserMessage), nil

	case ActionSubscribe:
		if !isOA {
			return nil, errorf(CodeInvalid, "小程序没有关注 a mini program has no followers")
		}
		if u.Subscribed {
			return nil, errorf(CodeConflict, "用户已关注 the user already follows %s", app.Config.AppID)
		}
		scene := a.Scene
		if scene == "" {
			scene = SceneSearch
		}
		u.follow(now, scene, 0, "")
		setEvent(msg, &sent, wechat.EventSubscribe, "", "[关注 Follow]")
		return record(pushUserEvent), nil

	case ActionUnsubscribe:
		if err := needFollower(); err != nil {
			return nil, err
		}
		u.Subscribed = false
		u.MsgWindow, u.EventWindow = window{}, window{}
		setEvent(msg, &sent, wechat.EventUnsubscribe, "", "[取消关注 Unfollow]")
		return record(pushSilent), nil

	case ActionScan:
		if !isOA {
			return nil, errorf(CodeInvalid, "小程序没有关注 a mini program has no followers")
		}
		t, err := s.findTicket(a.Ticket, a.URL)
		if err != nil {
			return nil, err
		}
		if t.AppID != app.Config.AppID {
			return nil, errorf(CodeInvalid, "二维码属于另一个公众号 the QR code belongs to app %s", t.AppID)
		}
		if t.expired(now) {
			return nil, errorf(CodeExpired, "二维码已过期 the QR code expired at %s", t.ExpiresAt.Format(time.RFC3339))
		}
		msg.Ticket = t.Ticket
		if u.Subscribed {
			setEvent(msg, &sent, wechat.EventScan, t.scene(), "[扫码 Scan] "+t.scene())
		} else {
			sceneID := int64(0)
			if t.SceneStr == "" {
				sceneID = t.SceneID
			}
			u.follow(now, SceneQRCode, sceneID, t.SceneStr)
			setEvent(msg, &sent, wechat.EventSubscribe, wechat.QRScenePrefix+t.scene(), "[扫码关注 Follow by QR code] "+t.scene())
		}
		u.EventWindow = window{Until: now.Add(eventWindow), Remaining: eventWindowSends}
		return record(pushUserEvent), nil

	case ActionClick:
		if err := needFollower(); err != nil {
			return nil, err
		}
		if a.EventKey == "" {
			return nil, errorf(CodeInvalid, "缺少 event_key: click needs the button's key")
		}
		setEvent(msg, &sent, wechat.EventClick, a.EventKey, "[点击菜单 Menu click] "+menuLabel(app.menuFor(u), a.EventKey))
		msg.MenuID = a.MenuID
		u.EventWindow = window{Until: now.Add(eventWindow), Remaining: eventWindowSends}
		return record(pushUserEvent), nil

	case ActionMenu:
		if err := needFollower(); err != nil {
			return nil, err
		}
		b, ok := findMenuButton(app.menuFor(u), a.Title)
		if cm := app.conditionalFor(u); cm != nil && (b.Type == "view" || b.Type == "miniprogram") {
			// WeChat names the personalised menu a link came from.
			msg.MenuID = strconv.FormatInt(cm.MenuID, 10)
		}
		if !ok {
			return nil, errorf(CodeNotFound, "菜单中没有按钮 %q: the menu has no button %q", a.Title, a.Title)
		}
		kind := pushUserEvent
		switch b.Type {
		case "click":
			setEvent(msg, &sent, wechat.EventClick, b.Key, "[点击菜单 Menu click] "+b.Name)
		case "view":
			setEvent(msg, &sent, wechat.EventView, b.URL, "[打开链接 Open link] "+b.URL)
			kind = pushSilent
		case "miniprogram":
			setEvent(msg, &sent, wechat.EventViewMiniProgram, b.PagePath, "[打开小程序 Open mini program] "+b.AppID+" "+b.PagePath)
			kind = pushSilent
		case "scancode_push", "scancode_waitmsg":
			result := a.Content
			if result == "" {
				result = "https://weixin.qq.com/r/sim-scan"
			}
			setEvent(msg, &sent, b.Type, b.Key, "[扫码 Scan] "+b.Name+": "+result)
			msg.ScanCodeInfo = &wechat.ScanCodeInfo{ScanType: "qrcode", ScanResult: result}
		case "pic_sysphoto", "pic_photo_or_album", "pic_weixin":
			setEvent(msg, &sent, b.Type, b.Key, "[发图 Send pictures] "+b.Name)
			msg.SendPicsInfo = &wechat.SendPicsInfo{Count: 1, PicList: []wechat.PicItem{{PicMd5Sum: newNonce()}}}
		case "location_select":
			lat, lng, label := a.Latitude, a.Longitude, a.Label
			if lat == 0 && lng == 0 {
				lat, lng = 23.1291, 113.2644
			}
			if label == "" {
				label = "广州市天河区"
			}
			setEvent(msg, &sent, b.Type, b.Key, "[发送位置 Send location] "+label)
			msg.SendLocationInfo = &wechat.SendLocationInfo{LocationX: lat, LocationY: lng, Scale: 15, Label: label, Poiname: label}
		default:
			// media_id, article_id …: WeChat shows the content itself.
			return nil, errorf(CodeInvalid, "按钮 %q 的类型 %s 不产生事件推送: a %s button pushes no event", b.Name, b.Type, b.Type)
		}
		u.EventWindow = window{Until: now.Add(eventWindow), Remaining: eventWindowSends}
		return record(kind), nil

	case ActionView:
		if err := needFollower(); err != nil {
			return nil, err
		}
		if a.URL == "" {
			return nil, errorf(CodeInvalid, "缺少 url: view needs the button's url")
		}
		setEvent(msg, &sent, wechat.EventView, a.URL, "[打开链接 Open link] "+a.URL)
		msg.MenuID = a.MenuID
		return record(pushSilent), nil

	case ActionReportLocation:
		if err := needFollower(); err != nil {
			return nil, err
		}
		lat, lng := a.Latitude, a.Longitude
		if lat == 0 && lng == 0 {
			lat, lng = 23.137466, 113.352425
		}
		precision := a.Precision
		if precision == 0 {
			precision = 119.385040
		}
		setEvent(msg, &sent, wechat.EventLocation, "", fmt.Sprintf("[上报位置 Location report] %.6f,%.6f", lat, lng))
		msg.Latitude, msg.Longitude, msg.Precision = lat, lng, precision
		return record(pushUserEvent), nil

	case ActionOpenMiniProgram:
		if isOA {
			return nil, errorf(CodeInvalid, "open_miniprogram 需要小程序的 app_id: needs a mini program user (create the user in the mini program with the same unionid)")
		}
		code := &loginCode{Code: newJSCode(), AppID: app.Config.AppID, OpenID: u.OpenID, IssuedAt: now, ExpiresAt: now.Add(loginCodeLifetime)}
		s.pruneCodes(now)
		s.st.Codes[code.Code] = code
		res.Code = code.Code
		sent.MsgType, sent.Content = "event", "[打开小程序 Open mini program] wx.login"
		stored := s.addItem(u, sent)
		res.Sent = &stored
		return nil, nil

	case ActionSubscribePopup:
		items, err := s.popupDecisions(app, a)
		if err != nil {
			return nil, err
		}
		if u.Grants == nil {
			u.Grants = map[string]int{}
		}
		var summary []string
		for i := range items {
			if items[i].SubscribeStatusString == "accept" {
				u.Grants[items[i].TemplateID]++
			}
			summary = append(summary, items[i].SubscribeStatusString)
		}
		setEvent(msg, &sent, wechat.EventSubscribeMsgPopup, "", "[订阅消息 Subscription request] "+strings.Join(summary, ", "))
		msg.SubscribeMsgPopupEvent = &wechat.SubscribeMsgEvent{List: items}
		return record(pushSilent), nil

	case ActionSubscribeOff:
		if len(a.TemplateIDs) == 0 {
			return nil, errorf(CodeInvalid, "缺少 template_ids: subscribe_off needs template ids")
		}
		var items []wechat.SubscribeMsgItem
		for _, id := range a.TemplateIDs {
			if t := app.template(id); t == nil || t.Kind != TemplateKindSubscribe {
				return nil, errorf(CodeNotFound, "订阅模板不存在 subscription template %q not found", id)
			}
			delete(u.Grants, id)
			items = append(items, wechat.SubscribeMsgItem{TemplateID: id, SubscribeStatusString: "reject"})
		}
		setEvent(msg, &sent, wechat.EventSubscribeMsgChange, "", "[关闭订阅 Turn off notifications]")
		msg.SubscribeMsgChangeEvent = &wechat.SubscribeMsgEvent{List: items}
		return record(pushSilent), nil

	case ActionBlockTemplates, ActionUnblockTemplates:
		if !isOA {
			return nil, errorf(CodeInvalid, "小程序没有模板消息 a mini program has no template messages")
		}
		u.BlockedTemplates = typ == ActionBlockTemplates
		sent.MsgType = "event"
		sent.Content = "[拒收模板消息 Block template messages]"
		if !u.BlockedTemplates {
			sent.Content = "[接收模板消息 Accept template messages]"
		}
		stored := s.addItem(u, sent)
		res.Sent = &stored
		return nil, nil
	}
	return nil, errorf(CodeInvalid, "未知动作 unknown action type %q", a.Type)
}

// follow records a follow; callers hold s.mu.
func (u *userState) follow(now time.Time, scene string, qrScene int64, qrSceneStr string) {
	u.Subscribed = true
	u.SubscribeTime = now.Unix()
	u.SubscribeScene = scene
	u.QRScene, u.QRSceneStr = qrScene, qrSceneStr
	// Following opens a 3-message, 1-minute window (protocol doc §5.7).
	u.EventWindow = window{Until: now.Add(eventWindow), Remaining: eventWindowSends}
}

func setEvent(msg *wechat.Message, sent *InboxItem, event, key, label string) {
	msg.MsgType, msg.Event, msg.EventKey = wechat.MsgTypeEvent, event, key
	sent.MsgType, sent.Event, sent.EventKey, sent.Content = wechat.MsgTypeEvent, event, key, label
}

// fillUserMessage sets the fields of a user message, generating media ids
// and URLs a real phone would have uploaded.
func fillUserMessage(msg *wechat.Message, sent *InboxItem, typ string, a Action) error {
	orDefault := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	switch typ {
	case ActionText:
		if a.Content == "" {
			return errorf(CodeInvalid, "缺少 content: a text message needs content")
		}
		msg.Content, sent.Content = a.Content, a.Content
	case ActionImage:
		msg.MediaID = orDefault(a.MediaID, randomString(64, alphabetURL))
		msg.PicURL = orDefault(a.PicURL, "http://mmbiz.qpic.cn/mmbiz_jpg/"+randomString(40, alphabetAlnum)+"/0")
		sent.MediaID, sent.PicURL, sent.Content = msg.MediaID, msg.PicURL, "[图片 Image]"
	case ActionVoice:
		msg.MediaID = orDefault(a.MediaID, randomString(64, alphabetURL))
		msg.Format = orDefault(a.Format, "amr")
		msg.MediaID16K = randomString(64, alphabetURL)
		msg.Recognition = a.Recognition
		sent.MediaID, sent.Content = msg.MediaID, "[语音 Voice] "+a.Recognition
	case ActionVideo, ActionShortVideo:
		msg.MediaID = orDefault(a.MediaID, randomString(64, alphabetURL))
		msg.ThumbMediaID = orDefault(a.ThumbMediaID, randomString(64, alphabetURL))
		sent.MediaID, sent.Content = msg.MediaID, "[视频 Video]"
	case ActionLocation:
		lat, lng := a.Latitude, a.Longitude
		if lat == 0 && lng == 0 {
			lat, lng = 23.134521, 113.358803
		}
		scale := a.Scale
		if scale == 0 {
			scale = 20
		}
		msg.LocationX, msg.LocationY, msg.Scale = lat, lng, scale
		msg.Label = orDefault(a.Label, "位置信息")
		sent.Content = fmt.Sprintf("[位置 Location] %s (%.6f,%.6f)", msg.Label, lat, lng)
	case ActionLink:
		if a.URL == "" {
			return errorf(CodeInvalid, "缺少 url: a link message needs url")
		}
		msg.Title, msg.Description, msg.URL = orDefault(a.Title, a.URL), a.Description, a.URL
		sent.Title, sent.Description, sent.URL, sent.Content = msg.Title, msg.Description, msg.URL, "[链接 Link] "+msg.Title
	}
	return nil
}

// popupDecisions reads the templates of a subscription request and the
// user's answer to each.
func (s *Simulator) popupDecisions(app *appState, a Action) ([]wechat.SubscribeMsgItem, error) {
	ids := a.TemplateIDs
	if len(ids) == 0 {
		for id := range a.Decisions {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	if len(ids) == 0 {
		return nil, errorf(CodeInvalid, "缺少 template_ids: subscribe_popup needs template ids")
	}
	scene := int64(1) // an H5 page of an official account
	if app.Config.Kind == KindMiniProgram {
		scene = 0
	}
	if a.PopupScene != nil {
		scene = *a.PopupScene
	}
	accept := a.Accept == nil || *a.Accept
	var items []wechat.SubscribeMsgItem
	for _, id := range ids {
		if t := app.template(id); t == nil || t.Kind != TemplateKindSubscribe {
			return nil, errorf(CodeNotFound, "订阅模板不存在 subscription template %q not found", id)
		}
		status := "reject"
		if accept {
			status = "accept"
		}
		if d, ok := a.Decisions[id]; ok {
			if d != "accept" && d != "reject" {
				return nil, errorf(CodeInvalid, "决定无效 decision %q for %s: want accept or reject", d, id)
			}
			status = d
		}
		items = append(items, wechat.SubscribeMsgItem{TemplateID: id, SubscribeStatusString: status, PopupScene: scene})
	}
	return items, nil
}

// findMenuButton finds a leaf of a menu by its name, or by "submenu/name".
func findMenuButton(menu []menuButton, path string) (menuButton, bool) {
	parent, name, nested := strings.Cut(path, "/")
	for _, b := range menu {
		if !nested && len(b.SubButton) == 0 && b.Name == path {
			return b, true
		}
		for _, leaf := range b.SubButton {
			if (nested && b.Name == parent && leaf.Name == name) || (!nested && leaf.Name == path) {
				return leaf, true
			}
		}
	}
	return menuButton{}, false
}

// menuLabel names a click for the chat: the button's name when the menu has it.
func menuLabel(menu []menuButton, key string) string {
	for _, b := range menu {
		for _, leaf := range append([]menuButton{b}, b.SubButton...) {
			if leaf.Key == key && leaf.Name != "" {
				return leaf.Name + " (" + key + ")"
			}
		}
	}
	return key
}

func (s *Simulator) pruneCodes(now time.Time) {
	for code, c := range s.st.Codes {
		if now.Sub(c.ExpiresAt) > time.Hour {
			delete(s.st.Codes, code)
		}
	}
}
