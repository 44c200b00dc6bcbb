package wechat

import (
	"context"
	"net/http"
	"net/url"
)

// Session is the answer of sns/jscode2session. SessionKey decrypts the
// mini program's open data; never send it to the client.
type Session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	// UnionID is empty when the mini program is not bound to an Open Platform account.
	UnionID string `json:"unionid,omitempty"`
}

// Code2Session calls GET /sns/jscode2session with the code from the
// mini program's wx.login (single use, valid about 5 minutes).
func (c *Client) Code2Session(ctx context.Context, appID, appSecret, jsCode string) (*Session, error) {
	var s Session
	err := c.do(ctx, call{method: http.MethodGet, path: "/sns/jscode2session", query: url.Values{
		"appid": {appID}, "secret": {appSecret}, "js_code": {jsCode}, "grant_type": {"authorization_code"},
	}}, &s)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

type ipListAnswer struct {
	IPList []string `json:"ip_list"`
}

// CallbackIPs calls GET /cgi-bin/getcallbackip: the addresses (IPs and
// CIDRs) WeChat posts callbacks from. Refresh daily.
func (c *Client) CallbackIPs(ctx context.Context) ([]string, error) {
	var a ipListAnswer
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/getcallbackip", token: true}, &a)
	return a.IPList, err
}

// APIDomainIPs calls GET /cgi-bin/get_api_domain_ip: the addresses behind
// api.weixin.qq.com, for egress firewalls.
func (c *Client) APIDomainIPs(ctx context.Context) ([]string, error) {
	var a ipListAnswer
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/get_api_domain_ip", token: true}, &a)
	return a.IPList, err
}
