package wechatsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// App kinds.
const (
	KindOfficialAccount = "official_account"
	KindMiniProgram     = "mini_program"
)

// Message modes of an app's server configuration.
const (
	ModePlaintext  = "plaintext"
	ModeCompatible = "compatible"
	ModeSafe       = "safe"
)

// Defaults of Config.
const (
	DefaultCallbackTimeout  = 5 * time.Second
	DefaultCallbackAttempts = 3
	DefaultJobFinishDelay   = time.Second
	DefaultSaveInterval     = 30 * time.Second
)

// Config configures a Simulator. The zero value works: no apps, real clock,
// WeChat's timings.
type Config struct {
	Apps []AppConfig
	// Now is the clock of the simulated platform (token expiry, code expiry,
	// interaction windows, CreateTime of pushes, rid). Default time.Now.
	Now func() time.Time
	// HTTPClient posts callbacks; its own Timeout should be zero or larger
	// than CallbackTimeout. Default: a fresh client without global state.
	HTTPClient *http.Client
	// Logger receives the simulator's logs; secrets are never logged.
	Logger *slog.Logger
	// StateFile, when set, is loaded by New and written by Close and every
	// SaveInterval.
	StateFile    string
	SaveInterval time.Duration
	// CallbackTimeout is how long one callback attempt may take (WeChat: 5 s).
	CallbackTimeout time.Duration
	// CallbackAttempts is the total number of deliveries of one push
	// (WeChat: 3, the original and two re-sends of identical XML).
	CallbackAttempts int
	// RefreshQueryOnRetry gives each re-send a new timestamp, nonce and
	// signatures (the body stays byte-identical). WeChat does not document
	// it; the default keeps the query identical too.
	RefreshQueryOnRetry bool
	// JobFinishDelay is the wait before TEMPLATESENDJOBFINISH and
	// subscribe_msg_sent_event are pushed.
	JobFinishDelay time.Duration
	// PublicBaseURL is where the simulator is reachable, e.g.
	// http://127.0.0.1:8081; QR code urls point there. Default
	// http://weixin.qq.com as in WeChat's answers.
	PublicBaseURL string
	// FaultSeed seeds the random source of fault rates, so tests can rely on
	// a sequence; 0 picks a random seed.
	FaultSeed uint64
}

// AppConfig declares one official account or mini program.
type AppConfig struct {
	AppID     string `json:"app_id" yaml:"app_id"`
	AppSecret string `json:"app_secret,omitempty" yaml:"app_secret"`
	// Kind is official_account (default) or mini_program.
	Kind string `json:"kind" yaml:"kind"`
	Name string `json:"name,omitempty" yaml:"name"`
	// OriginalID is the gh_… id written as ToUserName; generated when empty.
	OriginalID string `json:"original_id,omitempty" yaml:"original_id"`
	// OpenPlatform names the Open Platform account the app is bound to: apps
	// of the same group share unionids; empty means no unionid is returned.
	OpenPlatform string `json:"open_platform,omitempty" yaml:"open_platform"`
	// Server configuration (开发 → 基本配置 → 服务器配置).
	CallbackURL    string `json:"callback_url,omitempty" yaml:"callback_url"`
	Token          string `json:"token,omitempty" yaml:"token"`
	EncodingAESKey string `json:"encoding_aes_key,omitempty" yaml:"encoding_aes_key"`
	// Mode is plaintext (default), compatible or safe.
	Mode string `json:"mode,omitempty" yaml:"mode"`
	// DataFormat is the format of pushes: xml (default) or, for a mini
	// program, json (数据格式, a choice WeChat offers mini programs only).
	DataFormat string `json:"data_format,omitempty" yaml:"data_format"`
	// IPWhitelist lists IPs or CIDRs allowed to fetch tokens; empty allows all.
	IPWhitelist []string `json:"ip_whitelist,omitempty" yaml:"ip_whitelist"`
	// Templates are preloaded: template messages for an official account
	// (kind "template", the default) and subscription templates (kind
	// "subscribe", the default for a mini program).
	Templates []TemplateConfig `json:"templates,omitempty" yaml:"templates"`
	// Test marks a 测试号: daily quotas are a tenth of a real account's.
	Test bool `json:"test,omitempty" yaml:"test"`
	// Quotas overrides daily quotas per API path, e.g.
	// {"/cgi-bin/message/template/send": 3}; handy for 45009 tests.
	Quotas map[string]int `json:"quotas,omitempty" yaml:"quotas"`
	// MassSendsPerMonth is the mass-send quota (群发次数); 0 means a
	// 服务号's 4 per calendar month.
	MassSendsPerMonth int `json:"mass_sends_per_month,omitempty" yaml:"mass_sends_per_month"`
}

