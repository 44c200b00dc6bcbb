// Package menu is an official account's custom menu (自定义菜单): a menu
// file (YAML or JSON) checked against WeChat's rules before anything is
// uploaded, applied, read back and compared.
package menu

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Menu is the default menu (1–3 buttons, each a leaf or a submenu of 1–5)
// and the conditional menus (个性化菜单) shown instead to the followers
// their rules match; the last matching one wins, as on WeChat.
type Menu struct {
	Buttons     []Button          `json:"button" yaml:"buttons"`
	Conditional []ConditionalMenu `json:"conditional,omitempty" yaml:"conditional,omitempty"`
}

// ConditionalMenu is a menu for the followers Match selects.
type ConditionalMenu struct {
	Match   MatchRule `json:"match" yaml:"match"`
	Buttons []Button  `json:"button" yaml:"buttons"`
	// MenuID is WeChat's id, set on menus read back (menu show).
	MenuID int64 `json:"menuid,omitempty" yaml:"menuid,omitempty"`
}

// MatchRule selects followers by tag (a name or id) and client platform
// (ios, android or others). WeChat no longer takes sex, region or
// language (65320, a privacy change); those keys are read so that a file
// using them is refused with that reason rather than as an unknown key.
type MatchRule struct {
	Tag            string `json:"tag,omitempty" yaml:"tag,omitempty"`
	ClientPlatform string `json:"client_platform,omitempty" yaml:"client_platform,omitempty"`
	Sex            string `json:"sex,omitempty" yaml:"sex,omitempty"`
	Language       string `json:"language,omitempty" yaml:"language,omitempty"`
	Country        string `json:"country,omitempty" yaml:"country,omitempty"`
	Province       string `json:"province,omitempty" yaml:"province,omitempty"`
	City           string `json:"city,omitempty" yaml:"city,omitempty"`
}

// platformCodes are client_platform_type's values.
var platformCodes = map[string]string{"ios": "1", "android": "2", "others": "3"}

// Button is one button; with SubButtons it is a submenu and has no type.
type Button struct {
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type,omitempty" yaml:"type,omitempty"`
	Key        string   `json:"key,omitempty" yaml:"key,omitempty"`
	URL        string   `json:"url,omitempty" yaml:"url,omitempty"`
	AppID      string   `json:"appid,omitempty" yaml:"appid,omitempty"`
	PagePath   string   `json:"pagepath,omitempty" yaml:"pagepath,omitempty"`
	MediaID    string   `json:"media_id,omitempty" yaml:"media_id,omitempty"`
	ArticleID  string   `json:"article_id,omitempty" yaml:"article_id,omitempty"`
	SubButtons []Button `json:"sub_button,omitempty" yaml:"sub_buttons,omitempty"`
}

// WeChat's limits (protocol doc §5.11).
const (
	MaxButtons      = 3
	MaxSubButtons   = 5
	MaxTopNameBytes = 16
	MaxSubNameBytes = 60
	MaxKeyBytes     = 128
	MaxURLBytes     = 1024
	MaxURLDomains   = 3
)

// keyTypes need a key: their event carries it.
var keyTypes = map[string]bool{"click": true, "scancode_push": true, "scancode_waitmsg": true, "pic_sysphoto": true,
	"pic_photo_or_album": true, "pic_weixin": true, "location_select": true}

// Types are the button types WeChat takes.
var Types = []string{"click", "view", "miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
	"pic_photo_or_album", "pic_weixin", "location_select", "media_id", "view_limited", "article_id", "article_view_limited"}

// Parse reads a menu file: YAML (JSON is YAML too), unknown keys refused.
func Parse(data []byte) (Menu, error) {
	var m Menu
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return Menu{}, problem.Invalidf("invalid_menu_file", "", "the menu file is not valid YAML/JSON: %v — 菜单文件格式错误", err)
	}
	return m, nil
}

