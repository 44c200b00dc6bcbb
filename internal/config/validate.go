package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidationError lists every problem found in a configuration, so one run
// of `wxgate config check` shows them all.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

// Limits from WeChat's console and protocol.
const (
	encodingAESKeyLength = 43
	tokenMinLength       = 3
	tokenMaxLength       = 32
	accountNameMaxLength = 32
	minTimestampWindow   = time.Minute
	minMaxBodyBytes      = 1024
	wechatReplyTimeout   = 5 * time.Second
	maxNewsArticles      = 8
)

// Validate reports every problem in c at once, as a *ValidationError, or nil.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	if err := checkListen(c.Listen); err != "" {
		add("listen must be host:port, e.g. 127.0.0.1:8080 or :8080 (%s) — listen 格式应为 主机:端口，例如 127.0.0.1:8080", err)
	}
	if c.Metrics.Listen != "" {
		if err := checkListen(c.Metrics.Listen); err != "" {
			add("metrics.listen must be host:port, e.g. 127.0.0.1:9464, or empty to serve no separate metrics listener (%s) — metrics.listen 格式应为 主机:端口，例如 127.0.0.1:9464", err)
		} else if c.Metrics.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			add("metrics.listen must differ from listen (%s); to serve /metrics on the main listener set metrics.on_public_listener with a metrics.token — metrics.listen 不能与 listen 相同", c.Listen)
		}
	}
	if c.Metrics.OnPublicListener && c.Metrics.Token == "" {
		add("metrics.on_public_listener needs metrics.token (or metrics.token_file): /metrics names the accounts and must not be open to anyone — 在公开监听地址上提供 /metrics 必须设置 metrics.token")
	}
	if c.PublicURL != "" && !isHTTPURL(c.PublicURL) {
		add("public_url must be a full http(s) URL like https://wx.example.com (got %q) — public_url 必须是完整的 http(s) 地址，例如 https://wx.example.com", c.PublicURL)
	}
	if problem := checkDatabaseURL(c.DatabaseURL); problem != "" {
		add("%s", problem)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		add("log_level must be debug, info, warn or error (got %q) — log_level 只能是 debug、info、warn 或 error", c.LogLevel)
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		add("log_format must be text or json (got %q) — log_format 只能是 text 或 json", c.LogFormat)
	}
	if c.Callback.TimestampWindow < minTimestampWindow {
		add("callback.timestamp_window must be at least 1m, WeChat retries a message for about 15s (got %s) — callback.timestamp_window 至少为 1m（微信会在约 15 秒内重试）", c.Callback.TimestampWindow)
	}
	if c.Callback.MaxBodyBytes < minMaxBodyBytes {
		add("callback.max_body_bytes must be at least %d (got %d) — callback.max_body_bytes 至少为 %d 字节", minMaxBodyBytes, c.Callback.MaxBodyBytes, minMaxBodyBytes)
	}
	if c.Callback.ReplyDeadline <= 0 || c.Callback.ReplyDeadline >= wechatReplyTimeout {
		add("callback.reply_deadline must be above 0 and below 5s, WeChat's time limit (got %s) — callback.reply_deadline 必须大于 0 且小于 5 秒（微信等待回复的上限）", c.Callback.ReplyDeadline)
	}

	if c.Push.RatePerAccount < 0 || c.Push.Burst < 0 {
		add("push.rate_per_account and push.burst must not be negative (0 means no limit) — push.rate_per_account 和 push.burst 不能为负数（0 表示不限速）")
	}
	if c.Push.Workers < 1 || c.Push.Workers > 1000 {
		add("push.workers must be between 1 and 1000 (got %d) — push.workers 必须在 1 到 1000 之间", c.Push.Workers)
	}
	if c.Push.CallTimeout < time.Second {
		add("push.call_timeout must be at least 1s (got %s) — push.call_timeout 至少为 1s", c.Push.CallTimeout)
	}
	if c.Push.ReceiptTimeout < time.Second {
		add("push.receipt_timeout must be at least 1s (got %s) — push.receipt_timeout 至少为 1s", c.Push.ReceiptTimeout)
	}
	if c.API.RatePerKey < 0 || c.API.BurstPerKey < 0 {
		add("api.rate_per_key and api.burst_per_key must not be negative (0 means no limit) — api.rate_per_key 和 api.burst_per_key 不能为负数（0 表示不限速）")
	}
	if c.Proxy.RatePerKey < 0 || c.Proxy.BurstPerKey < 0 {
		add("proxy.rate_per_key and proxy.burst_per_key must not be negative (0 means no limit) — proxy.rate_per_key 和 proxy.burst_per_key 不能为负数（0 表示不限速）")
	}

	if c.ShutdownTimeout < 2*time.Second || c.ShutdownTimeout > 10*time.Minute {
		add("shutdown_timeout must be between 2s and 10m (got %s) — shutdown_timeout 必须在 2s 到 10m 之间", c.ShutdownTimeout)
	}
	if c.MsgLog.Retention != 0 && c.MsgLog.Retention < 72*time.Hour {
		add("msglog.retention must be 0 (keep for ever) or at least 72h: the 48-hour customer-service window is read from the log (got %s) — msglog.retention 必须为 0（永久保留）或至少 72h（48 小时客服消息窗口依据消息记录判断）", c.MsgLog.Retention)
	}
	if c.Followers.SyncEvery != 0 && c.Followers.SyncEvery < time.Hour {
		add("followers.sync_every must be 0 (off) or at least 1h: user/get has a daily quota (got %s) — followers.sync_every 必须为 0（关闭）或至少 1h（user/get 有每日调用次数限制）", c.Followers.SyncEvery)
	}

	seen := make(map[string]bool, len(c.Accounts))
	for i, a := range c.Accounts {
		label := fmt.Sprintf("account %q", a.Name)
		if a.Name == "" {
			label = fmt.Sprintf("account #%d", i+1)
		}
		if a.Name != "" && seen[a.Name] {
			add("%s: the name is used by more than one account — 账号名称 %q 重复", label, a.Name)
		}
		seen[a.Name] = true
		for _, p := range a.problems() {
			add("%s: %s", label, p)
		}
	}

	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}