// TemplateConfig is a private template of an app.
type TemplateConfig struct {
	ID    string `json:"template_id,omitempty" yaml:"id"`
	Title string `json:"title" yaml:"title"`
	// Content has {{key.DATA}} placeholders, e.g. "客户：{{thing1.DATA}}".
	Content string `json:"content" yaml:"content"`
	Example string `json:"example,omitempty" yaml:"example"`
	// Kind is "template" (OA template message) or "subscribe" (OA
	// subscription notification or mini program subscription message).
	Kind            string `json:"kind,omitempty" yaml:"kind"`
	PrimaryIndustry string `json:"primary_industry,omitempty" yaml:"primary_industry"`
	DeputyIndustry  string `json:"deputy_industry,omitempty" yaml:"deputy_industry"`
}

// Data formats of pushes.
const (
	DataFormatXML  = "xml"
	DataFormatJSON = "json"
)

// Template kinds.
const (
	TemplateKindTemplate  = "template"
	TemplateKindSubscribe = "subscribe"
)

// Simulator is a fake WeChat platform: API, followers and their phones.
// All methods are safe for concurrent use.
type Simulator struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	client *http.Client

	mu          sync.Mutex
	st          *state
	crypters    map[string]*wechat.Crypter
	calls       map[string]map[string]int // app id → path → count
	faults      []*Fault
	nextFaultID int
	rng         *rand.Rand
	downDomains map[string]bool
	deliveries  []*Delivery
	nextDelID   int64

	// bgMu guards closed and wg.Add: background work is started by API
	// handlers that hold mu, so it cannot take mu itself.
	bgMu   sync.Mutex
	closed bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	saveMu sync.Mutex

	root http.Handler

	weather weatherState // the fake weather API (weather.go)
}

// New builds a simulator from cfg, loading cfg.StateFile when it exists.
// Apps of cfg override apps of the same id found in the state file.
func New(cfg Config) (*Simulator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
			// WeChat does not follow redirects: a 3xx is the server's answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = DefaultCallbackTimeout
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = DefaultCallbackAttempts
	}
	if cfg.JobFinishDelay <= 0 {
		cfg.JobFinishDelay = DefaultJobFinishDelay
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = DefaultSaveInterval
	}
	seed := cfg.FaultSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Simulator{
		cfg:         cfg,
		log:         cfg.Logger,
		now:         cfg.Now,
		client:      cfg.HTTPClient,
		st:          newState(),
		crypters:    map[string]*wechat.Crypter{},
		calls:       map[string]map[string]int{},
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		downDomains: map[string]bool{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.StateFile != "" {
		loaded, err := loadState(cfg.StateFile)
		if err != nil {
			return nil, fmt.Errorf("wechatsim: load state: %w", err)
		}
		if loaded != nil {
			s.st = loaded
			for _, app := range s.st.Apps {
				if err := s.prepareApp(&app.Config); err != nil {
					return nil, fmt.Errorf("wechatsim: app %s from state file: %w", app.Config.AppID, err)
				}
			}
		}
	}
	for _, app := range cfg.Apps {
		if err := s.putApp(app, true); err != nil {
			return nil, fmt.Errorf("wechatsim: %w", err)
		}
	}
	s.root = s.routes()
	if cfg.StateFile != "" {
		s.wg.Add(1)
		go s.saveLoop()
	}
	return s, nil
}

// Close stops background work, cancelling deliveries still in flight and
// pushes still waiting (a job-finish event not yet sent is dropped), waits
// for them to end and writes the state file.
func (s *Simulator) Close() error {
	s.bgMu.Lock()
	if s.closed {
		s.bgMu.Unlock()
		return nil
	}
	s.closed = true
	s.bgMu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.cfg.StateFile != "" {
		if err := s.saveState(); err != nil {
			return fmt.Errorf("wechatsim: save state: %w", err)
		}
	}
	return nil
}

// Handler serves the WeChat API at the root (/cgi-bin/…, /sns/…,
// /cgi-bin/showqrcode), the control API under /sim/api/ and the web page at
// /sim/. It is the "api" domain.
func (s *Simulator) Handler() http.Handler { return s.DomainHandler("api") }

// DomainHandler serves the same API tagged with a domain label ("api",
// "api2", "sh.api" …): several listeners are several base URLs sharing one
// platform, and SetDomainDown makes one of them fail.
func (s *Simulator) DomainHandler(domain string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.downDomains[domain]
		s.mu.Unlock()
		// The control API and the page stay up, so that a script can bring
		// the domain back through the listener it took down.
		if down && !strings.HasPrefix(r.URL.Path, "/sim/") {
			failConnection(w)
			return
		}
		s.root.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), domainKey{}, domain)))
	})
}