// Check tests m against WeChat's rules and returns every breach, each
// naming its button (buttons[1].sub_buttons[0]) and the rule.
func Check(m Menu) []*problem.Error {
	var out []*problem.Error
	bad := func(code, field, format string, args ...any) {
		out = append(out, problem.Invalidf(code, field, format, args...))
	}
	// The three link domains count over all the menus together.
	domains := map[string]bool{}
	checkButtons(m.Buttons, "buttons", domains, bad)
	for i, cm := range m.Conditional {
		at := fmt.Sprintf("conditional[%d]", i)
		checkRule(cm.Match, at+".match", bad)
		checkButtons(cm.Buttons, at+".buttons", domains, bad)
	}
	if len(domains) > MaxURLDomains {
		bad("menu_url_domains", "buttons", "the menus link %d domains; WeChat takes at most %d (65316) — 菜单中的链接最多 %d 个域名", len(domains), MaxURLDomains, MaxURLDomains)
	}
	return out
}

func checkRule(r MatchRule, at string, bad func(code, field, format string, args ...any)) {
	if r.Sex != "" || r.Language != "" || r.Country != "" || r.Province != "" || r.City != "" {
		bad("menu_match_privacy", at, "%s: WeChat no longer matches menus by sex, region or language (65320, privacy); use a tag — 微信已不支持按性别、地区、语言匹配个性化菜单（65320），请改用标签", at)
	}
	if r.Tag == "" && r.ClientPlatform == "" {
		bad("menu_match_empty", at, "%s: a conditional menu needs a tag or a client_platform to match (65304) — 个性化菜单需要匹配条件（tag 或 client_platform）", at)
	}
	if r.ClientPlatform != "" && platformCodes[strings.ToLower(r.ClientPlatform)] == "" {
		bad("menu_match_platform", at+".client_platform", "%s: client_platform is ios, android or others (got %q) — client_platform 只能是 ios、android 或 others", at, r.ClientPlatform)
	}
}

// checkButtons checks one menu's buttons; at is their path (buttons,
// conditional[0].buttons).
func checkButtons(buttons []Button, at string, domains map[string]bool, bad func(code, field, format string, args ...any)) {
	if n := len(buttons); n < 1 || n > MaxButtons {
		bad("menu_buttons", at, "%s: a menu has 1 to %d buttons (got %d) — 菜单需要 1 到 %d 个一级按钮", at, MaxButtons, n, MaxButtons)
	}
	for i, b := range buttons {
		at := fmt.Sprintf("%s[%d]", at, i)
		if len(b.SubButtons) == 0 {
			checkLeaf(b, at, MaxTopNameBytes, domains, bad)
			continue
		}
		checkName(b.Name, at, MaxTopNameBytes, bad)
		if b.Type != "" {
			bad("menu_submenu_type", at+".type", "%s has sub_buttons, so it takes no type (got %q) — 含二级菜单的按钮不能设置 type", at, b.Type)
		}
		if len(b.SubButtons) > MaxSubButtons {
			bad("menu_sub_buttons", at+".sub_buttons", "%s has %d sub_buttons; at most %d — 二级菜单最多 %d 个", at, len(b.SubButtons), MaxSubButtons, MaxSubButtons)
		}
		for j, sub := range b.SubButtons {
			subAt := fmt.Sprintf("%s.sub_buttons[%d]", at, j)
			if len(sub.SubButtons) > 0 {
				bad("menu_depth", subAt+".sub_buttons", "%s: menus have two levels only — 菜单最多两级", subAt)
			}
			checkLeaf(sub, subAt, MaxSubNameBytes, domains, bad)
		}
	}
}

func checkName(name, at string, max int, bad func(code, field, format string, args ...any)) {
	switch {
	case name == "":
		bad("menu_name", at+".name", "%s needs a name — %s 缺少按钮名称", at, at)
	case len(name) > max:
		bad("menu_name", at+".name", "%s: the name %q is %d bytes; at most %d (a Chinese character is 3) — 按钮名称最多 %d 字节（一个汉字 3 字节）",
			at, name, len(name), max, max)
	}
}

