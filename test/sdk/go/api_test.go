package sdk

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/miniprogram"
	mpconfig "github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"
	"github.com/silenceper/wechat/v2/officialaccount"
	"github.com/silenceper/wechat/v2/officialaccount/basic"
	"github.com/silenceper/wechat/v2/officialaccount/broadcast"
	"github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/material"
	"github.com/silenceper/wechat/v2/officialaccount/menu"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/officialaccount/user"
	"github.com/silenceper/wechat/v2/util"
)

func newOA(secret string, stable bool) *officialaccount.OfficialAccount {
	return officialaccount.NewOfficialAccount(&config.Config{
		AppID: oaAppID, AppSecret: secret, Cache: newCache(), UseStableAK: stable,
	})
}

// wxErrCode returns the errcode the SDK reports: a *util.CommonError for
// some APIs, an error whose text holds "errcode=N" for the others (its
// template, customer-service, menu/get, token and jscode2session calls).
// 0 when err carries none.
func wxErrCode(err error) int64 {
	var ce *util.CommonError
	if errors.As(err, &ce) {
		return ce.ErrCode
	}
	if err == nil {
		return 0
	}
	if m := reErrCode.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.ParseInt(m[1], 10, 64)
		return code
	}
	return 0
}

var reErrCode = regexp.MustCompile(`errcode=(-?\d+)`)