// SetDomainDown makes a domain's handler drop every WeChat API connection
// (as an unreachable host does) until set back up; /sim/ keeps working.
func (s *Simulator) SetDomainDown(domain string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.downDomains[domain] = true
	} else {
		delete(s.downDomains, domain)
	}
}

type domainKey struct{}

func domainOf(r *http.Request) string {
	d, _ := r.Context().Value(domainKey{}).(string)
	return d
}

// failConnection closes the connection without an answer when it can, so a
// client sees a transport error; otherwise it answers 502 like a broken proxy.
func failConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
}

// AddApp declares an app. Its id must be new.
func (s *Simulator) AddApp(app AppConfig) error { return s.putApp(app, false) }

// UpdateApp replaces the configuration of an existing app (server URL, mode,
// keys …) and keeps its state: users, tokens, templates added through the API.
func (s *Simulator) UpdateApp(app AppConfig) error {
	s.mu.Lock()
	_, ok := s.st.Apps[app.AppID]
	s.mu.Unlock()
	if !ok {
		return errorf(CodeNotFound, "应用不存在 app %q not found", app.AppID)
	}
	return s.putApp(app, true)
}

// Apps lists the configured apps, ordered by app id.
func (s *Simulator) Apps() []AppConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppConfig, 0, len(s.st.Apps))
	for _, app := range s.st.Apps {
		out = append(out, app.Config)
	}
	slices.SortFunc(out, func(a, b AppConfig) int { return compareStrings(a.AppID, b.AppID) })
	return out
}

func (s *Simulator) putApp(cfg AppConfig, replace bool) error {
	if err := s.prepareApp(&cfg); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	existing, ok := s.st.Apps[cfg.AppID]
	if ok && !replace {
		return errorf(CodeConflict, "应用已存在 app %q already exists", cfg.AppID)
	}
	if !ok {
		s.st.Apps[cfg.AppID] = newAppState(cfg)
		return nil
	}
	existing.Config = cfg
	existing.mergeTemplates(cfg.Templates)
	return nil
}

