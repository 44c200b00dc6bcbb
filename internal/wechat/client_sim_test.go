package wechat_test

// The client against the simulator: every endpoint's success and
// typed-error paths, and failover between two simulated API domains.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	oaID, oaSecret = "wx00000000000000a1", "oa-secret-0123456789abcdef0123456"
	mpID, mpSecret = "wx00000000000000b2", "mp-secret-0123456789abcdef0123456"
	templateID     = "TPL_new_visitor"
	notifyID       = "SUB_order_shipped"
	mpSubscribeID  = "MPSUB_reminder"
)

type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// stableSource is a minimal TokenSource over the client itself: enough to
// test the client without the broker (internal/token tests the broker).
type stableSource struct {
	c           *wechat.Client
	appID, sec  string
	mu          sync.Mutex
	tok         string
	invalidated int
}

func (s *stableSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" {
		t, err := s.c.GetStableToken(ctx, s.appID, s.sec, false)
		if err != nil {
			return "", err
		}
		s.tok = t.Token
	}
	return s.tok, nil
}

func (s *stableSource) Invalidate(_ context.Context, failed string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == failed {
		s.tok = ""
		s.invalidated++
	}
	return nil
}

type simBundle struct {
	sim        *wechatsim.Simulator
	clock      *simClock
	api, api2  *httptest.Server
	raw        *wechat.Client // no token source
	oa, mp     *wechat.Client
	oaTokens   *stableSource
	follower   string
	stranger   string // exists, not following
	mpUser     string
	ctx        context.Context
	httpClient *http.Client
}

func setupSim(t *testing.T) *simBundle {
	t.Helper()
	clock := &simClock{t: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)}
	sim, err := wechatsim.New(wechatsim.Config{
		Now: clock.Now,
		Apps: []wechatsim.AppConfig{
			{AppID: oaID, AppSecret: oaSecret, Kind: wechatsim.KindOfficialAccount, OpenPlatform: "group-1",
				Templates: []wechatsim.TemplateConfig{
					{ID: templateID, Title: "新访客提醒", Content: "客户：{{thing1.DATA}}\n时间：{{time2.DATA}}"},
					{ID: notifyID, Title: "发货通知", Content: "商品：{{thing1.DATA}}", Kind: wechatsim.TemplateKindSubscribe},
				}},
			{AppID: mpID, AppSecret: mpSecret, Kind: wechatsim.KindMiniProgram, OpenPlatform: "group-1",
				Templates: []wechatsim.TemplateConfig{
					{ID: mpSubscribeID, Title: "提醒", Content: "内容：{{thing1.DATA}}", Kind: wechatsim.TemplateKindSubscribe},
				}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	api := httptest.NewServer(sim.DomainHandler("api"))
	api2 := httptest.NewServer(sim.DomainHandler("api2"))
	t.Cleanup(api.Close)
	t.Cleanup(api2.Close)

	httpClient := &http.Client{Timeout: 5 * time.Second}
	newClient := func() *wechat.Client {
		return wechat.NewClient(wechat.ClientOptions{
			BaseURLs: []string{api.URL, api2.URL}, QRCodeBaseURL: api.URL,
			HTTPClient: httpClient, Now: clock.Now, FailoverCooldown: time.Minute,
		})
	}
	raw := newClient()
	oaTokens := &stableSource{c: raw, appID: oaID, sec: oaSecret}
	mpTokens := &stableSource{c: raw, appID: mpID, sec: mpSecret}
	b := &simBundle{sim: sim, clock: clock, api: api, api2: api2, raw: raw,
		oa: raw.WithTokenSource(oaTokens), mp: raw.WithTokenSource(mpTokens), oaTokens: oaTokens,
		ctx: t.Context(), httpClient: httpClient}

	ctx := t.Context()
	u, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: oaID, Follow: true, Name: "张三"})
	if err != nil {
		t.Fatal(err)
	}
	b.follower = u.OpenID
	s, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: oaID, Name: "李四"})
	if err != nil {
		t.Fatal(err)
	}
	b.stranger = s.OpenID
	m, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: mpID, UnionID: u.UnionID})
	if err != nil {
		t.Fatal(err)
	}
	b.mpUser = m.OpenID
	return b
}

