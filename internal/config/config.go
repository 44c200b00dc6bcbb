// Package config holds wxgate's configuration: its shape, defaults, loading
// from a YAML file and WXGATE_* environment variables, validation with
// messages a person can act on, and a dump with secrets masked.
package config

import (
	"net/http"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
)

// AccountKind says which kind of WeChat app an account is.
type AccountKind string

const (
	KindOfficialAccount AccountKind = "official_account"
	KindMiniProgram     AccountKind = "mini_program"
)

// MessageMode is the message encryption mode chosen in WeChat's console.
// It comes from the configuration, never from the callback query, so a
// forged request cannot downgrade an encrypted account to plaintext.
type MessageMode string

const (
	ModePlaintext  MessageMode = "plaintext"
	ModeCompatible MessageMode = "compatible"
	ModeSafe       MessageMode = "safe"
)

// TokenMode selects WeChat's access_token endpoint.
type TokenMode string

const (
	TokenModeStable  TokenMode = "stable"
	TokenModeClassic TokenMode = "classic"
)

// DefaultAPIBaseURLs returns WeChat's API domain and its backup domain, in the order they are tried.
func DefaultAPIBaseURLs() []string {
	return []string{"https://api.weixin.qq.com", "https://api2.weixin.qq.com"}
}

// Config is the whole gateway configuration.
type Config struct {
	Listen      string `yaml:"listen"`
	PublicURL   string `yaml:"public_url"`
	DatabaseURL string `yaml:"database_url"`
	LogLevel    string `yaml:"log_level"`
	LogFormat   string `yaml:"log_format"`
	// ShutdownTimeout bounds a graceful stop after the drain delay: HTTP
	// requests in flight get up to the half of it, then running jobs the
	// rest; jobs still running are handed back to the queue.
	ShutdownTimeout time.Duration   `yaml:"shutdown_timeout"`
	Callback        CallbackConfig  `yaml:"callback"`
	Push            PushConfig      `yaml:"push"`
	API             APIConfig       `yaml:"api"`
	Proxy           ProxyConfig     `yaml:"proxy"`
	Followers       FollowersConfig `yaml:"followers"`
	MsgLog          MsgLogConfig    `yaml:"msglog"`
	Metrics         MetricsConfig   `yaml:"metrics"`
	Media           MediaConfig     `yaml:"media"`
	Accounts        []Account       `yaml:"accounts"`
}

// MetricsConfig says where /metrics is served. It names the accounts and
// counts refusals, so by default it is kept off the public listener.
type MetricsConfig struct {
	// Listen serves /metrics on an address of its own, loopback by
	// default; "" turns that listener off.
	Listen string `yaml:"listen"`
	// Token, when set, must be sent as "Authorization: Bearer <token>" to
	// read /metrics on either listener.
	Token     string `yaml:"token,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// OnPublicListener also serves /metrics on listen; it needs a Token.
	OnPublicListener bool `yaml:"on_public_listener"`
}

// DefaultMetricsListen is where /metrics is served unless configured.
const DefaultMetricsListen = "127.0.0.1:9464"

// CallbackConfig tunes the handling of WeChat's callback requests.
type CallbackConfig struct {
	// TimestampWindow is how far the query timestamp may be from now before
	// a request is refused as a replay. WeChat retries for about 15 seconds,
	// so it must stay well above that.
	TimestampWindow time.Duration `yaml:"timestamp_window"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	// ReplyDeadline is when the answer is written at the latest; WeChat
	// gives up after 5 seconds.
	ReplyDeadline time.Duration `yaml:"reply_deadline"`
}

// PushConfig tunes outbound sends.
type PushConfig struct {
	// RatePerAccount limits sends per second per account, so a burst does
	// not trip WeChat's frequency limits: across every instance on
	// PostgreSQL, in the process on SQLite; 0 means no limit.
	RatePerAccount float64 `yaml:"rate_per_account"`
	Burst          int     `yaml:"burst"`
	// Workers is how many sends run at once in one process.
	Workers int `yaml:"workers"`
	// CallTimeout bounds one call to WeChat's API.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// ReceiptTimeout is how long a sent recipient waits for its delivery
	// receipt before it is marked unconfirmed: WeChat pushes a receipt a
	// few times within seconds and offers no API to ask for it later.
	ReceiptTimeout time.Duration `yaml:"receipt_timeout"`
}