// Warnings lists settings that work but probably not as intended.
func (c Config) Warnings() []string {
	var warnings []string
	if len(c.Accounts) == 0 {
		warnings = append(warnings, "no accounts are configured; the gateway will answer no callbacks — 尚未配置任何账号，网关不会处理任何回调")
	}
	if c.PublicURL == "" {
		warnings = append(warnings, "public_url is not set; wxgate cannot print the full callback URL to paste into WeChat — 未设置 public_url，无法显示需要填写到微信后台的完整服务器地址(URL)")
	} else if u, err := url.Parse(c.PublicURL); err == nil && u.Port() != "" && u.Port() != "80" && u.Port() != "443" {
		warnings = append(warnings, fmt.Sprintf("public_url uses port %s, but WeChat only calls back on ports 80 and 443 — public_url 使用了端口 %s，微信服务器地址只支持 80 和 443 端口", u.Port(), u.Port()))
	}
	for _, a := range c.Accounts {
		if a.AppSecret == "" {
			warnings = append(warnings, fmt.Sprintf("account %q: app_secret is not set; callbacks work but API calls (tokens, followers, sends) will fail — 未设置 AppSecret：消息回调正常，但调用微信接口（access_token、粉丝、消息发送）会失败", a.Name))
		}
	}
	return warnings
}

func (a Account) problems() []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	if a.Name == "" {
		add("name is required — 缺少 name（账号名称，只能用小写字母、数字和 -，回调地址为 /wx/<name>）")
	} else if !isAccountName(a.Name) {
		add("name must be 1–32 characters of a-z, 0-9 and - because it becomes the callback path /wx/<name> — name 只能包含小写字母、数字和 -，长度 1–32（回调地址为 /wx/<name>）")
	}

	kind := a.Kind
	if kind == "" {
		kind = KindOfficialAccount
	}
	if kind != KindOfficialAccount && kind != KindMiniProgram {
		add("kind must be official_account or mini_program (got %q) — kind 只能是 official_account（公众号）或 mini_program（小程序）", a.Kind)
	}

	switch {
	case a.AppID == "":
		add("app_id is required — 缺少 AppID（开发 → 基本配置 里的 开发者ID(AppID)）")
	case !strings.HasPrefix(a.AppID, "wx") || !isAlphanumeric(a.AppID):
		add("app_id must start with \"wx\" and contain only letters and digits (got %q) — AppID 应以 wx 开头，且只包含字母和数字", a.AppID)
	}

	// A mini program needs a token only when its message push (消息推送)
	// is switched on; without one its callback path simply stays closed.
	callbackEnabled := kind != KindMiniProgram || a.Token != ""
	if callbackEnabled {
		problems = append(problems, a.callbackProblems()...)
	}

	if a.OriginalID != "" && !strings.HasPrefix(a.OriginalID, "gh_") {
		add("original_id must start with \"gh_\" (got %q) — 原始ID 应以 gh_ 开头（公众号设置 → 账号详情 → 原始ID）", a.OriginalID)
	}
	for _, raw := range a.APIBaseURLs {
		if !isHTTPURL(raw) {
			add("api_base_urls entry %q must be an http(s) URL like https://api.weixin.qq.com — api_base_urls 中的 %q 必须是 http(s) 地址", raw, raw)
		}
	}

	if a.TokenMode != "" && a.TokenMode != TokenModeStable && a.TokenMode != TokenModeClassic {
		add("token_mode must be stable or classic (got %q) — token_mode 只能是 stable（稳定版接口，推荐）或 classic（普通 access_token 接口）", a.TokenMode)
	}
	if a.TokenRefreshMargin < 0 || a.TokenRefreshMargin > time.Hour {
		add("token_refresh_margin must be between 0 and 1h (got %s) — token_refresh_margin 必须在 0 到 1h 之间", a.TokenRefreshMargin)
	}

	if len(a.Replies) > 0 && kind == KindMiniProgram {
		add("replies are for official accounts only; a mini program cannot answer messages passively — 小程序消息推送不支持被动回复，replies 只适用于公众号")
	}
	defaults := 0
	for i, rule := range a.Replies {
		if rule.Match == "default" {
			defaults++
			if defaults == 2 {
				add("replies[%d]: only one default rule is allowed — 只能有一条 default 规则", i)
			}
		}
		for _, p := range rule.problems() {
			add("replies[%d]: %s", i, p)
		}
	}
	return problems
}