func wantCode(t *testing.T, err error, code int, class wechat.ErrorClass) {
	t.Helper()
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != code {
		t.Fatalf("err = %v, want errcode %d", err, code)
	}
	if got := wechat.ClassOf(err); got != class {
		t.Errorf("class of %d = %s, want %s", code, got, class)
	}
	if apiErr.RID == "" {
		t.Errorf("no rid parsed from %v", err)
	}
}

func TestSimTokens(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	tok, err := b.raw.GetToken(b.ctx, oaID, oaSecret)
	if err != nil || len(tok.Token) < 100 || tok.ExpiresIn != 7200*time.Second {
		t.Fatalf("GetToken = %+v, %v", tok, err)
	}
	st1, err := b.raw.GetStableToken(b.ctx, oaID, oaSecret, false)
	if err != nil {
		t.Fatal(err)
	}
	if st1.Token == tok.Token {
		t.Fatal("stable and classic tokens are the same")
	}
	st2, _ := b.raw.GetStableToken(b.ctx, oaID, oaSecret, false)
	if st2.Token != st1.Token {
		t.Fatal("stable_token changed without force_refresh")
	}
	st3, _ := b.raw.GetStableToken(b.ctx, oaID, oaSecret, true)
	if st3.Token == st1.Token {
		t.Fatal("force_refresh returned the same token")
	}

	_, err = b.raw.GetToken(b.ctx, oaID, "wrong-secret")
	wantCode(t, err, 40125, wechat.ClassPermanent)
	_, err = b.raw.GetStableToken(b.ctx, "wx_unknown_app", oaSecret, false)
	wantCode(t, err, 40013, wechat.ClassPermanent)
}

func TestSimIPWhitelist(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	app := b.sim.Apps()[0]
	for _, a := range b.sim.Apps() {
		if a.AppID == oaID {
			app = a
		}
	}
	app.IPWhitelist = []string{"203.0.113.1"}
	if err := b.sim.UpdateApp(app); err != nil {
		t.Fatal(err)
	}
	_, err := b.raw.GetStableToken(b.ctx, oaID, oaSecret, false)
	wantCode(t, err, 40164, wechat.ClassPermanent)
	var apiErr *wechat.APIError
	errors.As(err, &apiErr)
	if apiErr.IP() != "127.0.0.1" || !strings.Contains(err.Error(), "add 127.0.0.1 to") ||
		!strings.Contains(err.Error(), "开发 → 基本配置 → IP白名单") {
		t.Errorf("40164 message: %v", err)
	}
}

func TestSimUsers(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	u, err := b.oa.UserInfo(b.ctx, b.follower, "")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Subscribed() || u.OpenID != b.follower || u.UnionID == "" || u.SubscribeTime == 0 || u.SubscribeScene == "" {
		t.Errorf("UserInfo = %+v", u)
	}
	list, err := b.oa.BatchUserInfo(b.ctx, []wechat.UserInfoRequest{{OpenID: b.stranger}, {OpenID: b.follower, Lang: "zh_CN"}})
	if err != nil || len(list) != 2 || list[0].OpenID != b.stranger || list[0].Subscribed() || !list[1].Subscribed() {
		t.Fatalf("BatchUserInfo = %+v, %v", list, err)
	}
	page, err := b.oa.Followers(b.ctx, "")
	if err != nil || page.Total != 1 || len(page.OpenIDs) != 1 || page.OpenIDs[0] != b.follower {
		t.Fatalf("Followers = %+v, %v", page, err)
	}

	_, err = b.oa.UserInfo(b.ctx, "o_not_of_this_app_000000000", "")
	wantCode(t, err, 40003, wechat.ClassPermanent)
	_, err = b.mp.UserInfo(b.ctx, b.mpUser, "") // mini programs have no user/info
	wantCode(t, err, 48001, wechat.ClassPermanent)
}

