package wechat

import (
	"context"
	"net/http"
	"strconv"
)

// Menu is the custom menu: 1–3 top-level buttons with up to 5 sub-buttons each.
type Menu struct {
	Buttons []MenuButton `json:"button"`
}

// MenuButton is a button or, with SubButtons, a submenu.
type MenuButton struct {
	Type       string       `json:"type,omitempty"`
	Name       string       `json:"name"`
	Key        string       `json:"key,omitempty"`
	URL        string       `json:"url,omitempty"`
	MediaID    string       `json:"media_id,omitempty"`
	AppID      string       `json:"appid,omitempty"`
	PagePath   string       `json:"pagepath,omitempty"`
	ArticleID  string       `json:"article_id,omitempty"`
	SubButtons []MenuButton `json:"sub_button,omitempty"`
}

// MenuInfo is the answer of menu/get.
type MenuInfo struct {
	Menu struct {
		Buttons []MenuButton `json:"button"`
		MenuID  Int64        `json:"menuid,omitempty"`
	} `json:"menu"`
	ConditionalMenus []struct {
		Buttons   []MenuButton `json:"button"`
		MatchRule MatchRule    `json:"matchrule"`
		MenuID    Int64        `json:"menuid,omitempty"`
	} `json:"conditionalmenu,omitempty"`
}

// MatchRule says who sees a conditional menu. WeChat takes only tag_id
// and client_platform_type now (1 iOS, 2 Android, 3 others); a rule with
// sex, region or language is refused with 65320, but old menus read back
// with them.
type MatchRule struct {
	TagID              FlexString `json:"tag_id,omitempty"`
	ClientPlatformType FlexString `json:"client_platform_type,omitempty"`
	Sex                FlexString `json:"sex,omitempty"`
	Country            FlexString `json:"country,omitempty"`
	Province           FlexString `json:"province,omitempty"`
	City               FlexString `json:"city,omitempty"`
	Language           FlexString `json:"language,omitempty"`
}

// ConditionalMenu is a personalised menu (个性化菜单) for addconditional.
type ConditionalMenu struct {
	Buttons   []MenuButton `json:"button"`
	MatchRule MatchRule    `json:"matchrule"`
}

// AddConditionalMenu calls POST /cgi-bin/menu/addconditional and returns
// the new menu's id. WeChat answers 65303 when there is no default menu.
func (c *Client) AddConditionalMenu(ctx context.Context, m *ConditionalMenu) (int64, error) {
	var out struct {
		MenuID Int64 `json:"menuid"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/menu/addconditional", token: true, body: m}, &out); err != nil {
		return 0, err
	}
	return int64(out.MenuID), nil
}

// DeleteConditionalMenu calls POST /cgi-bin/menu/delconditional (65301 for
// an unknown id).
func (c *Client) DeleteConditionalMenu(ctx context.Context, menuID int64) error {
	body := map[string]string{"menuid": strconv.FormatInt(menuID, 10)}
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/menu/delconditional", token: true, body: body}, nil)
}

// TryMatchMenu calls POST /cgi-bin/menu/trymatch: the buttons the follower
// userID (an openid or WeChat id) sees.
func (c *Client) TryMatchMenu(ctx context.Context, userID string) ([]MenuButton, error) {
	var out struct {
		Buttons []MenuButton `json:"button"`
	}
	body := map[string]string{"user_id": userID}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/menu/trymatch", token: true, body: body}, &out); err != nil {
		return nil, err
	}
	return out.Buttons, nil
}

// CreateMenu calls POST /cgi-bin/menu/create.
func (c *Client) CreateMenu(ctx context.Context, m *Menu) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/menu/create", token: true, body: m}, nil)
}

// GetMenu calls GET /cgi-bin/menu/get. An account without a menu answers errcode 46003.
func (c *Client) GetMenu(ctx context.Context) (*MenuInfo, error) {
	var m MenuInfo
	if err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/menu/get", token: true}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DeleteMenu calls GET /cgi-bin/menu/delete.
func (c *Client) DeleteMenu(ctx context.Context) error {
	return c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/menu/delete", token: true}, nil)
}