func checkLeaf(b Button, at string, maxName int, domains map[string]bool, bad func(code, field, format string, args ...any)) {
	checkName(b.Name, at, maxName, bad)
	known := false
	for _, t := range Types {
		known = known || t == b.Type
	}
	if !known {
		bad("menu_type", at+".type", "%s: type %q is not one of %s — 按钮类型无效", at, b.Type, strings.Join(Types, ", "))
		return
	}
	if keyTypes[b.Type] && (b.Key == "" || len(b.Key) > MaxKeyBytes) {
		bad("menu_key", at+".key", "%s: a %s button needs a key of 1 to %d bytes — %s 类型的按钮需要 key（最多 %d 字节）", at, b.Type, MaxKeyBytes, b.Type, MaxKeyBytes)
	}
	switch b.Type {
	case "view", "miniprogram":
		u, err := url.Parse(b.URL)
		if b.URL == "" || len(b.URL) > MaxURLBytes || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("menu_url", at+".url", "%s: a %s button needs an http(s) url of at most %d bytes — %s 类型的按钮需要 http(s) 链接", at, b.Type, MaxURLBytes, b.Type)
		} else {
			domains[u.Hostname()] = true
		}
		if b.Type == "miniprogram" && (b.AppID == "" || b.PagePath == "") {
			bad("menu_miniprogram", at+".appid", "%s: a miniprogram button needs appid and pagepath (url is the fallback for old clients) — 小程序按钮需要 appid 和 pagepath", at)
		}
	case "media_id", "view_limited":
		if b.MediaID == "" {
			bad("menu_media_id", at+".media_id", "%s: a %s button needs a media_id — 需要 media_id", at, b.Type)
		}
	case "article_id", "article_view_limited":
		if b.ArticleID == "" {
			bad("menu_article_id", at+".article_id", "%s: a %s button needs an article_id — 需要 article_id", at, b.Type)
		}
	}
}

// ErrInvalid wraps the breaches of a menu that is not uploaded.
type ErrInvalid struct{ Problems []*problem.Error }

func (e *ErrInvalid) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Message
	}
	return "the menu breaks WeChat's rules, nothing was uploaded — 菜单不符合微信规则，未上传:\n  " + strings.Join(lines, "\n  ")
}

// Unwrap gives the first breach, so the API answers with its code.
func (e *ErrInvalid) Unwrap() error { return e.Problems[0] }

