// Package menu is an official account's custom menu (自定义菜单): a menu
// file (YAML or JSON) checked against WeChat's rules before anything is
// uploaded, applied, read back and compared.
package menu

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Menu is the default menu: 1–3 buttons, each a leaf or a submenu of 1–5.
type Menu struct {
	Buttons []Button `json:"button" yaml:"buttons"`
}

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
	if n := len(m.Buttons); n < 1 || n > MaxButtons {
		bad("menu_buttons", "buttons", "a menu has 1 to %d buttons (got %d) — 菜单需要 1 到 %d 个一级按钮", MaxButtons, n, MaxButtons)
	}
	domains := map[string]bool{}
	for i, b := range m.Buttons {
		at := fmt.Sprintf("buttons[%d]", i)
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
	if len(domains) > MaxURLDomains {
		bad("menu_url_domains", "buttons", "the menu links %d domains; WeChat takes at most %d (65316) — 菜单中的链接最多 %d 个域名", len(domains), MaxURLDomains, MaxURLDomains)
	}
	return out
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

// Apply checks m and, when it keeps every rule, makes it the account's
// menu (WeChat replaces the whole menu at once: nothing is half-applied).
func Apply(ctx context.Context, c *wechat.Client, m Menu) error {
	if probs := Check(m); len(probs) > 0 {
		return &ErrInvalid{Problems: probs}
	}
	w := toWeChat(m)
	if err := c.CreateMenu(ctx, &w); err != nil {
		return fmt.Errorf("menu: uploading: %w", err)
	}
	return nil
}

// Current reads the account's menu from WeChat; an account without one
// has an empty Menu.
func Current(ctx context.Context, c *wechat.Client) (Menu, error) {
	info, err := c.GetMenu(ctx)
	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 46003 {
		return Menu{Buttons: []Button{}}, nil
	}
	if err != nil {
		return Menu{}, fmt.Errorf("menu: reading: %w", err)
	}
	return fromWeChat(info.Menu.Buttons), nil
}

// Delete removes the account's menus.
func Delete(ctx context.Context, c *wechat.Client) error {
	if err := c.DeleteMenu(ctx); err != nil {
		return fmt.Errorf("menu: deleting: %w", err)
	}
	return nil
}

func toWeChat(m Menu) wechat.Menu {
	var conv func(bs []Button) []wechat.MenuButton
	conv = func(bs []Button) []wechat.MenuButton {
		var out []wechat.MenuButton
		for _, b := range bs {
			out = append(out, wechat.MenuButton{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, MediaID: b.MediaID,
				AppID: b.AppID, PagePath: b.PagePath, ArticleID: b.ArticleID, SubButtons: conv(b.SubButtons)})
		}
		return out
	}
	return wechat.Menu{Buttons: conv(m.Buttons)}
}

func fromWeChat(bs []wechat.MenuButton) Menu {
	var conv func(bs []wechat.MenuButton) []Button
	conv = func(bs []wechat.MenuButton) []Button {
		out := []Button{}
		for _, b := range bs {
			nb := Button{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, MediaID: b.MediaID, AppID: b.AppID,
				PagePath: b.PagePath, ArticleID: b.ArticleID}
			if len(b.SubButtons) > 0 {
				nb.SubButtons = conv(b.SubButtons)
			}
			out = append(out, nb)
		}
		return out
	}
	return Menu{Buttons: conv(bs)}
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
	return out
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