func (a Account) callbackProblems() []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	switch {
	case a.Token == "":
		add("token is required — 缺少 Token（公众号后台 开发 → 基本配置 → 服务器配置 里填写的令牌）")
	case utf8.RuneCountInString(a.Token) < tokenMinLength || utf8.RuneCountInString(a.Token) > tokenMaxLength:
		n := utf8.RuneCountInString(a.Token)
		add("token must be 3–32 characters (got %d) — Token 长度必须为 3–32 个字符（当前 %d 个）", n, n)
	case !isAlphanumeric(a.Token):
		bad := firstNonAlphanumeric(a.Token)
		add("token may contain only letters and digits (found %q) — Token 只能包含英文字母和数字（发现 %q）", bad, bad)
	}

	mode := a.MessageMode
	if mode == "" {
		mode = ModePlaintext
	}
	switch mode {
	case ModePlaintext:
	case ModeCompatible, ModeSafe:
		if a.EncodingAESKey == "" {
			modeName := map[MessageMode]string{ModeCompatible: "兼容模式", ModeSafe: "安全模式"}[mode]
			add("message_mode %s needs encoding_aes_key — %s 需要 EncodingAESKey（公众号后台 开发 → 基本配置 → 服务器配置 里的 消息加解密密钥）", mode, modeName)
		}
	default:
		add("message_mode must be plaintext, compatible or safe (got %q) — message_mode 只能是 plaintext（明文模式）、compatible（兼容模式）或 safe（安全模式）", a.MessageMode)
	}

	if a.EncodingAESKey != "" {
		problems = append(problems, aesKeyProblems("encoding_aes_key", "EncodingAESKey", a.EncodingAESKey)...)
	}
	if a.PreviousEncodingAESKey != "" {
		problems = append(problems, aesKeyProblems("previous_encoding_aes_key", "旧的 EncodingAESKey", a.PreviousEncodingAESKey)...)
	}
	return problems
}

func aesKeyProblems(key, chineseName, value string) []string {
	if n := utf8.RuneCountInString(value); n != encodingAESKeyLength {
		return []string{fmt.Sprintf("%s must be exactly 43 characters (got %d) — %s 必须是 43 个字符（当前 %d 个）", key, n, chineseName, n)}
	}
	if !isAlphanumeric(value) {
		bad := firstNonAlphanumeric(value)
		return []string{fmt.Sprintf("%s may contain only letters and digits (found %q) — %s 只能包含英文字母和数字（发现 %q）", key, bad, chineseName, bad)}
	}
	return nil
}

