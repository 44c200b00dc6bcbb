package wechat

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// UserInfo is a follower profile from user/info or user/info/batchget.
// Since 2021-12-27 WeChat no longer returns nickname or avatar.
type UserInfo struct {
	// Subscribe is 1 for a follower, 0 otherwise (then only OpenID and
	// perhaps UnionID are set).
	Subscribe      int     `json:"subscribe"`
	OpenID         string  `json:"openid"`
	UnionID        string  `json:"unionid,omitempty"`
	Language       string  `json:"language,omitempty"`
	SubscribeTime  Int64   `json:"subscribe_time,omitempty"`
	Remark         string  `json:"remark,omitempty"`
	GroupID        Int64   `json:"groupid,omitempty"`
	TagIDs         []Int64 `json:"tagid_list,omitempty"`
	SubscribeScene string  `json:"subscribe_scene,omitempty"`
	QRScene        Int64   `json:"qr_scene,omitempty"`
	QRSceneStr     string  `json:"qr_scene_str,omitempty"`
}

// Subscribed reports whether the user follows the account.
func (u UserInfo) Subscribed() bool { return u.Subscribe == 1 }

// UserInfo calls GET /cgi-bin/user/info. lang is zh_CN, zh_TW or en;
// empty means zh_CN.
func (c *Client) UserInfo(ctx context.Context, openID, lang string) (*UserInfo, error) {
	if lang == "" {
		lang = "zh_CN"
	}
	var u UserInfo
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/user/info", token: true,
		query: url.Values{"openid": {openID}, "lang": {lang}}}, &u)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// UserInfoRequest is one entry of a batch profile request.
type UserInfoRequest struct {
	OpenID string `json:"openid"`
	Lang   string `json:"lang,omitempty"`
}

// MaxBatchUserInfo is the most openids user/info/batchget accepts.
const MaxBatchUserInfo = 100

// BatchUserInfo calls POST /cgi-bin/user/info/batchget for up to 100
// users; the answer follows the request order.
func (c *Client) BatchUserInfo(ctx context.Context, users []UserInfoRequest) ([]UserInfo, error) {
	if len(users) == 0 {
		return nil, nil
	}
	if len(users) > MaxBatchUserInfo {
		return nil, fmt.Errorf("wechat /cgi-bin/user/info/batchget: %d openids, at most %d per call", len(users), MaxBatchUserInfo)
	}
	body := struct {
		UserList []UserInfoRequest `json:"user_list"`
	}{users}
	var out struct {
		List []UserInfo `json:"user_info_list"`
	}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/user/info/batchget", token: true, body: body}, &out); err != nil {
		return nil, err
	}
	return out.List, nil
}

// FollowerPage is one page of user/get.
type FollowerPage struct {
	Total      int64
	OpenIDs    []string
	NextOpenID string
}

// Followers calls GET /cgi-bin/user/get; pass "" for the first page and
// the previous page's NextOpenID after that. The last page has fewer than
// 10 000 openids (possibly none) and an empty NextOpenID.
func (c *Client) Followers(ctx context.Context, nextOpenID string) (*FollowerPage, error) {
	q := url.Values{}
	if nextOpenID != "" {
		q.Set("next_openid", nextOpenID)
	}
	var out struct {
		Total int64 `json:"total"`
		Count int64 `json:"count"`
		Data  *struct {
			OpenID []string `json:"openid"`
		} `json:"data"`
		NextOpenID string `json:"next_openid"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/user/get", token: true, query: q}, &out); err != nil {
		return nil, err
	}
	p := &FollowerPage{Total: out.Total, NextOpenID: out.NextOpenID}
	if out.Data != nil {
		p.OpenIDs = out.Data.OpenID
	}
	if len(p.OpenIDs) == 0 {
		p.NextOpenID = ""
	}
	return p, nil
}
