package wechat

import (
	"context"
	"net/http"
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
		Buttons []MenuButton `json:"button"`
		MenuID  Int64        `json:"menuid,omitempty"`
	} `json:"conditionalmenu,omitempty"`
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
