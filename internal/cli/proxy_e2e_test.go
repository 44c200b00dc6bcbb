package cli

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// proxy.rate_per_key and proxy.burst_per_key reach the proxy: with a burst
// of 2 at 0.01 calls per second, the third call in a row is refused with
// 429 rate_limited and Retry-After, while the first two answer from WeChat.
func TestProxyRatePerKeyFromConfig(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000e2epx1"
		secret = "e2e-px-secret-0123456789abcdef0123"
	)
	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{AppID: appID, AppSecret: secret, CallbackURL: gatewayURL + "/wx/main", Token: "pxtoken"}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: secret, Token: "pxtoken",
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simURL}}}
	}, func(cfg *config.Config) {
		cfg.Proxy = config.ProxyConfig{RatePerKey: 0.01, BurstPerKey: 2}
	})
	for i := range 3 {
		status, header, body := e.api("GET", "/wechat/main/cgi-bin/user/get", "")
		if i < 2 {
			var answer struct {
				Total   *int `json:"total"`
				ErrCode int  `json:"errcode"`
			}
			if status != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Total == nil || answer.ErrCode != 0 {
				t.Fatalf("call %d: %d %s, want WeChat's follower list", i+1, status, body)
			}
			continue
		}
		var problem struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &problem)
		if status != http.StatusTooManyRequests || problem.Error.Code != "rate_limited" || header.Get("Retry-After") == "" {
			t.Fatalf("call 3: %d %s (Retry-After %q), want 429 rate_limited", status, body, header.Get("Retry-After"))
		}
	}
}
