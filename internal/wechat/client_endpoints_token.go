package wechat

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AccessToken is an access_token as WeChat issued it.
type AccessToken struct {
	Token string
	// ExpiresIn is the validity WeChat announced (7200 s today; a stable
	// token handed out again counts down).
	ExpiresIn time.Duration
	// FetchedAt is the client clock when the answer arrived.
	FetchedAt time.Time
}

// ExpiresAt is FetchedAt + ExpiresIn.
func (t AccessToken) ExpiresAt() time.Time { return t.FetchedAt.Add(t.ExpiresIn) }

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   Int64  `json:"expires_in"`
}

func (c *Client) tokenFrom(path string, a tokenAnswer) (AccessToken, error) {
	if a.AccessToken == "" {
		return AccessToken{}, &DecodeError{Path: path, Err: errEmptyToken, Snippet: "{…}"}
	}
	return AccessToken{
		Token:     a.AccessToken,
		ExpiresIn: time.Duration(a.ExpiresIn) * time.Second,
		FetchedAt: c.t.now(),
	}, nil
}

var errEmptyToken = errorString("answer has no access_token")

type errorString string

func (e errorString) Error() string { return string(e) }

// GetToken calls GET /cgi-bin/token (the classic access_token). Each call
// issues a new token; the previous one stays valid for about 5 minutes.
// Quota: 2000 calls a day.
func (c *Client) GetToken(ctx context.Context, appID, appSecret string) (AccessToken, error) {
	const path = "/cgi-bin/token"
	var a tokenAnswer
	err := c.do(ctx, call{method: http.MethodGet, path: path, query: url.Values{
		"grant_type": {"client_credential"}, "appid": {appID}, "secret": {appSecret},
	}}, &a)
	if err != nil {
		return AccessToken{}, err
	}
	return c.tokenFrom(path, a)
}

// GetStableToken calls POST /cgi-bin/stable_token. Without forceRefresh,
// calls during the token's validity return the same token; WeChat rotates
// it only in its last 5 minutes. forceRefresh invalidates the current
// stable token at once (20 a day, at least 30 s apart).
func (c *Client) GetStableToken(ctx context.Context, appID, appSecret string, forceRefresh bool) (AccessToken, error) {
	const path = "/cgi-bin/stable_token"
	body := struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", appID, appSecret, forceRefresh}
	var a tokenAnswer
	if err := c.do(ctx, call{method: http.MethodPost, path: path, body: body}, &a); err != nil {
		return AccessToken{}, err
	}
	return c.tokenFrom(path, a)
}
