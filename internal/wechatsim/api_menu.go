package wechatsim

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Custom menu (protocol doc §5.11).

// menuButton is a button as menu/create takes it and menu/get returns it
// (sub_button is always written, [] for leaves, as WeChat does).
type menuButton struct {
	Type      string       `json:"type,omitempty"`
	Name      string       `json:"name"`
	Key       string       `json:"key,omitempty"`
	URL       string       `json:"url,omitempty"`
	AppID     string       `json:"appid,omitempty"`
	PagePath  string       `json:"pagepath,omitempty"`
	MediaID   string       `json:"media_id,omitempty"`
	ArticleID string       `json:"article_id,omitempty"`
	SubButton []menuButton `json:"sub_button"`
}

// Menu limits.
const (
	maxTopButtons     = 3
	maxSubButtons     = 5
	maxTopNameBytes   = 16
	maxSubNameBytes   = 60
	maxKeyBytes       = 128
	maxURLBytes       = 1024
	maxMenuURLDomains = 3
)

// clickLikeTypes need a key.
var clickLikeTypes = map[string]bool{
	"click": true, "scancode_push": true, "scancode_waitmsg": true, "pic_sysphoto": true,
	"pic_photo_or_album": true, "pic_weixin": true, "location_select": true,
}

var menuTypes = map[string]bool{
	"click": true, "view": true, "scancode_push": true, "scancode_waitmsg": true, "pic_sysphoto": true,
	"pic_photo_or_album": true, "pic_weixin": true, "location_select": true, "media_id": true,
	"view_limited": true, "article_id": true, "article_view_limited": true, "miniprogram": true,
}