func (r ReplyRule) problems() []string {
	var problems []string
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	switch r.Match {
	case "keyword":
		if r.Pattern == "" {
			add("a keyword rule needs a pattern — 关键词规则需要 pattern")
		}
		switch r.Mode {
		case "", "exact", "contains":
		case "regex":
			if _, err := regexp.Compile(r.Pattern); err != nil {
				add("pattern %q is not a valid regular expression: %v — pattern 不是有效的正则表达式", r.Pattern, err)
			}
		default:
			add("mode must be exact, contains or regex (got %q) — mode 只能是 exact（完全匹配）、contains（包含）或 regex（正则）", r.Mode)
		}
	case "msg_type":
		if !slices.Contains([]string{"text", "image", "voice", "video", "shortvideo", "location", "link"}, r.MsgType) {
			add("msg_type must be text, image, voice, video, shortvideo, location or link (got %q) — msg_type 必须是 text、image、voice、video、shortvideo、location 或 link", r.MsgType)
		}
	case "click":
		if r.EventKey == "" {
			add("a click rule needs the menu's event_key — 菜单点击规则需要 event_key（自定义菜单中按钮的 key）")
		}
	case "subscribe", "default":
	case "":
		add("match is required (keyword, msg_type, subscribe, click or default) — 缺少 match（keyword、msg_type、subscribe、click 或 default）")
	default:
		add("match must be keyword, msg_type, subscribe, click or default (got %q) — match 只能是 keyword、msg_type、subscribe、click 或 default", r.Match)
	}

	reply := r.Reply
	switch reply.Type {
	case "text":
		if reply.Content == "" {
			add("a text reply needs content — 文本回复需要 content")
		}
	case "none":
	case "image", "voice", "video":
		switch {
		case reply.MediaID == "" && reply.File == "":
			add("a %s reply needs media_id or file (a local file wxgate uploads) — %s 回复需要 media_id 或 file（本地文件，由 wxgate 自动上传）", reply.Type, reply.Type)
		case reply.MediaID != "" && reply.File != "":
			add("a %s reply takes media_id or file, not both — %s 回复只能填写 media_id 或 file 之一", reply.Type, reply.Type)
		case reply.File != "":
			if st, err := os.Stat(reply.File); err != nil || st.IsDir() {
				add("file %s cannot be read — 无法读取文件 %s", reply.File, reply.File)
			}
		}
	case "news":
		if len(reply.Articles) == 0 || len(reply.Articles) > maxNewsArticles {
			add("a news reply needs 1–8 articles (got %d) — 图文回复需要 1–8 篇文章（当前 %d 篇）", len(reply.Articles), len(reply.Articles))
		}
		for i, article := range reply.Articles {
			if article.Title == "" {
				add("articles[%d] needs a title — 第 %d 篇图文缺少 title", i, i+1)
			}
			switch {
			case article.PicFile != "" && article.PicURL != "":
				add("articles[%d] takes pic_url or pic_file, not both — 第 %d 篇图文只能填写 pic_url 或 pic_file 之一", i, i+1)
			case article.PicFile != "":
				if st, err := os.Stat(article.PicFile); err != nil || st.IsDir() {
					add("articles[%d]: file %s cannot be read — 无法读取文件 %s", i, article.PicFile, article.PicFile)
				}
			}
		}
	case "":
		add("reply.type is required (text, none, image, voice, video or news) — 缺少 reply.type（text、none、image、voice、video 或 news）")
	default:
		add("reply.type must be text, none, image, voice, video or news (got %q) — reply.type 只能是 text、none、image、voice、video 或 news", reply.Type)
	}
	return problems
}

// checkListen returns what is wrong with a listen address, or "".
func checkListen(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Sprintf("got %q", listen)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	return ""
}

// checkDatabaseURL returns a problem with the database URL, or "". It
// never repeats the URL, which may hold a password.
func checkDatabaseURL(raw string) string {
	const accepted = "database_url must be sqlite://path/to/file.db or postgres://user:password@host:5432/dbname"
	const chinese = "database_url 只支持 sqlite://文件路径 或 postgres://用户:密码@主机:5432/数据库"
	scheme, rest, ok := strings.Cut(raw, "://")
	switch {
	case raw == "":
		return accepted + " (it is empty) — " + chinese + "（当前为空）"
	case !ok:
		return accepted + " (it has no scheme) — " + chinese
	case scheme == "sqlite":
		if rest == "" || strings.Contains(rest, ":memory:") {
			return "database_url sqlite:// needs a file path such as sqlite://data/wxgate.db; an in-memory database cannot be used — sqlite:// 需要文件路径，例如 sqlite://data/wxgate.db，不支持内存数据库"
		}
	case scheme == "postgres" || scheme == "postgresql":
		if _, err := url.Parse(raw); err != nil {
			return "database_url is not a valid postgres:// URL (check that special characters in the password are %-encoded) — database_url 不是有效的 postgres:// 地址（密码中的特殊字符需要 % 编码）"
		}
	default:
		return fmt.Sprintf("%s (got scheme %q) — %s（当前为 %q）", accepted, scheme, chinese, scheme)
	}
	return ""
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func isAccountName(name string) bool {
	if len(name) == 0 || len(name) > accountNameMaxLength {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isAlphanumeric(s string) bool {
	return firstNonAlphanumeric(s) == ""
}

func firstNonAlphanumeric(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return string(r)
		}
	}
	return ""
}