func TestAccessTokens(t *testing.T) {
	needAPI(t, oaAppID)
	classic, err := newOA(oaSecret, false).GetAccessToken()
	if err != nil {
		t.Fatalf("classic token: %v", err)
	}
	stable, err := newOA(oaSecret, true).GetAccessToken()
	if err != nil {
		t.Fatalf("stable token: %v", err)
	}
	switch {
	case proxyURL != "":
		// The proxy answers both from its broker, handing out the key.
		if classic != oaSecret || stable != oaSecret {
			t.Fatalf("through the proxy: want the key back from token and stable_token, got %q and %q", classic, stable)
		}
	case len(classic) < 32 || len(stable) < 32 || classic == stable:
		t.Fatalf("want two distinct tokens, got %q and %q", classic, stable)
	}

	// stable_token answers the same token while it is valid.
	handle := credential.NewStableAccessToken(oaAppID, oaSecret, credential.CacheKeyOfficialAccountPrefix, newCache()).(*credential.StableAccessToken)
	a, err := handle.GetAccessTokenDirectly(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := handle.GetAccessTokenDirectly(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken != b.AccessToken || a.AccessToken != stable {
		t.Fatalf("stable_token changed without force_refresh: %q, %q, %q", stable, a.AccessToken, b.AccessToken)
	}
	if a.ExpiresIn <= 300 || a.ExpiresIn > 7200 {
		t.Fatalf("stable_token expires_in = %d", a.ExpiresIn)
	}
	// Both kinds are usable.
	for _, oa := range []*officialaccount.OfficialAccount{newOA(oaSecret, false), newOA(oaSecret, true)} {
		if _, err := oa.GetUser().ListUserOpenIDs(); err != nil {
			t.Fatalf("user/get with the SDK's token: %v", err)
		}
	}
}

func TestWrongSecret(t *testing.T) {
	needAPI(t, oaAppID)
	for _, stable := range []bool{false, true} {
		_, err := newOA("wrong-secret", stable).GetUser().GetUserInfo("oAnyOpenID")
		if wxErrCode(err) != 40125 {
			t.Fatalf("stable=%v: want the SDK's access_token error with errcode=40125, got %v", stable, err)
		}
	}
}

func TestUsers(t *testing.T) {
	needAPI(t, oaAppID)
	oa := newOA(oaSecret, false)
	follower := createUser(t, oaAppID, true)
	stranger := createUser(t, oaAppID, false)

	info, err := oa.GetUser().GetUserInfo(follower.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Subscribe != 1 || info.OpenID != follower.OpenID || info.UnionID != follower.UnionID ||
		info.SubscribeScene != "ADD_SCENE_SEARCH" || info.SubscribeTime == 0 || info.Language != "zh_CN" {
		t.Fatalf("user/info = %+v", info)
	}
	if info.Nickname != "" || info.Headimgurl != "" {
		t.Fatalf("user/info returned fields WeChat no longer returns: %+v", info)
	}

	list, err := oa.GetUser().BatchGetUserInfo(user.BatchGetUserInfoParams{UserList: []user.BatchGetUserListItem{
		{OpenID: follower.OpenID, Lang: "zh_CN"}, {OpenID: stranger.OpenID, Lang: "zh_CN"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.UserInfoList) != 2 || list.UserInfoList[0].OpenID != follower.OpenID || list.UserInfoList[0].Subscribe != 1 ||
		list.UserInfoList[1].OpenID != stranger.OpenID || list.UserInfoList[1].Subscribe != 0 {
		t.Fatalf("batchget = %+v", list.UserInfoList)
	}

	ids, err := oa.GetUser().ListAllUserOpenIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(ids, follower.OpenID) || contains(ids, stranger.OpenID) {
		t.Fatalf("user/get lists %v: want the follower and not the stranger", ids)
	}
	page, err := oa.GetUser().ListUserOpenIDs()
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != len(page.Data.OpenIDs) || page.Total < page.Count {
		t.Fatalf("user/get page = %+v", page)
	}
}

func TestTemplateMessage(t *testing.T) {
	needAPI(t, oaAppID)
	oa := newOA(oaSecret, false)
	follower := createUser(t, oaAppID, true)
	stranger := createUser(t, oaAppID, false)
	data := map[string]*message.TemplateDataItem{
		"name1":         {Value: "张三"},
		"time2":         {Value: "2026-11-24 15:00", Color: "#173177"},
		"phone_number3": {Value: "020-88888888"},
	}

	msgID, err := oa.GetTemplate().Send(&message.TemplateMessage{
		ToUser: follower.OpenID, TemplateID: templateID, URL: "https://example.com/booking/7", Data: data,
	})
	if err != nil {
		t.Fatalf("template send: %v", err)
	}
	if msgID <= 1<<53 {
		t.Fatalf("msgid %d: want an int64 above 2^53", msgID)
	}
	var card inboxItem
	waitFor(t, "the template card with status success", func() bool {
		for _, it := range inbox(t, oaAppID, follower.OpenID) {
			if it.MsgID == msgID && it.Status == "success" {
				card = it
				return true
			}
		}
		return false
	})
	if card.TemplateID != templateID || card.URL != "https://example.com/booking/7" ||
		card.Text != "预约人：张三\n预约时间：2026-11-24 15:00\n联系电话：020-88888888" {
		t.Fatalf("card = %+v", card)
	}

	// client_msg_id: a repeat answers the same msgid.
	withID := &message.TemplateMessage{ToUser: follower.OpenID, TemplateID: templateID, Data: data, ClientMsgID: "sdk-go-" + time.Now().Format("150405.000000")}
	first, err := oa.GetTemplate().Send(withID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := oa.GetTemplate().Send(withID)
	if err != nil || again != first {
		t.Fatalf("client_msg_id repeat: msgid %d, %v; want %d", again, err, first)
	}

	_, err = oa.GetTemplate().Send(&message.TemplateMessage{ToUser: stranger.OpenID, TemplateID: templateID, Data: data})
	if code := wxErrCode(err); code != 43004 {
		t.Fatalf("template to a non-follower: want errcode 43004, got %v", err)
	}
	bad := map[string]*message.TemplateDataItem{"name1": {Value: "张三"}, "time2": {Value: "明天下午"}, "phone_number3": {Value: "020"}}
	_, err = oa.GetTemplate().Send(&message.TemplateMessage{ToUser: follower.OpenID, TemplateID: templateID, Data: bad})
	if code := wxErrCode(err); code != 47003 || !strings.Contains(err.Error(), "data.time2.value") {
		t.Fatalf("bad time2: want 47003 naming data.time2.value, got %v", err)
	}

	list, err := oa.GetTemplate().List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range list {
		found = found || it.TemplateID == templateID
	}
	if !found {
		t.Fatalf("get_all_private_template does not list the preloaded template: %+v", list)
	}
	added, err := oa.GetTemplate().Add("TM00015", nil)
	if err != nil || added == "" {
		t.Fatalf("api_add_template: %q, %v", added, err)
	}
	if err := oa.GetTemplate().Delete(added); err != nil {
		t.Fatalf("del_private_template: %v", err)
	}
}

func TestCustomerMessage(t *testing.T) {
	needAPI(t, oaAppID)
	oa := newOA(oaSecret, false)
	u := createUser(t, oaAppID, true)
	silent := createUser(t, oaAppID, false)
	act(t, oaAppID, u.OpenID, map[string]any{"type": "text", "content": "请问营业时间？"})

	if err := oa.GetCustomerMessageManager().Send(message.NewCustomerTextMessage(u.OpenID, "每天 9:00-21:00")); err != nil {
		t.Fatalf("custom/send: %v", err)
	}
	found := false
	for _, it := range inbox(t, oaAppID, u.OpenID) {
		found = found || (it.MsgType == "text" && it.Content == "每天 9:00-21:00")
	}
	if !found {
		t.Fatalf("the custom message is not in the inbox: %+v", inbox(t, oaAppID, u.OpenID))
	}
	err := oa.GetCustomerMessageManager().Send(message.NewCustomerTextMessage(silent.OpenID, "hello"))
	if code := wxErrCode(err); code != 45015 {
		t.Fatalf("custom/send without a window: want 45015, got %v", err)
	}
}

func TestQRCode(t *testing.T) {
	needAPI(t, oaAppID)
	oa := newOA(oaSecret, false)
	ticket, err := oa.GetBasic().GetQRTicket(basic.NewTmpQrRequest(10*time.Minute, 2026))
	if err != nil {
		t.Fatalf("qrcode/create: %v", err)
	}
	if ticket.Ticket == "" || ticket.ExpireSeconds != 600 || ticket.URL == "" {
		t.Fatalf("ticket = %+v", ticket)
	}
	if _, err := oa.GetBasic().GetQRTicket(basic.NewTmpQrRequest(time.Hour, "spring-sale")); err != nil {
		t.Fatalf("QR_STR_SCENE: %v", err)
	}
	limit, err := oa.GetBasic().GetQRTicket(basic.NewLimitQrRequest("store-42"))
	if err != nil || limit.Ticket == "" {
		t.Fatalf("QR_LIMIT_STR_SCENE: %+v, %v", limit, err)
	}

	// The SDK's showqrcode URL (mp.weixin.qq.com) through the same base URL.
	// WeChat's documentation asks for the ticket to be URL-encoded; the SDK
	// formats it in as given, so it is given encoded (a base64 ticket may
	// hold '+', which a raw query turns into a space).
	imgURL := toSim(basic.ShowQRCode(&basic.Ticket{Ticket: url.QueryEscape(ticket.Ticket)}))
	resp, err := util.DefaultHTTPClient.Get(imgURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		t.Fatalf("showqrcode: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := png.Decode(bytes.NewReader(body)); err != nil {
		t.Fatalf("showqrcode image: %v", err)
	}

	scanner := createUser(t, oaAppID, false)
	res := act(t, oaAppID, scanner.OpenID, map[string]any{"type": "scan", "ticket": ticket.Ticket})
	if res.User == nil || !res.User.Subscribe {
		t.Fatalf("scan did not follow: %+v", res)
	}
	info, err := oa.GetUser().GetUserInfo(scanner.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	if info.SubscribeScene != "ADD_SCENE_QR_CODE" || info.QrScene != 2026 {
		t.Fatalf("user/info after scanning: %+v", info)
	}
}

func TestMenu(t *testing.T) {
	needAPI(t, oaAppID)
	m := newOA(oaSecret, false).GetMenu()
	buttons := []*menu.Button{
		new(menu.Button).SetClickButton("今日推荐", "TODAY"),
		new(menu.Button).SetSubButton("更多", []*menu.Button{
			new(menu.Button).SetViewButton("官网", "https://example.com/"),
			new(menu.Button).SetClickButton("联系客服", "CONTACT"),
		}),
	}
	if err := m.SetMenu(buttons); err != nil {
		t.Fatalf("menu/create: %v", err)
	}
	got, err := m.GetMenu()
	if err != nil {
		t.Fatalf("menu/get: %v", err)
	}
	if len(got.Menu.Button) != 2 || got.Menu.Button[0].Key != "TODAY" || len(got.Menu.Button[1].SubButtons) != 2 ||
		got.Menu.Button[1].SubButtons[0].URL != "https://example.com/" {
		t.Fatalf("menu/get = %+v", got.Menu)
	}

	// A conditional menu (个性化菜单) for Android, which every simulated
	// phone is: trymatch shows it, delconditional removes it; a rule by
	// sex is refused since WeChat's privacy change.
	android := []*menu.Button{new(menu.Button).SetClickButton("安卓专享", "ANDROID")}
	if err := m.AddConditional(android, &menu.MatchRule{ClientPlatformType: "2"}); err != nil {
		t.Fatalf("menu/addconditional: %v", err)
	}
	if err := m.AddConditional(android, &menu.MatchRule{Sex: "1"}); wxErrCode(err) != 65320 {
		t.Fatalf("addconditional by sex: want 65320, got %v", err)
	}
	u := createUser(t, oaAppID, true)
	matched, err := m.MenuTryMatch(u.OpenID)
	if err != nil || len(matched) != 1 || matched[0].Key != "ANDROID" {
		t.Fatalf("menu/trymatch = %+v, %v", matched, err)
	}
	got, err = m.GetMenu()
	if err != nil || len(got.Conditionalmenu) != 1 || got.Conditionalmenu[0].MatchRule.ClientPlatformType != "2" || got.Menu.MenuID == 0 {
		t.Fatalf("menu/get with a conditional menu = %+v, %v", got, err)
	}
	if err := m.DeleteConditional(got.Conditionalmenu[0].MenuID); err != nil {
		t.Fatalf("menu/delconditional: %v", err)
	}
	if matched, err := m.MenuTryMatch(u.OpenID); err != nil || len(matched) != 2 {
		t.Fatalf("trymatch after delconditional = %+v, %v", matched, err)
	}
	if err := m.DeleteMenu(); err != nil {
		t.Fatalf("menu/delete: %v", err)
	}
	if _, err := m.GetMenu(); wxErrCode(err) != 46003 {
		t.Fatalf("menu/get without a menu: want 46003, got %v", err)
	}
}

// Media and mass sends (群发): a temporary image goes up, a file that is
// no image is refused with WeChat's errcode, a permanent image is counted
// and deleted; a text goes to all followers and to a list of openids, and
// its status reads SEND_SUCCESS once WeChat's job is done.
func TestMediaAndMassSend(t *testing.T) {
	needAPI(t, oaAppID)
	oa := newOA(oaSecret, false)
	mat := oa.GetMaterial()
	jpg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 256)...)
	up, err := mat.MediaUploadFromReader(material.MediaTypeImage, "welcome.jpg", bytes.NewReader(jpg))
	if err != nil || up.MediaID == "" || up.Type != material.MediaTypeImage {
		t.Fatalf("media/upload = %+v, %v", up, err)
	}
	if _, err := mat.MediaUploadFromReader(material.MediaTypeImage, "notes.jpg", strings.NewReader("not an image")); wxErrCode(err) == 0 {
		t.Fatalf("media/upload of a text file as an image: want an errcode, got %v", err)
	}
	before, err := mat.GetMaterialCount()
	if err != nil {
		t.Fatalf("material/get_materialcount: %v", err)
	}
	permanent, _, err := mat.AddMaterialFromReader(material.MediaTypeImage, "poster.jpg", bytes.NewReader(jpg))
	if err != nil || permanent == "" {
		t.Fatalf("material/add_material = %q, %v", permanent, err)
	}
	if after, err := mat.GetMaterialCount(); err != nil || after.ImageCount != before.ImageCount+1 {
		t.Fatalf("material/get_materialcount after an upload = %+v, %v", after, err)
	}
	if err := mat.DeleteMaterial(permanent); err != nil {
		t.Fatalf("material/del_material: %v", err)
	}

	a, b := createUser(t, oaAppID, true), createUser(t, oaAppID, true)
	bc := oa.GetBroadcast()
	all, err := bc.SendText(nil, "全体粉丝：本周六闭馆")
	if err != nil || all.MsgID == 0 {
		t.Fatalf("mass/sendall = %+v, %v", all, err)
	}
	listed, err := bc.SendText(&broadcast.User{OpenID: []string{a.OpenID, b.OpenID}}, "两位会员：新品到店")
	if err != nil || listed.MsgID == 0 {
		t.Fatalf("mass/send = %+v, %v", listed, err)
	}
	waitFor(t, "the mass job's status", func() bool {
		st, err := bc.GetMassStatus(strconv.FormatInt(all.MsgID, 10))
		return err == nil && st.MsgStatus == "SEND_SUCCESS"
	})
	if got := inbox(t, oaAppID, a.OpenID); len(got) < 2 {
		t.Errorf("follower a got %d messages, want both mass sends", len(got))
	}
	if err := bc.Delete(all.MsgID, 0); err != nil {
		t.Errorf("mass/delete: %v", err)
	}
}

func TestCallbackIP(t *testing.T) {
	needAPI(t, oaAppID)
	b := newOA(oaSecret, false).GetBasic()
	ips, err := b.GetCallbackIP()
	if err != nil || len(ips) == 0 {
		t.Fatalf("getcallbackip: %v, %v", ips, err)
	}
	ips, err = b.GetAPIDomainIP()
	if err != nil || len(ips) == 0 {
		t.Fatalf("get_api_domain_ip: %v, %v", ips, err)
	}
}

func TestMiniProgramCode2Session(t *testing.T) {
	needAPI(t, mpAppID)
	mp := miniprogram.NewMiniProgram(&mpconfig.Config{AppID: mpAppID, AppSecret: mpSecret, Cache: newCache()})
	u := createUser(t, mpAppID, false)
	code := act(t, mpAppID, u.OpenID, map[string]any{"type": "open_miniprogram"}).Code
	if code == "" {
		t.Fatal("open_miniprogram gave no code")
	}
	s, err := mp.GetAuth().Code2Session(code)
	if err != nil {
		t.Fatalf("jscode2session: %v", err)
	}
	if s.OpenID != u.OpenID || s.UnionID != u.UnionID || s.SessionKey == "" {
		t.Fatalf("session = %+v, want openid %s unionid %s", s, u.OpenID, u.UnionID)
	}
	if _, err := mp.GetAuth().Code2Session(code); wxErrCode(err) != 40163 {
		t.Fatalf("a used code: want errcode=40163, got %v", err)
	}
	if _, err := mp.GetAuth().Code2Session("never-issued"); wxErrCode(err) != 40029 {
		t.Fatalf("an unknown code: want errcode=40029, got %v", err)
	}
	bad := miniprogram.NewMiniProgram(&mpconfig.Config{AppID: mpAppID, AppSecret: "wrong", Cache: newCache()})
	code = act(t, mpAppID, u.OpenID, map[string]any{"type": "open_miniprogram"}).Code
	if _, err := bad.GetAuth().Code2Session(code); wxErrCode(err) != 40125 {
		t.Fatalf("wrong secret: want errcode=40125, got %v", err)
	}
}

func TestMiniProgramSubscribeMessage(t *testing.T) {
	needAPI(t, mpAppID)
	mp := miniprogram.NewMiniProgram(&mpconfig.Config{AppID: mpAppID, AppSecret: mpSecret, Cache: newCache()})
	u := createUser(t, mpAppID, false)
	act(t, mpAppID, u.OpenID, map[string]any{"type": "subscribe_popup", "template_ids": []string{subscribeID}, "accept": true})
	msg := &subscribe.Message{ToUser: u.OpenID, TemplateID: subscribeID, Page: "pages/booking/index?id=3",
		Data: map[string]*subscribe.DataItem{"thing1": {Value: "洗牙"}, "time2": {Value: "2026-11-24 15:00"}}}
	if err := mp.GetSubscribe().Send(msg); err != nil {
		t.Fatalf("subscribe/send with a grant: %v", err)
	}
	var got inboxItem
	waitFor(t, "the subscription message", func() bool {
		for _, it := range inbox(t, mpAppID, u.OpenID) {
			if it.TemplateID == subscribeID {
				got = it
				return true
			}
		}
		return false
	})
	if got.Page != "pages/booking/index?id=3" || got.Text != "预约项目：洗牙\n预约时间：2026-11-24 15:00" {
		t.Fatalf("subscription message = %+v", got)
	}
	if err := mp.GetSubscribe().Send(msg); wxErrCode(err) != 43101 {
		t.Fatalf("a second send on one grant: want 43101, got %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