// handleMenuCreate is POST /cgi-bin/menu/create.
func (s *Simulator) handleMenuCreate(c *apiCall) (any, *apiError) {
	var req struct {
		Button []menuButton `json:"button"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if apiErr := validateMenu(req.Button); apiErr != nil {
		return nil, apiErr
	}
	c.app.Menu = normalizeMenu(req.Button)
	c.app.MenuID = c.app.nextMenuID()
	return okAnswer, nil
}

func (a *appState) nextMenuID() int64 {
	if a.NextMenuID == 0 {
		a.NextMenuID = 208379500
	}
	a.NextMenuID++
	return a.NextMenuID
}

// handleMenuGet is GET /cgi-bin/menu/get: 46003 when there is no menu.
func (s *Simulator) handleMenuGet(c *apiCall) (any, *apiError) {
	if len(c.app.Menu) == 0 {
		return nil, wxErr(46003)
	}
	type menu struct {
		Button []menuButton `json:"button"`
		MenuID int64        `json:"menuid,omitempty"`
	}
	type conditional struct {
		Button    []menuButton `json:"button"`
		MatchRule matchRule    `json:"matchrule"`
		MenuID    int64        `json:"menuid"`
	}
	answer := struct {
		Menu        menu          `json:"menu"`
		Conditional []conditional `json:"conditionalmenu,omitempty"`
	}{Menu: menu{Button: normalizeMenu(c.app.Menu)}}
	// WeChat names the default menu's id only once there are conditional
	// menus beside it.
	if len(c.app.Conditional) > 0 {
		answer.Menu.MenuID = c.app.MenuID
	}
	for _, m := range c.app.Conditional {
		answer.Conditional = append(answer.Conditional, conditional{normalizeMenu(m.Buttons), m.MatchRule, m.MenuID})
	}
	return answer, nil
}

// handleMenuDelete is GET /cgi-bin/menu/delete: the default menu and
// every conditional one.
func (s *Simulator) handleMenuDelete(c *apiCall) (any, *apiError) {
	c.app.Menu = nil
	c.app.Conditional = nil
	return okAnswer, nil
}

// conditionalMenu is a personalised menu (个性化菜单).
type conditionalMenu struct {
	MenuID    int64        `json:"menuid"`
	Buttons   []menuButton `json:"button"`
	MatchRule matchRule    `json:"matchrule"`
}

// matchRule is addconditional's matchrule. Since WeChat's privacy change
// only tag_id and client_platform_type may be set (65320 otherwise); the
// other fields are kept so that the refusal can be given.
type matchRule struct {
	TagID              looseString `json:"tag_id,omitempty"`
	Sex                looseString `json:"sex,omitempty"`
	Country            looseString `json:"country,omitempty"`
	Province           looseString `json:"province,omitempty"`
	City               looseString `json:"city,omitempty"`
	ClientPlatformType looseString `json:"client_platform_type,omitempty"`
	Language           looseString `json:"language,omitempty"`
}

// looseString takes a JSON string or number (SDKs send "2" and 2 alike).
type looseString string

func (l *looseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*l = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = looseString(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*l = looseString(n.String())
	return nil
}

// SimulatedClientPlatform is the client_platform_type of every simulated
// phone: Android (1 iOS, 2 Android, 3 others).
const SimulatedClientPlatform = "2"

// handleMenuAddConditional is POST /cgi-bin/menu/addconditional: a default
// menu must exist (65303), the rule must name something (65304) and no
// privacy field (65320); the buttons follow menu/create's rules.
func (s *Simulator) handleMenuAddConditional(c *apiCall) (any, *apiError) {
	var req struct {
		Button    []menuButton `json:"button"`
		MatchRule *matchRule   `json:"matchrule"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if len(c.app.Menu) == 0 {
		return nil, wxErr(65303)
	}
	rule := req.MatchRule
	if rule == nil || *rule == (matchRule{}) {
		return nil, wxErr(65304)
	}
	if rule.Sex != "" || rule.Country != "" || rule.Province != "" || rule.City != "" || rule.Language != "" {
		return nil, wxErr(65320)
	}
	if rule.TagID != "" {
		if _, err := strconv.Atoi(string(rule.TagID)); err != nil {
			return nil, wxErr(40003)
		}
	}
	switch rule.ClientPlatformType {
	case "", "1", "2", "3":
	default:
		return nil, wxErrf(40003, "invalid client_platform_type")
	}
	if apiErr := validateMenu(req.Button); apiErr != nil {
		return nil, apiErr
	}
	// The three link domains count over the default and every
	// conditional menu together.
	domains := map[string]bool{}
	for _, buttons := range append([][]menuButton{c.app.Menu, req.Button}, c.app.conditionalButtons()...) {
		collectDomains(buttons, domains)
	}
	if len(domains) > maxMenuURLDomains {
		return nil, wxErr(65316)
	}
	m := &conditionalMenu{MenuID: c.app.nextMenuID(), Buttons: normalizeMenu(req.Button), MatchRule: *rule}
	c.app.Conditional = append(c.app.Conditional, m)
	return struct {
		MenuID string `json:"menuid"`
	}{strconv.FormatInt(m.MenuID, 10)}, nil
}

func (a *appState) conditionalButtons() [][]menuButton {
	var out [][]menuButton
	for _, m := range a.Conditional {
		out = append(out, m.Buttons)
	}
	return out
}

func collectDomains(buttons []menuButton, domains map[string]bool) {
	for _, b := range buttons {
		if b.Type == "view" || b.Type == "miniprogram" {
			if u, err := url.Parse(b.URL); err == nil && u.Host != "" {
				domains[u.Hostname()] = true
			}
		}
		collectDomains(b.SubButton, domains)
	}
}

// handleMenuDelConditional is POST /cgi-bin/menu/delconditional
// {"menuid"}: 65301 when there is no such conditional menu.
func (s *Simulator) handleMenuDelConditional(c *apiCall) (any, *apiError) {
	var req struct {
		MenuID looseString `json:"menuid"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	id, _ := strconv.ParseInt(string(req.MenuID), 10, 64)
	i := slices.IndexFunc(c.app.Conditional, func(m *conditionalMenu) bool { return m.MenuID == id })
	if i < 0 {
		return nil, wxErr(65301)
	}
	c.app.Conditional = slices.Delete(c.app.Conditional, i, i+1)
	return okAnswer, nil
}

// handleMenuTryMatch is POST /cgi-bin/menu/trymatch {"user_id"}: the menu
// that follower sees (user_id is an openid here; 65302 for anyone else).
func (s *Simulator) handleMenuTryMatch(c *apiCall) (any, *apiError) {
	var req struct {
		UserID string `json:"user_id"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.st.Users[req.UserID]
	if u == nil || u.AppID != c.app.Config.AppID {
		return nil, wxErr(65302)
	}
	buttons := c.app.menuFor(u)
	if len(buttons) == 0 {
		return nil, wxErr(46003)
	}
	return struct {
		Button []menuButton `json:"button"`
	}{normalizeMenu(buttons)}, nil
}

// menuFor is the menu u sees: the newest conditional menu whose rule
// matches, else the default one. A follower with several tags is matched
// by the tag given last, as WeChat does.
func (a *appState) menuFor(u *userState) []menuButton {
	if cm := a.conditionalFor(u); cm != nil {
		return cm.Buttons
	}
	return a.Menu
}

// conditionalFor is the conditional menu u sees, or nil for the default.
func (a *appState) conditionalFor(u *userState) *conditionalMenu {
	if len(a.Menu) == 0 {
		return nil
	}
	for i := len(a.Conditional) - 1; i >= 0; i-- {
		rule := a.Conditional[i].MatchRule
		if rule.TagID != "" {
			if len(u.TagIDs) == 0 || strconv.Itoa(u.TagIDs[len(u.TagIDs)-1]) != string(rule.TagID) {
				continue
			}
		}
		if rule.ClientPlatformType != "" && string(rule.ClientPlatformType) != SimulatedClientPlatform {
			continue
		}
		return a.Conditional[i]
	}
	return nil
}

func normalizeMenu(buttons []menuButton) []menuButton {
	out := make([]menuButton, len(buttons))
	for i, b := range buttons {
		if b.SubButton == nil {
			b.SubButton = []menuButton{}
		} else {
			b.SubButton = normalizeMenu(b.SubButton)
		}
		out[i] = b
	}
	return out
}

// validateMenu applies the limits of §5.11 with WeChat's errcodes: counts
// (40016/40023), types (40017/40024), name sizes (40018/40025), key sizes
// (40019/40026), url sizes (40020/40027), media/article ids (40007) and at
// most three link domains (65316).
func validateMenu(buttons []menuButton) *apiError {
	if len(buttons) < 1 || len(buttons) > maxTopButtons {
		return wxErr(40016)
	}
	domains := map[string]bool{}
	for _, b := range buttons {
		if len(b.SubButton) == 0 {
			if apiErr := validateButton(b, false, domains); apiErr != nil {
				return apiErr
			}
			continue
		}
		if b.Name == "" || len(b.Name) > maxTopNameBytes {
			return wxErr(40018)
		}
		if len(b.SubButton) > maxSubButtons {
			return wxErr(40023)
		}
		for _, sub := range b.SubButton {
			if len(sub.SubButton) > 0 {
				return wxErrf(40022, "invalid sub menu level")
			}
			if apiErr := validateButton(sub, true, domains); apiErr != nil {
				return apiErr
			}
		}
	}
	if len(domains) > maxMenuURLDomains {
		return wxErr(65316)
	}
	return nil
}

func validateButton(b menuButton, sub bool, domains map[string]bool) *apiError {
	pick := func(top, inSub int) *apiError {
		if sub {
			return wxErr(inSub)
		}
		return wxErr(top)
	}
	maxName := maxTopNameBytes
	if sub {
		maxName = maxSubNameBytes
	}
	switch {
	case !menuTypes[b.Type]:
		return pick(40017, 40024)
	case b.Name == "" || len(b.Name) > maxName:
		return pick(40018, 40025)
	case clickLikeTypes[b.Type] && (b.Key == "" || len(b.Key) > maxKeyBytes):
		return pick(40019, 40026)
	}
	switch b.Type {
	case "view", "miniprogram":
		u, err := url.Parse(b.URL)
		if b.URL == "" || len(b.URL) > maxURLBytes || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return pick(40020, 40027)
		}
		domains[u.Hostname()] = true
		if b.Type == "miniprogram" && (b.AppID == "" || b.PagePath == "") {
			return wxErr(40013)
		}
	case "media_id", "view_limited":
		if b.MediaID == "" {
			return wxErr(40007)
		}
	case "article_id", "article_view_limited":
		if b.ArticleID == "" {
			return wxErr(40007)
		}
	}
	return nil
}

// MenuButton is a button of an app's menu, for the page.
type MenuButton struct {
	Type, Name, Key, URL string
	Sub                  []MenuButton
}

// Menu returns the menu the follower openid sees (the default menu when
// openid is empty or unknown; empty when there is none).
func (s *Simulator) Menu(appID, openid string) []MenuButton {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil
	}
	buttons := app.Menu
	if u := s.st.Users[openid]; u != nil && u.AppID == appID {
		buttons = app.menuFor(u)
	}
	var conv func([]menuButton) []MenuButton
	conv = func(in []menuButton) []MenuButton {
		var out []MenuButton
		for _, b := range in {
			out = append(out, MenuButton{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, Sub: conv(b.SubButton)})
		}
		return out
	}
	return conv(buttons)
}
