package web

import (
	"net/http"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/token"
)

// accountRoutes registers the accounts page.
func (c *Console) accountRoutes() {
	c.page("GET /admin/accounts", c.accountsPage)
}

// accountCard is what to paste into 公众号后台 → 服务器配置, and whether
// WeChat has been reaching this gateway.
type accountCard struct {
	Account     config.Account
	CallbackURL string
	// LastCallback is the newest push in the message log; nil when none.
	LastCallback *msglog.Message
	Token        token.Status
	HasToken     bool
	TokenLeft    string
	// History is the token's refresh record (its last failed refresh);
	// SendErrors are WeChat's latest error answers to sends.
	History    token.History
	SendErrors []push.APIError
}

func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request) {
	base := config.BaseURL(c.opts.PublicURL, r)
	cards := make([]accountCard, 0, len(c.opts.Accounts))
	for _, a := range c.opts.Accounts {
		card := accountCard{Account: a}
		if a.Kind != config.KindMiniProgram {
			card.CallbackURL = base + a.CallbackPath()
		}
		if c.opts.Messages != nil {
			last, err := c.opts.Messages.List(r.Context(), msglog.Filter{Account: a.Name, Limit: 1})
			if err != nil {
				c.fail(w, r, err)
				return
			}
			if len(last) > 0 {
				card.LastCallback = &last[0]
			}
		}
		if c.opts.Tokens != nil {
			card.Token, card.HasToken = c.opts.Tokens.Status(a.Name)
			if card.HasToken && !card.Token.ExpiresAt.IsZero() {
				card.TokenLeft = card.Token.ExpiresAt.Sub(c.now()).Round(time.Minute).String()
			}
			if card.HasToken {
				h, _, err := c.opts.Tokens.History(r.Context(), a.Name)
				if err != nil {
					c.fail(w, r, err)
					return
				}
				card.History = h
			}
		}
		if c.opts.Push != nil {
			errs, err := c.opts.Push.RecentErrors(r.Context(), a.Name, 5)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			card.SendErrors = errs
		}
		cards = append(cards, card)
	}
	c.render(w, r, http.StatusOK, "accounts", "accounts.title", cards, nil)
}

// accountTexts are the accounts page's texts.
var accountTexts = texts{
	"accounts.title": {"公众号接入", "Accounts"},
	"accounts.intro": {"把下面的内容填到 公众号后台 → 设置与开发 → 基本配置 → 服务器配置，消息加解密方式选同一种。",
		"Paste these into the WeChat console (Settings and development → Basic configuration → Server configuration) and choose the same message encryption mode."},
	"accounts.kind.official_account": {"公众号", "Official account"},
	"accounts.kind.mini_program":     {"小程序", "Mini program"},
	"accounts.url":                   {"服务器地址（URL）", "Server URL"},
	"accounts.token":                 {"令牌（Token）", "Token"},
	"accounts.aeskey":                {"消息加解密密钥（EncodingAESKey）", "EncodingAESKey"},
	"accounts.mode":                  {"消息加解密方式", "Message encryption mode"},
	"accounts.mode.plaintext":        {"明文模式", "Plaintext"},
	"accounts.mode.compatible":       {"兼容模式", "Compatible"},
	"accounts.mode.safe":             {"安全模式（推荐）", "Safe mode (recommended)"},
	"accounts.copy":                  {"复制", "Copy"},
	"accounts.none":                  {"（未设置）", "(not set)"},
	"accounts.ip": {"IP 白名单：调用微信接口需要把本服务器的公网出口 IP 加到 基本配置 → IP白名单。出口 IP 由服务器所在网络决定（云服务器一般是它的公网 IP，可在服务器上执行 curl -s https://ifconfig.me 查看）。",
		"IP allow-list: calling WeChat's API needs this server's public egress IP in Basic configuration → IP allow-list. The egress IP depends on the server's network (on a cloud server usually its public IP; run curl -s https://ifconfig.me on it)."},
	"accounts.last_callback": {"最近一次收到微信推送", "Last push from WeChat"},
	"accounts.never":         {"还没有收到过推送。保存服务器配置时微信会发一次验证请求；之后粉丝的消息和事件会出现在这里。", "No push received yet. WeChat sends a verification request when the server configuration is saved; followers' messages and events appear here after that."},
	"accounts.token_state":   {"access_token", "access_token"},
	"accounts.token_ok":      {"有效，约 %s 后过期（版本 %d）", "valid, expires in about %s (version %d)"},
	"accounts.token_none":    {"尚未获取", "not fetched yet"},
	"accounts.token_paused":  {"已暂停刷新，直到 %s：%s", "refresh paused until %s: %s"},
	"accounts.no_secret":     {"未配置 AppSecret：只接收推送，不调用微信接口。", "No AppSecret configured: receives pushes, makes no API calls."},
	"accounts.api_errors":    {"最近的接口错误", "Last API errors"},
	"accounts.no_api_errors": {"没有：最近的调用都成功了。", "None: the recent calls all succeeded."},
	"accounts.token_error":   {"获取 access_token 失败", "access_token refresh failed"},
	"accounts.send_error":    {"发送", "send"},
	"accounts.secret_note":   {"Token 和 EncodingAESKey 是密钥，只给管理员看，不要发到群里。", "The Token and EncodingAESKey are secrets: shown to admins only; do not paste them into chats."},
}