func TestSimTemplates(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	data := wechat.Values(map[string]string{"thing1": "张三 <VIP> & Co", "time2": "2026-11-24 10:00"})
	id, err := b.oa.SendTemplate(b.ctx, &wechat.TemplateMessage{ToUser: b.follower, TemplateID: templateID,
		URL: "https://example.com/lead?id=1&src=wx", ClientMsgID: "lead-1", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if id <= 1<<53 {
		t.Errorf("msgid %d is not above 2^53: precision is not tested", id)
	}
	again, err := b.oa.SendTemplate(b.ctx, &wechat.TemplateMessage{ToUser: b.follower, TemplateID: templateID, ClientMsgID: "lead-1", Data: data})
	if err != nil || again != id {
		t.Errorf("same client_msg_id: msgid %d (want %d), %v", again, id, err)
	}
	inbox, _ := b.sim.Inbox(oaID, b.follower)
	found := false
	for _, it := range inbox {
		if it.MsgID == id && strings.Contains(it.Text, "张三 <VIP> & Co") {
			found = true
		}
	}
	if !found {
		t.Errorf("the follower's phone did not get the template card with the Chinese text intact: %+v", inbox)
	}

	list, err := b.oa.ListTemplates(b.ctx)
	if err != nil || len(list) == 0 {
		t.Fatalf("ListTemplates = %v, %v", list, err)
	}
	newID, err := b.oa.AddTemplate(b.ctx, "TM00015", nil)
	if err != nil || newID == "" {
		t.Fatalf("AddTemplate = %q, %v", newID, err)
	}
	if err := b.oa.DeleteTemplate(b.ctx, newID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		msg   *wechat.TemplateMessage
		code  int
		class wechat.ErrorClass
	}{
		{"not a follower", &wechat.TemplateMessage{ToUser: b.stranger, TemplateID: templateID, Data: data}, 43004, wechat.ClassPermanent},
		{"unknown template", &wechat.TemplateMessage{ToUser: b.follower, TemplateID: "nope", Data: data}, 40037, wechat.ClassPermanent},
		{"unknown openid", &wechat.TemplateMessage{ToUser: "o_nobody_0000000000000000000", TemplateID: templateID, Data: data}, 40003, wechat.ClassPermanent},
		{"thing too long", &wechat.TemplateMessage{ToUser: b.follower, TemplateID: templateID,
			Data: wechat.Values(map[string]string{"thing1": strings.Repeat("长", 21), "time2": "10:00"})}, 47003, wechat.ClassPermanent},
	}
	for _, tt := range tests {
		_, err := b.oa.SendTemplate(b.ctx, tt.msg)
		t.Run(tt.name, func(t *testing.T) { wantCode(t, err, tt.code, tt.class) })
	}
	if err := b.oa.DeleteTemplate(b.ctx, "nope"); err == nil {
		t.Error("deleting an unknown template succeeded")
	}
}

func TestSimSubscriptionMessages(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	data := wechat.Values(map[string]string{"thing1": "羽绒服"})
	biz := &wechat.SubscribeMessage{ToUser: b.follower, TemplateID: notifyID, Page: "https://example.com/o/1", Data: data}
	_, err := b.oa.SendSubscribe(b.ctx, biz)
	wantCode(t, err, 43101, wechat.ClassPermanent) // no grant yet
	if _, err := b.sim.Act(b.ctx, b.follower, wechatsim.Action{AppID: oaID, Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{notifyID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.oa.SendSubscribe(b.ctx, biz); err != nil {
		t.Fatal(err)
	}
	_, err = b.oa.SendSubscribe(b.ctx, biz) // the one grant is used
	wantCode(t, err, 43101, wechat.ClassPermanent)

	mpMsg := &wechat.MiniProgramSubscribeMessage{ToUser: b.mpUser, TemplateID: mpSubscribeID, Page: "pages/index?id=1",
		State: wechat.MiniProgramStateDeveloper, Lang: "zh_CN", Data: data}
	_, err = b.mp.SendMiniProgramSubscribe(b.ctx, mpMsg)
	wantCode(t, err, 43101, wechat.ClassPermanent)
	if _, err := b.sim.Act(b.ctx, b.mpUser, wechatsim.Action{AppID: mpID, Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{mpSubscribeID}}); err != nil {
		t.Fatal(err)
	}
	id, err := b.mp.SendMiniProgramSubscribe(b.ctx, mpMsg)
	if err != nil || id == 0 {
		t.Fatalf("SendMiniProgramSubscribe = %d, %v", id, err)
	}
	_, err = b.mp.SendMiniProgramSubscribe(b.ctx, &wechat.MiniProgramSubscribeMessage{ToUser: b.mpUser, TemplateID: "nope", Data: data})
	wantCode(t, err, 40037, wechat.ClassPermanent)
}

func TestSimCustomMessages(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	err := b.oa.SendCustom(b.ctx, wechat.NewCustomText(b.stranger, "你好"))
	wantCode(t, err, 45015, wechat.ClassPermanent)

	// Let the 1-minute window of the follow close; then a message from the
	// user opens a 48-hour window for 5 messages.
	b.clock.Advance(2 * time.Minute)
	if _, err := b.sim.Act(b.ctx, b.follower, wechatsim.Action{AppID: oaID, Type: wechatsim.ActionText, Content: "在吗"}); err != nil {
		t.Fatal(err)
	}
	if err := b.oa.CustomTyping(b.ctx, b.follower, true); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := b.oa.SendCustom(b.ctx, wechat.NewCustomText(b.follower, "在的 <a href=\"https://example.com\">看看</a>")); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	err = b.oa.SendCustom(b.ctx, wechat.NewCustomText(b.follower, "第六条"))
	wantCode(t, err, 45047, wechat.ClassQuota)
}

func TestSimQRCodesAndMenu(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	qr, err := b.oa.CreateQRCode(b.ctx, wechat.TempQRCode("bind:S-1024", 7*24*time.Hour))
	if err != nil || qr.Ticket == "" || qr.ExpireSeconds != 7*24*3600 || qr.URL == "" {
		t.Fatalf("CreateQRCode = %+v, %v", qr, err)
	}
	resp, err := b.httpClient.Get(b.oa.ShowQRCodeURL(qr.Ticket))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		t.Errorf("showqrcode: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	perm, err := b.oa.CreateQRCode(b.ctx, wechat.PermanentQRCode("shop-1"))
	if err != nil || perm.ExpireSeconds != 0 {
		t.Fatalf("permanent = %+v, %v", perm, err)
	}

	menu := &wechat.Menu{Buttons: []wechat.MenuButton{
		{Type: "click", Name: "今日歌曲", Key: "V1001_TODAY_MUSIC"},
		{Name: "菜单", SubButtons: []wechat.MenuButton{{Type: "view", Name: "搜索", URL: "https://www.example.com/?q=1&r=2"}}},
	}}
	if err := b.oa.CreateMenu(b.ctx, menu); err != nil {
		t.Fatal(err)
	}
	got, err := b.oa.GetMenu(b.ctx)
	if err != nil || len(got.Menu.Buttons) != 2 || got.Menu.Buttons[1].SubButtons[0].URL != "https://www.example.com/?q=1&r=2" {
		t.Fatalf("GetMenu = %+v, %v", got, err)
	}
	if err := b.oa.DeleteMenu(b.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = b.oa.GetMenu(b.ctx)
	wantCode(t, err, 46003, wechat.ClassPermanent)
	err = b.oa.CreateMenu(b.ctx, &wechat.Menu{Buttons: []wechat.MenuButton{{Type: "click", Name: strings.Repeat("长", 20), Key: "k"}}})
	wantCode(t, err, 40018, wechat.ClassPermanent)
}

func TestSimMiniProgramLoginAndIPs(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	res, err := b.sim.Act(b.ctx, b.mpUser, wechatsim.Action{AppID: mpID, Type: wechatsim.ActionOpenMiniProgram})
	if err != nil || res.Code == "" {
		t.Fatalf("open_miniprogram: %+v, %v", res, err)
	}
	s, err := b.raw.Code2Session(b.ctx, mpID, mpSecret, res.Code)
	if err != nil || s.OpenID != b.mpUser || s.SessionKey == "" || s.UnionID == "" {
		t.Fatalf("Code2Session = %+v, %v", s, err)
	}
	_, err = b.raw.Code2Session(b.ctx, mpID, mpSecret, res.Code)
	wantCode(t, err, 40163, wechat.ClassPermanent)
	_, err = b.raw.Code2Session(b.ctx, mpID, mpSecret, "never-issued")
	wantCode(t, err, 40029, wechat.ClassPermanent)

	ips, err := b.oa.CallbackIPs(b.ctx)
	if err != nil || len(ips) == 0 {
		t.Fatalf("CallbackIPs = %v, %v", ips, err)
	}
	ips, err = b.oa.APIDomainIPs(b.ctx)
	if err != nil || len(ips) == 0 {
		t.Fatalf("APIDomainIPs = %v, %v", ips, err)
	}
}

func TestSimErrorClasses(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil { // fetch a token first
		t.Fatal(err)
	}
	tests := []struct {
		code  int
		class wechat.ErrorClass
	}{{-1, wechat.ClassRetryable}, {45011, wechat.ClassRetryable}, {45009, wechat.ClassQuota}}
	for _, tt := range tests {
		if _, err := b.sim.SetFault(wechatsim.Fault{AppID: oaID, Path: "/cgi-bin/getcallbackip", ErrCode: tt.code, Times: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := b.oa.CallbackIPs(b.ctx)
		wantCode(t, err, tt.code, tt.class)
	}
	// A hanging API is a retryable timeout.
	short := wechat.NewClient(wechat.ClientOptions{BaseURLs: []string{b.api.URL},
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}}).WithTokenSource(b.oaTokens)
	if _, err := b.sim.SetFault(wechatsim.Fault{Path: "/cgi-bin/get_api_domain_ip", Timeout: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := short.APIDomainIPs(b.ctx)
	var te *wechat.TransportError
	if !errors.As(err, &te) || !te.Timeout() || wechat.ClassOf(err) != wechat.ClassRetryable {
		t.Fatalf("timeout: %v", err)
	}
	if strings.Contains(err.Error(), "access_token=") && !strings.Contains(err.Error(), "access_token=REDACTED") {
		t.Errorf("token in error: %v", err)
	}
}

func TestSimFailover(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
		t.Fatal(err)
	}
	// The primary domain goes down: calls go to api2.
	b.sim.SetDomainDown("api", true)
	for range 3 {
		if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
			t.Fatalf("with api down: %v", err)
		}
	}
	// The primary comes back but is still cooling down: api2 serves; take
	// api2 down to prove the primary is not tried yet... and then that it is.
	b.sim.SetDomainDown("api", false)
	calls := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip")
	b.sim.SetDomainDown("api2", true)
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
		t.Fatalf("fallback to the cooling primary: %v", err)
	}
	b.sim.SetDomainDown("api2", false)
	// After the cool-down the primary is first again: with api2 down no
	// failover is even needed.
	b.clock.Advance(2 * time.Minute)
	b.sim.SetDomainDown("api2", true)
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
		t.Fatalf("after cool-down: %v", err)
	}
	if got := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip") - calls; got != 2 {
		t.Errorf("%d calls reached the platform, want 2", got)
	}
	// An errcode never fails over.
	b.sim.SetDomainDown("api2", false)
	if _, err := b.sim.SetFault(wechatsim.Fault{Domain: "api", Path: "/cgi-bin/getcallbackip", ErrCode: -1, Times: 1}); err != nil {
		t.Fatal(err)
	}
	before := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip")
	_, err := b.oa.CallbackIPs(b.ctx)
	wantCode(t, err, -1, wechat.ClassRetryable)
	if n := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip") - before; n != 1 {
		t.Errorf("errcode -1 caused %d calls, want 1 (no failover)", n)
	}
}

func TestSimTokenRejectedRetriedOnce(t *testing.T) {
	t.Parallel()
	b := setupSim(t)
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
		t.Fatal(err)
	}
	// A foreign force refresh invalidates our token.
	if _, err := b.raw.GetStableToken(b.ctx, oaID, oaSecret, true); err != nil {
		t.Fatal(err)
	}
	before := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip")
	if _, err := b.oa.CallbackIPs(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n := b.sim.CallCount(oaID, "/cgi-bin/getcallbackip") - before; n != 2 || b.oaTokens.invalidated != 1 {
		t.Errorf("%d calls, %d invalidations; want 2 and 1", n, b.oaTokens.invalidated)
	}
}