// prepareApp validates an app configuration, fills defaults and builds its
// crypter.
func (s *Simulator) prepareApp(cfg *AppConfig) error {
	if cfg.AppID == "" {
		return errorf(CodeInvalid, "缺少 app_id: app_id is required")
	}
	if cfg.AppSecret == "" {
		return errorf(CodeInvalid, "应用 %s 缺少 app_secret: app_secret is required", cfg.AppID)
	}
	if cfg.Kind == "" {
		cfg.Kind = KindOfficialAccount
	}
	if cfg.Kind != KindOfficialAccount && cfg.Kind != KindMiniProgram {
		return errorf(CodeInvalid, "应用类型无效 kind %q: want official_account or mini_program", cfg.Kind)
	}
	if cfg.Mode == "" {
		cfg.Mode = ModePlaintext
	}
	switch cfg.Mode {
	case ModePlaintext, ModeCompatible, ModeSafe:
	default:
		return errorf(CodeInvalid, "消息模式无效 mode %q: want plaintext, compatible or safe", cfg.Mode)
	}
	switch cfg.DataFormat {
	case "":
		cfg.DataFormat = DataFormatXML
	case DataFormatXML:
	case DataFormatJSON:
		if cfg.Kind != KindMiniProgram {
			return errorf(CodeInvalid, "只有小程序可选择 JSON 数据格式 data_format json is for mini programs; official accounts push XML")
		}
	default:
		return errorf(CodeInvalid, "数据格式无效 data_format %q: want xml or json", cfg.DataFormat)
	}
	if cfg.OriginalID == "" {
		cfg.OriginalID = newOriginalID()
	}
	if cfg.CallbackURL != "" && cfg.Token == "" {
		return errorf(CodeInvalid, "应用 %s 配置了服务器地址但缺少 Token: callback_url needs a token", cfg.AppID)
	}
	for _, entry := range cfg.IPWhitelist {
		if _, err := parseIPRule(entry); err != nil {
			return errorf(CodeInvalid, "IP 白名单条目无效 ip_whitelist entry %q: %v", entry, err)
		}
	}
	for i := range cfg.Templates {
		t := &cfg.Templates[i]
		if t.Kind == "" {
			t.Kind = TemplateKindTemplate
			if cfg.Kind == KindMiniProgram {
				t.Kind = TemplateKindSubscribe
			}
		}
		if t.Kind != TemplateKindTemplate && t.Kind != TemplateKindSubscribe {
			return errorf(CodeInvalid, "模板类型无效 template kind %q: want template or subscribe", t.Kind)
		}
		if t.ID == "" {
			t.ID = newTemplateID()
		}
	}
	var crypter *wechat.Crypter
	if cfg.Mode != ModePlaintext || cfg.EncodingAESKey != "" {
		c, err := wechat.NewCrypter(cfg.AppID, cfg.EncodingAESKey)
		if err != nil {
			return errorf(CodeInvalid, "EncodingAESKey 无效 invalid encoding_aes_key for %s: %v", cfg.AppID, err)
		}
		crypter = c
	}
	s.mu.Lock()
	if crypter != nil {
		s.crypters[cfg.AppID] = crypter
	} else {
		delete(s.crypters, cfg.AppID)
	}
	s.mu.Unlock()
	return nil
}

// background runs fn after delay unless the simulator closes first; Close
// waits for it. Callers may hold s.mu.
func (s *Simulator) background(delay time.Duration, fn func(ctx context.Context)) {
	s.bgMu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.bgMu.Unlock()
	if closed {
		return
	}
	go func() {
		defer s.wg.Done()
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		fn(s.ctx)
	}()
}

// ErrorCode classifies errors of the Go API and the control API.
type ErrorCode string

// Error codes; the control API maps them to HTTP statuses.
const (
	CodeInvalid  ErrorCode = "invalid"   // 400: the request is malformed or not allowed
	CodeNotFound ErrorCode = "not_found" // 404
	CodeConflict ErrorCode = "conflict"  // 409: the state does not allow it (already following …)
	CodeExpired  ErrorCode = "expired"   // 410: e.g. a QR ticket that expired
	CodeInternal ErrorCode = "internal"  // 500
)

// Error is the error type of the Go API; Message is in Chinese and English.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code ErrorCode, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of an error of this package (CodeInternal
// for any other error).
func ErrorCodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sortByTimeDesc sorts newest first.
func sortByTimeDesc[T any](items []T, at func(T) time.Time) {
	slices.SortStableFunc(items, func(a, b T) int { return at(b).Compare(at(a)) })
}