// Apply checks m and, when every menu keeps WeChat's rules, makes it the
// account's menus: the default menu, then each conditional menu, then the
// old conditional menus go. Nothing is half-applied: when a conditional
// menu is refused, the ones just added are removed and the previous
// default menu is put back, so the account keeps the menus it had.
func Apply(ctx context.Context, c *wechat.Client, m Menu) error {
	if probs := Check(m); len(probs) > 0 {
		return &ErrInvalid{Problems: probs}
	}
	tags := &tagBook{client: c}
	rules := make([]wechat.MatchRule, len(m.Conditional))
	for i, cm := range m.Conditional {
		rule, err := tags.rule(ctx, cm.Match, fmt.Sprintf("conditional[%d].match.tag", i))
		if err != nil {
			return err
		}
		rules[i] = rule
	}
	prev, err := c.GetMenu(ctx)
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 46003 {
		prev, err = &wechat.MenuInfo{}, nil
	}
	if err != nil {
		return fmt.Errorf("menu: reading the current menus: %w", err)
	}
	// WeChat counts the link domains over every menu the account holds, so
	// when the old conditional menus and the new ones link more than three
	// together, the old ones must go before the new ones go up.
	oldFirst := len(prev.ConditionalMenus) > 0 && len(m.Conditional) > 0 && linkDomains(m, prev) > MaxURLDomains

	w := wechat.Menu{Buttons: toWeChat(m.Buttons)}
	if err := c.CreateMenu(ctx, &w); err != nil {
		return fmt.Errorf("menu: uploading: %w", err)
	}
	removeOld := func() error {
		for _, old := range prev.ConditionalMenus {
			err := c.DeleteConditionalMenu(ctx, int64(old.MenuID))
			if errors.As(err, &apiErr) && apiErr.Code == 65301 {
				err = nil // already gone
			}
			if err != nil {
				return fmt.Errorf("menu: removing the old conditional menu %d: %w", old.MenuID, err)
			}
		}
		return nil
	}
	if oldFirst {
		if err := removeOld(); err != nil {
			return errors.Join(err, restore(ctx, c, prev, nil, true))
		}
	}
	var added []int64
	for i, cm := range m.Conditional {
		id, err := c.AddConditionalMenu(ctx, &wechat.ConditionalMenu{Buttons: toWeChat(cm.Buttons), MatchRule: rules[i]})
		if err != nil {
			err = fmt.Errorf("menu: uploading conditional[%d]: %w; the previous menus were put back — 个性化菜单上传失败，已恢复原有菜单", i, err)
			return errors.Join(err, restore(ctx, c, prev, added, oldFirst))
		}
		added = append(added, id)
	}
	if !oldFirst {
		return removeOld()
	}
	return nil
}

