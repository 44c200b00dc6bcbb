package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig is a configuration that passes Validate; each test case
// breaks one thing in it.
func validConfig() Config {
	cfg := Default()
	cfg.PublicURL = "https://wx.example.com"
	cfg.Accounts = []Account{
		{
			Name:           "main",
			Kind:           KindOfficialAccount,
			AppID:          "wx0123456789abcdef",
			AppSecret:      "test-secret-for-config-tests-0001",
			Token:          "mytoken",
			EncodingAESKey: validAESKey,
			MessageMode:    ModeSafe,
			APIBaseURLs:    DefaultAPIBaseURLs(),
			Replies: []ReplyRule{
				{Match: "keyword", Pattern: "hi", Reply: ReplyContent{Type: "text", Content: "hello"}},
				{Match: "default", Reply: ReplyContent{Type: "none"}},
			},
		},
		{Name: "shop-mp", Kind: KindMiniProgram, AppID: "wxfedcba9876543210", AppSecret: "fedcba9876543210fedcba9876543210"},
	}
	return cfg
}

func TestValidateAcceptsValidConfig(t *testing.T) {
	t.Parallel()
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string // each an exact problem, in order
	}{
		{
			name:   "aes key length",
			change: func(c *Config) { c.Accounts[0].EncodingAESKey = validAESKey[:42] },
			want:   []string{`account "main": encoding_aes_key must be exactly 43 characters (got 42) — EncodingAESKey 必须是 43 个字符（当前 42 个）`},
		},
		{
			name:   "aes key characters",
			change: func(c *Config) { c.Accounts[0].EncodingAESKey = validAESKey[:42] + "=" },
			want:   []string{`account "main": encoding_aes_key may contain only letters and digits (found "=") — EncodingAESKey 只能包含英文字母和数字（发现 "="）`},
		},
		{
			name:   "previous aes key length",
			change: func(c *Config) { c.Accounts[0].PreviousEncodingAESKey = "short" },
			want:   []string{`account "main": previous_encoding_aes_key must be exactly 43 characters (got 5) — 旧的 EncodingAESKey 必须是 43 个字符（当前 5 个）`},
		},
		{
			name:   "message log retention too short",
			change: func(c *Config) { c.MsgLog.Retention = time.Hour },
			want:   []string{`msglog.retention must be 0 (keep for ever) or at least 72h: the 48-hour customer-service window is read from the log (got 1h0m0s) — msglog.retention 必须为 0（永久保留）或至少 72h（48 小时客服消息窗口依据消息记录判断）`},
		},
		{
			name:   "message log kept for ever",
			change: func(c *Config) { c.MsgLog.Retention = 0 },
		},
		{
			name:   "missing token",
			change: func(c *Config) { c.Accounts[0].Token = "" },
			want:   []string{`account "main": token is required — 缺少 Token（公众号后台 开发 → 基本配置 → 服务器配置 里填写的令牌）`},
		},
		{
			name:   "token too short",
			change: func(c *Config) { c.Accounts[0].Token = "ab" },
			want:   []string{`account "main": token must be 3–32 characters (got 2) — Token 长度必须为 3–32 个字符（当前 2 个）`},
		},
		{
			name:   "token characters",
			change: func(c *Config) { c.Accounts[0].Token = "my_token" },
			want:   []string{`account "main": token may contain only letters and digits (found "_") — Token 只能包含英文字母和数字（发现 "_"）`},
		},
		{
			name:   "safe mode without key",
			change: func(c *Config) { c.Accounts[0].EncodingAESKey = "" },
			want:   []string{`account "main": message_mode safe needs encoding_aes_key — 安全模式 需要 EncodingAESKey（公众号后台 开发 → 基本配置 → 服务器配置 里的 消息加解密密钥）`},
		},
		{
			name: "compatible mode without key",
			change: func(c *Config) {
				c.Accounts[0].EncodingAESKey = ""
				c.Accounts[0].MessageMode = ModeCompatible
			},
			want: []string{`account "main": message_mode compatible needs encoding_aes_key — 兼容模式 需要 EncodingAESKey（公众号后台 开发 → 基本配置 → 服务器配置 里的 消息加解密密钥）`},
		},
		{
			name:   "bad mode",
			change: func(c *Config) { c.Accounts[0].MessageMode = "aes" },
			want:   []string{`account "main": message_mode must be plaintext, compatible or safe (got "aes") — message_mode 只能是 plaintext（明文模式）、compatible（兼容模式）或 safe（安全模式）`},
		},
		{
			name:   "empty mode and kind mean the defaults",
			change: func(c *Config) { c.Accounts[0].MessageMode, c.Accounts[0].Kind = "", "" },
		},
		{
			name:   "bad kind",
			change: func(c *Config) { c.Accounts[1].Kind = "miniprogram" },
			want: []string{
				`account "shop-mp": kind must be official_account or mini_program (got "miniprogram") — kind 只能是 official_account（公众号）或 mini_program（小程序）`,
				`account "shop-mp": token is required — 缺少 Token（公众号后台 开发 → 基本配置 → 服务器配置 里填写的令牌）`,
			},
		},
		{
			name:   "duplicate names",
			change: func(c *Config) { c.Accounts[1].Name = "main" },
			want:   []string{`account "main": the name is used by more than one account — 账号名称 "main" 重复`},
		},
		{
			name:   "invalid name",
			change: func(c *Config) { c.Accounts[0].Name = "Main_1" },
			want:   []string{`account "Main_1": name must be 1–32 characters of a-z, 0-9 and - because it becomes the callback path /wx/<name> — name 只能包含小写字母、数字和 -，长度 1–32（回调地址为 /wx/<name>）`},
		},
		{
			name:   "name too long",
			change: func(c *Config) { c.Accounts[1].Name = strings.Repeat("a", 33) },
			want:   []string{`account "` + strings.Repeat("a", 33) + `": name must be 1–32 characters of a-z, 0-9 and - because it becomes the callback path /wx/<name> — name 只能包含小写字母、数字和 -，长度 1–32（回调地址为 /wx/<name>）`},
		},
		{
			name:   "missing name",
			change: func(c *Config) { c.Accounts[1].Name = "" },
			want:   []string{`account #2: name is required — 缺少 name（账号名称，只能用小写字母、数字和 -，回调地址为 /wx/<name>）`},
		},
		{
			name:   "app id prefix",
			change: func(c *Config) { c.Accounts[0].AppID = "gh_0123456789ab" },
			want:   []string{`account "main": app_id must start with "wx" and contain only letters and digits (got "gh_0123456789ab") — AppID 应以 wx 开头，且只包含字母和数字`},
		},
		{
			name:   "missing app id",
			change: func(c *Config) { c.Accounts[1].AppID = "" },
			want:   []string{`account "shop-mp": app_id is required — 缺少 AppID（开发 → 基本配置 里的 开发者ID(AppID)）`},
		},
		{
			name:   "mini program with message push checks its token",
			change: func(c *Config) { c.Accounts[1].Token = "x" },
			want:   []string{`account "shop-mp": token must be 3–32 characters (got 1) — Token 长度必须为 3–32 个字符（当前 1 个）`},
		},
		{
			name:   "mini program cannot reply passively",
			change: func(c *Config) { c.Accounts[1].Replies = c.Accounts[0].Replies[:1] },
			want:   []string{`account "shop-mp": replies are for official accounts only; a mini program cannot answer messages passively — 小程序消息推送不支持被动回复，replies 只适用于公众号`},
		},
		{
			name:   "original id",
			change: func(c *Config) { c.Accounts[0].OriginalID = "0123456789ab" },
			want:   []string{`account "main": original_id must start with "gh_" (got "0123456789ab") — 原始ID 应以 gh_ 开头（公众号设置 → 账号详情 → 原始ID）`},
		},
		{
			name:   "api base url",
			change: func(c *Config) { c.Accounts[0].APIBaseURLs = []string{"api.weixin.qq.com"} },
			want:   []string{`account "main": api_base_urls entry "api.weixin.qq.com" must be an http(s) URL like https://api.weixin.qq.com — api_base_urls 中的 "api.weixin.qq.com" 必须是 http(s) 地址`},
		},
		{
			name:   "database scheme does not echo the password",
			change: func(c *Config) { c.DatabaseURL = "mysql://root:hunter2hunter2@db/wx" },
			want:   []string{`database_url must be sqlite://path/to/file.db or postgres://user:password@host:5432/dbname (got scheme "mysql") — database_url 只支持 sqlite://文件路径 或 postgres://用户:密码@主机:5432/数据库（当前为 "mysql"）`},
		},
		{
			name:   "receipt timeout too short",
			change: func(c *Config) { c.Push.ReceiptTimeout = 500 * time.Millisecond },
			want:   []string{`push.receipt_timeout must be at least 1s (got 500ms) — push.receipt_timeout 至少为 1s`},
		},
		{
			name:   "database in memory",
			change: func(c *Config) { c.DatabaseURL = "sqlite://:memory:" },
			want:   []string{`database_url sqlite:// needs a file path such as sqlite://data/wxgate.db; an in-memory database cannot be used — sqlite:// 需要文件路径，例如 sqlite://data/wxgate.db，不支持内存数据库`},
		},
		{
			name:   "postgresql scheme accepted",
			change: func(c *Config) { c.DatabaseURL = "postgresql://u:p@localhost/wx" },
		},
		{
			name:   "listen without port",
			change: func(c *Config) { c.Listen = "8080" },
			want:   []string{`listen must be host:port, e.g. 127.0.0.1:8080 or :8080 (got "8080") — listen 格式应为 主机:端口，例如 127.0.0.1:8080`},
		},
		{
			name:   "listen with bad port",
			change: func(c *Config) { c.Listen = "localhost:http2" },
			want:   []string{`listen must be host:port, e.g. 127.0.0.1:8080 or :8080 (port "http2" is not a number from 0 to 65535) — listen 格式应为 主机:端口，例如 127.0.0.1:8080`},
		},
		{
			name:   "public url",
			change: func(c *Config) { c.PublicURL = "wx.example.com" },
			want:   []string{`public_url must be a full http(s) URL like https://wx.example.com (got "wx.example.com") — public_url 必须是完整的 http(s) 地址，例如 https://wx.example.com`},
		},
		{
			name: "log settings",
			change: func(c *Config) {
				c.LogLevel = "verbose"
				c.LogFormat = "logfmt"
			},
			want: []string{
				`log_level must be debug, info, warn or error (got "verbose") — log_level 只能是 debug、info、warn 或 error`,
				`log_format must be text or json (got "logfmt") — log_format 只能是 text 或 json`,
			},
		},
		{
			name: "callback limits",
			change: func(c *Config) {
				c.Callback.TimestampWindow = 30 * time.Second
				c.Callback.MaxBodyBytes = 0
				c.Callback.ReplyDeadline = 5 * time.Second
			},
			want: []string{
				`callback.timestamp_window must be at least 1m, WeChat retries a message for about 15s (got 30s) — callback.timestamp_window 至少为 1m（微信会在约 15 秒内重试）`,
				`callback.max_body_bytes must be at least 1024 (got 0) — callback.max_body_bytes 至少为 1024 字节`,
				`callback.reply_deadline must be above 0 and below 5s, WeChat's time limit (got 5s) — callback.reply_deadline 必须大于 0 且小于 5 秒（微信等待回复的上限）`,
			},
		},
		{
			name: "reply rules",
			change: func(c *Config) {
				c.Accounts[0].Replies = []ReplyRule{
					{Match: "keyword", Mode: "regex", Pattern: "(", Reply: ReplyContent{Type: "text", Content: "x"}},
					{Match: "keyword", Mode: "fuzzy", Reply: ReplyContent{Type: "text"}},
					{Match: "msg_type", MsgType: "sticker", Reply: ReplyContent{Type: "image"}},
					{Match: "click", Reply: ReplyContent{Type: "news"}},
					{Match: "scan", Reply: ReplyContent{Type: "music"}},
					{Reply: ReplyContent{Type: "news", Articles: []Article{{URL: "https://x"}}}},
					{Match: "default", Reply: ReplyContent{}},
					{Match: "default", Reply: ReplyContent{Type: "none"}},
				}
			},
			want: []string{
				"account \"main\": replies[0]: pattern \"(\" is not a valid regular expression: error parsing regexp: missing closing ): `(` — pattern 不是有效的正则表达式",
				`account "main": replies[1]: a keyword rule needs a pattern — 关键词规则需要 pattern`,
				`account "main": replies[1]: mode must be exact, contains or regex (got "fuzzy") — mode 只能是 exact（完全匹配）、contains（包含）或 regex（正则）`,
				`account "main": replies[1]: a text reply needs content — 文本回复需要 content`,
				`account "main": replies[2]: msg_type must be text, image, voice, video, shortvideo, location or link (got "sticker") — msg_type 必须是 text、image、voice、video、shortvideo、location 或 link`,
				`account "main": replies[2]: a image reply needs media_id or file (a local file wxgate uploads) — image 回复需要 media_id 或 file（本地文件，由 wxgate 自动上传）`,
				`account "main": replies[3]: a click rule needs the menu's event_key — 菜单点击规则需要 event_key（自定义菜单中按钮的 key）`,
				`account "main": replies[3]: a news reply needs 1–8 articles (got 0) — 图文回复需要 1–8 篇文章（当前 0 篇）`,
				`account "main": replies[4]: match must be keyword, msg_type, subscribe, click or default (got "scan") — match 只能是 keyword、msg_type、subscribe、click 或 default`,
				`account "main": replies[4]: reply.type must be text, none, image, voice, video or news (got "music") — reply.type 只能是 text、none、image、voice、video 或 news`,
				`account "main": replies[5]: match is required (keyword, msg_type, subscribe, click or default) — 缺少 match（keyword、msg_type、subscribe、click 或 default）`,
				`account "main": replies[5]: articles[0] needs a title — 第 1 篇图文缺少 title`,
				`account "main": replies[6]: reply.type is required (text, none, image, voice, video or news) — 缺少 reply.type（text、none、image、voice、video 或 news）`,
				`account "main": replies[7]: only one default rule is allowed — 只能有一条 default 规则`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var validationErr *ValidationError
			if !errors.As(err, &validationErr) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if strings.Join(validationErr.Problems, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(validationErr.Problems, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := validConfig()
	cfg.Listen = "nope"
	cfg.Accounts[0].Token = ""
	cfg.Accounts[1].AppID = "abc"
	err := cfg.Validate()
	var validationErr *ValidationError
	if !errors.As(err, &validationErr) || len(validationErr.Problems) != 3 {
		t.Fatalf("Validate = %v, want 3 problems", err)
	}
	message := err.Error()
	if !strings.HasPrefix(message, "invalid configuration (3 problems):\n  - listen must be") {
		t.Errorf("message starts %q", message)
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	if got := validConfig().Warnings(); len(got) != 0 {
		t.Errorf("valid config has warnings: %q", got)
	}

	cfg := validConfig()
	cfg.Accounts[0].AppSecret = ""
	cfg.PublicURL = "https://wx.example.com:8443"
	got := strings.Join(cfg.Warnings(), "\n")
	for _, part := range []string{`account "main": app_secret is not set`, "API calls", "port 8443", "80 and 443"} {
		if !strings.Contains(got, part) {
			t.Errorf("warnings %q do not mention %q", got, part)
		}
	}

	got = strings.Join(Default().Warnings(), "\n")
	for _, part := range []string{"no accounts are configured", "public_url is not set"} {
		if !strings.Contains(got, part) {
			t.Errorf("warnings %q do not mention %q", got, part)
		}
	}
}

func TestAccountLookupAndCallbackPath(t *testing.T) {
	t.Parallel()
	cfg := validConfig()
	account, ok := cfg.Account("shop-mp")
	if !ok || account.AppID != "wxfedcba9876543210" {
		t.Fatalf("Account(shop-mp) = %+v, %v", account, ok)
	}
	if got := account.CallbackPath(); got != "/wx/shop-mp" {
		t.Errorf("CallbackPath = %q", got)
	}
	if _, ok := cfg.Account("missing"); ok {
		t.Error("Account(missing) found something")
	}
}