// FollowersConfig tunes the follower table's upkeep.
type FollowersConfig struct {
	// SyncEvery runs a full follower sync (user/get + batchget) of every
	// account with an AppSecret at this interval; 0 turns it off. Events
	// keep the table current between syncs; the sync catches what events
	// cannot tell (followers from before wxgate, missed pushes).
	SyncEvery time.Duration `yaml:"sync_every"`
}

// MsgLogConfig tunes the inbound message log (every push WeChat sent).
type MsgLogConfig struct {
	// Retention: pushes older than this are deleted by a background job,
	// in small batches; 0 keeps them for ever.
	Retention time.Duration `yaml:"retention"`
}

// DefaultMsgLogRetention is how long pushes are kept by default: 30 days.
const DefaultMsgLogRetention = 30 * 24 * time.Hour

// MediaConfig tunes media uploads and downloads.
type MediaConfig struct {
	// DownloadMaxBytes caps a follower's file (image, voice) fetched from
	// WeChat into the database; 0 means DefaultMediaDownloadMaxBytes.
	DownloadMaxBytes int64 `yaml:"download_max_bytes"`
}

// DefaultMediaDownloadMaxBytes is the default download cap: 10 MiB.
const DefaultMediaDownloadMaxBytes = 10 << 20

// APIConfig tunes the JSON API.
type APIConfig struct {
	// RatePerKey limits requests per second per API key; 0 means no limit.
	RatePerKey  float64 `yaml:"rate_per_key"`
	BurstPerKey int     `yaml:"burst_per_key"`
}

// ProxyConfig tunes the WeChat API proxy under /wechat/{account}/.
type ProxyConfig struct {
	// RatePerKey limits proxied calls per second per API key, so one
	// service cannot spend the account's WeChat quota alone; 0 means no
	// limit.
	RatePerKey  float64 `yaml:"rate_per_key"`
	BurstPerKey int     `yaml:"burst_per_key"`
}

// Account is one WeChat app connected to the gateway.
type Account struct {
	Name                       string      `yaml:"name"`
	Kind                       AccountKind `yaml:"kind"`
	AppID                      string      `yaml:"app_id"`
	AppSecret                  string      `yaml:"app_secret,omitempty"`
	AppSecretFile              string      `yaml:"app_secret_file,omitempty"`
	Token                      string      `yaml:"token,omitempty"`
	TokenFile                  string      `yaml:"token_file,omitempty"`
	EncodingAESKey             string      `yaml:"encoding_aes_key,omitempty"`
	EncodingAESKeyFile         string      `yaml:"encoding_aes_key_file,omitempty"`
	PreviousEncodingAESKey     string      `yaml:"previous_encoding_aes_key,omitempty"`
	PreviousEncodingAESKeyFile string      `yaml:"previous_encoding_aes_key_file,omitempty"`
	MessageMode                MessageMode `yaml:"message_mode"`
	OriginalID                 string      `yaml:"original_id,omitempty"`
	APIBaseURLs                []string    `yaml:"api_base_urls"`
	// TokenMode is how the access_token is fetched: stable (stable_token,
	// the default; never invalidates tokens held elsewhere) or classic
	// (cgi-bin/token).
	TokenMode TokenMode `yaml:"token_mode"`
	// TokenRefreshMargin is how long before expiry the token is renewed in
	// the background; zero means the broker's default.
	TokenRefreshMargin time.Duration `yaml:"token_refresh_margin,omitempty"`
	Replies            []ReplyRule   `yaml:"replies,omitempty"`
	// Binding tunes the binding of business user ids (external ids) to
	// the account's followers by QR code or mini-program login.
	Binding BindingConfig `yaml:"binding,omitempty"`
	// MassSendsPerMonth is the account's mass-send quota (群发次数) that
	// wxgate counts before sending: 4 per calendar month for a 服务号, the
	// default; a 订阅号 (1 per day) sets 31.
	MassSendsPerMonth int `yaml:"mass_sends_per_month,omitempty"`
}

// BindingConfig tunes bindings of one account. Empty texts mean the
// defaults (绑定成功, 二维码已过期, 二维码已被使用).
type BindingConfig struct {
	// Reply is the passive reply to the scan that binds.
	Reply string `yaml:"reply,omitempty"`
	// ExpiredReply answers the scan of a code whose bind token expired.
	ExpiredReply string `yaml:"expired_reply,omitempty"`
	// UsedReply answers the scan of a code someone else already used.
	UsedReply string `yaml:"used_reply,omitempty"`
	// ManyToMany lets an external id be bound to several persons and a
	// person to several external ids. By default a binding is one-to-one
	// and a newer one replaces the older (kept in the history).
	ManyToMany bool `yaml:"many_to_many,omitempty"`
}