// restore puts back the menus prev describes after a failed Apply: the
// conditional menus just added go, the default menu returns, and the old
// conditional menus are added again when they were removed.
func restore(ctx context.Context, c *wechat.Client, prev *wechat.MenuInfo, added []int64, readdOld bool) error {
	var errs []error
	for _, id := range added {
		if err := c.DeleteConditionalMenu(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("menu: restoring: removing conditional menu %d: %w", id, err))
		}
	}
	if len(prev.Menu.Buttons) == 0 {
		// There was no menu (so no conditional one either).
		if err := c.DeleteMenu(ctx); err != nil {
			errs = append(errs, fmt.Errorf("menu: restoring: deleting the new menu: %w", err))
		}
		return errors.Join(errs...)
	}
	if err := c.CreateMenu(ctx, &wechat.Menu{Buttons: prev.Menu.Buttons}); err != nil {
		errs = append(errs, fmt.Errorf("menu: restoring the previous default menu: %w", err))
	}
	if readdOld {
		for _, old := range prev.ConditionalMenus {
			if _, err := c.AddConditionalMenu(ctx, &wechat.ConditionalMenu{Buttons: old.Buttons, MatchRule: old.MatchRule}); err != nil {
				errs = append(errs, fmt.Errorf("menu: restoring conditional menu %d: %w", old.MenuID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// linkDomains counts the domains m and prev's conditional menus link.
func linkDomains(m Menu, prev *wechat.MenuInfo) int {
	domains := map[string]bool{}
	var walk func(bs []wechat.MenuButton)
	walk = func(bs []wechat.MenuButton) {
		for _, b := range bs {
			if u, err := url.Parse(b.URL); err == nil && u.Host != "" && (b.Type == "view" || b.Type == "miniprogram") {
				domains[u.Hostname()] = true
			}
			walk(b.SubButtons)
		}
	}
	walk(toWeChat(m.Buttons))
	for _, cm := range m.Conditional {
		walk(toWeChat(cm.Buttons))
	}
	for _, old := range prev.ConditionalMenus {
		walk(old.Buttons)
	}
	return len(domains)
}

// tagBook resolves tag names to ids and back, reading the account's tags
// from WeChat once, when first needed.
type tagBook struct {
	client *wechat.Client
	tags   []wechat.Tag
	loaded bool
}

func (b *tagBook) load(ctx context.Context) error {
	if b.loaded {
		return nil
	}
	tags, err := b.client.Tags(ctx)
	if err != nil {
		return fmt.Errorf("menu: reading the account's tags: %w", err)
	}
	b.tags, b.loaded = tags, true
	return nil
}

// rule is WeChat's matchrule for r; a tag is found by name, then by id.
func (b *tagBook) rule(ctx context.Context, r MatchRule, field string) (wechat.MatchRule, error) {
	out := wechat.MatchRule{ClientPlatformType: wechat.FlexString(platformCodes[strings.ToLower(r.ClientPlatform)])}
	if r.Tag == "" {
		return out, nil
	}
	if err := b.load(ctx); err != nil {
		return out, err
	}
	for _, t := range b.tags {
		if t.Name == r.Tag || strconv.FormatInt(t.ID, 10) == r.Tag {
			out.TagID = wechat.FlexString(strconv.FormatInt(t.ID, 10))
			return out, nil
		}
	}
	return out, problem.Invalidf("menu_unknown_tag", field, "%s: the account has no tag %q (create it first: wxgate tags create) — 公众号没有标签 %q", field, r.Tag, r.Tag)
}

// name is the tag name of id (the id itself when the tag is gone).
func (b *tagBook) name(ctx context.Context, id string) string {
	if b.load(ctx) != nil {
		return id
	}
	for _, t := range b.tags {
		if strconv.FormatInt(t.ID, 10) == id {
			return t.Name
		}
	}
	return id
}

// Current reads the account's menus from WeChat, tags by name; an account
// without a menu has an empty Menu.
func Current(ctx context.Context, c *wechat.Client) (Menu, error) {
	info, err := c.GetMenu(ctx)
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 46003 {
		return Menu{Buttons: []Button{}}, nil
	}
	if err != nil {
		return Menu{}, fmt.Errorf("menu: reading: %w", err)
	}
	m := Menu{Buttons: fromWeChat(info.Menu.Buttons)}
	tags := &tagBook{client: c}
	for _, cm := range info.ConditionalMenus {
		r := cm.MatchRule
		rule := MatchRule{Sex: string(r.Sex), Language: string(r.Language), Country: string(r.Country), Province: string(r.Province), City: string(r.City)}
		for name, code := range platformCodes {
			if code == string(r.ClientPlatformType) {
				rule.ClientPlatform = name
			}
		}
		if r.TagID != "" {
			rule.Tag = tags.name(ctx, string(r.TagID))
		}
		m.Conditional = append(m.Conditional, ConditionalMenu{Match: rule, Buttons: fromWeChat(cm.Buttons), MenuID: int64(cm.MenuID)})
	}
	return m, nil
}

// Match reads the buttons the follower openid sees (menu/trymatch).
func Match(ctx context.Context, c *wechat.Client, openid string) ([]Button, error) {
	bs, err := c.TryMatchMenu(ctx, openid)
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 65302 {
		err = errors.Join(problem.NotFoundf("follower_not_found", "openid", "%s is not a follower of this account (65302) — 该 openid 不是本公众号的粉丝", openid), err)
	}
	if err != nil {
		return nil, fmt.Errorf("menu: matching the menu of %s: %w", openid, err)
	}
	return fromWeChat(bs), nil
}

// Compare is Diff(Current, want), with want's tag ids written as names so
// that a file naming a tag by id matches what WeChat has.
func Compare(ctx context.Context, c *wechat.Client, want Menu) ([]string, error) {
	have, err := Current(ctx, c)
	if err != nil {
		return nil, err
	}
	tags := &tagBook{client: c}
	want.Conditional = slices.Clone(want.Conditional)
	for i, cm := range want.Conditional {
		if cm.Match.Tag != "" {
			want.Conditional[i].Match.Tag = tags.name(ctx, cm.Match.Tag)
		}
	}
	return Diff(have, want), nil
}

// Delete removes the account's menus, the conditional ones with them.
func Delete(ctx context.Context, c *wechat.Client) error {
	if err := c.DeleteMenu(ctx); err != nil {
		return fmt.Errorf("menu: deleting: %w", err)
	}
	return nil
}

func toWeChat(bs []Button) []wechat.MenuButton {
	var out []wechat.MenuButton
	for _, b := range bs {
		out = append(out, wechat.MenuButton{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, MediaID: b.MediaID,
			AppID: b.AppID, PagePath: b.PagePath, ArticleID: b.ArticleID, SubButtons: toWeChat(b.SubButtons)})
	}
	return out
}

func fromWeChat(bs []wechat.MenuButton) []Button {
	out := []Button{}
	for _, b := range bs {
		nb := Button{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, MediaID: b.MediaID, AppID: b.AppID,
			PagePath: b.PagePath, ArticleID: b.ArticleID}
		if len(b.SubButtons) > 0 {
			nb.SubButtons = fromWeChat(b.SubButtons)
		}
		out = append(out, nb)
	}
	return out
}

// Diff lists how want differs from have, one line per button that is
// added, removed or changed, by position (empty when they are the same).
func Diff(have, want Menu) []string {
	var out []string
	var walk func(at string, h, w []Button)
	walk = func(at string, h, w []Button) {
		for i := 0; i < max(len(h), len(w)); i++ {
			pos := fmt.Sprintf("%s[%d]", at, i)
			switch {
			case i >= len(h):
				out = append(out, fmt.Sprintf("+ %s %s", pos, describe(w[i])))
			case i >= len(w):
				out = append(out, fmt.Sprintf("- %s %s", pos, describe(h[i])))
			default:
				if describe(h[i]) != describe(w[i]) {
					out = append(out, fmt.Sprintf("~ %s %s → %s", pos, describe(h[i]), describe(w[i])))
				}
				walk(pos+".sub_buttons", h[i].SubButtons, w[i].SubButtons)
				continue
			}
		}
	}
	walk("buttons", have.Buttons, want.Buttons)
	for i := 0; i < max(len(have.Conditional), len(want.Conditional)); i++ {
		at := fmt.Sprintf("conditional[%d]", i)
		switch {
		case i >= len(have.Conditional):
			out = append(out, fmt.Sprintf("+ %s %s (%d buttons)", at, describeRule(want.Conditional[i].Match), len(want.Conditional[i].Buttons)))
		case i >= len(want.Conditional):
			out = append(out, fmt.Sprintf("- %s %s (%d buttons)", at, describeRule(have.Conditional[i].Match), len(have.Conditional[i].Buttons)))
		default:
			if h, w := describeRule(have.Conditional[i].Match), describeRule(want.Conditional[i].Match); h != w {
				out = append(out, fmt.Sprintf("~ %s.match %s → %s", at, h, w))
			}
			walk(at+".buttons", have.Conditional[i].Buttons, want.Conditional[i].Buttons)
		}
	}
	return out
}

// describeRule is a match rule in one line (match tag=VIP client_platform=ios).
func describeRule(r MatchRule) string {
	parts := []string{"match"}
	for _, kv := range [][2]string{{"tag", r.Tag}, {"client_platform", strings.ToLower(r.ClientPlatform)}, {"sex", r.Sex},
		{"language", r.Language}, {"country", r.Country}, {"province", r.Province}, {"city", r.City}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(parts, " ")
}

// describe is one button without its sub-buttons.
func describe(b Button) string {
	parts := []string{fmt.Sprintf("%q", b.Name)}
	for _, kv := range [][2]string{{"type", b.Type}, {"key", b.Key}, {"url", b.URL}, {"appid", b.AppID}, {"pagepath", b.PagePath},
		{"media_id", b.MediaID}, {"article_id", b.ArticleID}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(b.SubButtons) > 0 {
		parts = append(parts, fmt.Sprintf("(%d sub_buttons)", len(b.SubButtons)))
	}
	return strings.Join(parts, " ")
}