// ReplyRule is an auto-reply rule seeded into the database at start.
type ReplyRule struct {
	// Match is keyword, msg_type, subscribe, click or default.
	Match string `yaml:"match" json:"match"`
	// Mode is exact (the default), contains or regex; only for keyword rules.
	Mode     string       `yaml:"mode,omitempty" json:"mode,omitempty"`
	Pattern  string       `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	MsgType  string       `yaml:"msg_type,omitempty" json:"msg_type,omitempty"`
	EventKey string       `yaml:"event_key,omitempty" json:"event_key,omitempty"`
	Reply    ReplyContent `yaml:"reply" json:"reply"`
}

// ReplyContent is the passive reply a rule answers with. The JSON tags are
// the shape stored in the reply_rules.reply column.
type ReplyContent struct {
	// Type is text, none (answer "success"), image, voice, video or news.
	Type    string `yaml:"type" json:"type"`
	Content string `yaml:"content,omitempty" json:"content,omitempty"`
	MediaID string `yaml:"media_id,omitempty" json:"media_id,omitempty"`
	// File is a local image, voice or video file used instead of MediaID:
	// wxgate uploads it as temporary media and keeps it fresh. A relative
	// path is read from the configuration file's directory.
	File        string    `yaml:"file,omitempty" json:"file,omitempty"`
	Title       string    `yaml:"title,omitempty" json:"title,omitempty"`
	Description string    `yaml:"description,omitempty" json:"description,omitempty"`
	Articles    []Article `yaml:"articles,omitempty" json:"articles,omitempty"`
}

// Article is one entry of a news reply.
type Article struct {
	Title       string `yaml:"title" json:"title"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	PicURL      string `yaml:"pic_url,omitempty" json:"pic_url,omitempty"`
	// PicFile is a local JPG/PNG cover used instead of PicURL: uploaded as
	// an article image (media/uploadimg), whose URL WeChat keeps for good.
	PicFile string `yaml:"pic_file,omitempty" json:"pic_file,omitempty"`
	URL     string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Default returns the configuration used where the file and the
// environment say nothing.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		DatabaseURL:     "sqlite://data/wxgate.db",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 30 * time.Second,
		Callback: CallbackConfig{
			TimestampWindow: 5 * time.Minute,
			MaxBodyBytes:    256 << 10,
			ReplyDeadline:   4 * time.Second,
		},
		Push:      PushConfig{RatePerAccount: 500, Burst: 50, Workers: 50, CallTimeout: 10 * time.Second, ReceiptTimeout: 10 * time.Minute},
		API:       APIConfig{RatePerKey: 50, BurstPerKey: 100},
		Proxy:     ProxyConfig{RatePerKey: 50, BurstPerKey: 100},
		Followers: FollowersConfig{SyncEvery: 24 * time.Hour},
		MsgLog:    MsgLogConfig{Retention: DefaultMsgLogRetention},
		Metrics:   MetricsConfig{Listen: DefaultMetricsListen},
	}
}

// CallbackPath is the path WeChat posts this account's messages to.
func (a Account) CallbackPath() string {
	return "/wx/" + a.Name
}

// Account returns the account with the given name. The pointer refers to
// the element of c.Accounts, which c shares with the configuration it was
// copied from.
func (c Config) Account(name string) (*Account, bool) {
	for i := range c.Accounts {
		if c.Accounts[i].Name == name {
			return &c.Accounts[i], true
		}
	}
	return nil, false
}

// UnknownAccount is the refusal of an account name that is not configured.
func UnknownAccount(name string) *problem.Error {
	return problem.NotFoundf("account_not_found", "account", "unknown account %q (账号不存在)", name)
}

// applyDefaults fills what an account left out.
func (a *Account) applyDefaults() {
	if a.Kind == "" {
		a.Kind = KindOfficialAccount
	}
	if a.MessageMode == "" {
		a.MessageMode = ModePlaintext
	}
	if a.TokenMode == "" {
		a.TokenMode = TokenModeStable
	}
	if len(a.APIBaseURLs) == 0 {
		a.APIBaseURLs = DefaultAPIBaseURLs()
	}
}

// BaseURL is where WeChat and browsers reach the gateway: public_url when
// set, else the scheme and host the request came in on.
func BaseURL(publicURL string, r *http.Request) string {
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
