package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	validAESKey         = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	validPreviousAESKey = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	cfg := Default()
	want := Config{
		Listen:          "127.0.0.1:8080",
		DatabaseURL:     "sqlite://data/wxgate.db",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 30 * time.Second,
		Callback: CallbackConfig{
			TimestampWindow: 5 * time.Minute,
			MaxBodyBytes:    262144,
			ReplyDeadline:   4 * time.Second,
		},
		Push:      PushConfig{RatePerAccount: 500, Burst: 50, Workers: 50, CallTimeout: 10 * time.Second, ReceiptTimeout: 10 * time.Minute},
		API:       APIConfig{RatePerKey: 50, BurstPerKey: 100},
		Proxy:     ProxyConfig{RatePerKey: 50, BurstPerKey: 100},
		Followers: FollowersConfig{SyncEvery: 24 * time.Hour},
		MsgLog:    MsgLogConfig{Retention: 30 * 24 * time.Hour},
		Metrics:   MetricsConfig{Listen: "127.0.0.1:9464"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("Default() = %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestLoadFullFile(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		Listen:          "0.0.0.0:9090",
		PublicURL:       "https://wx.example.com",
		DatabaseURL:     "postgres://wxgate:s3cretPassw0rd@db.internal:5432/wxgate?sslmode=disable",
		LogLevel:        "debug",
		LogFormat:       "json",
		ShutdownTimeout: 30 * time.Second,
		Push:            Default().Push,
		API:             Default().API,
		Proxy:           Default().Proxy,
		Followers:       Default().Followers,
		MsgLog:          Default().MsgLog,
		Metrics:         Default().Metrics,
		Callback: CallbackConfig{
			TimestampWindow: 2 * time.Minute,
			MaxBodyBytes:    65536,
			ReplyDeadline:   3500 * time.Millisecond,
		},
		Accounts: []Account{
			{
				Name:                   "main",
				Kind:                   KindOfficialAccount,
				AppID:                  "wx0123456789abcdef",
				AppSecret:              "test-secret-for-config-tests-0001",
				Token:                  "mytoken",
				EncodingAESKey:         validAESKey,
				PreviousEncodingAESKey: validPreviousAESKey,
				MessageMode:            ModeSafe, TokenMode: TokenModeStable,
				OriginalID:  "gh_0123456789ab",
				APIBaseURLs: []string{"https://api.weixin.qq.com", "https://api2.weixin.qq.com"},
				Replies: []ReplyRule{
					{Match: "keyword", Mode: "exact", Pattern: "你好", Reply: ReplyContent{Type: "text", Content: "你好！"}},
					{Match: "subscribe", Reply: ReplyContent{Type: "text", Content: "欢迎关注"}},
					{Match: "msg_type", MsgType: "image", Reply: ReplyContent{Type: "text", Content: "收到图片"}},
					{Match: "click", EventKey: "V1001_GOOD", Reply: ReplyContent{Type: "text", Content: "谢谢点赞"}},
					{Match: "keyword", Mode: "regex", Pattern: `^订单\s*\d+$`, Reply: ReplyContent{Type: "news", Articles: []Article{
						{Title: "订单查询", Description: "点击查看", PicURL: "https://img.example.com/a.png", URL: "https://shop.example.com/orders"},
					}}},
					{Match: "default", Reply: ReplyContent{Type: "none"}},
				},
			},
			{
				Name:          "shop-mp",
				Kind:          KindMiniProgram,
				AppID:         "wxfedcba9876543210",
				AppSecret:     "fedcba9876543210fedcba9876543210", // trailing newline of the file trimmed
				AppSecretFile: "testdata/shop_mp_secret.txt",
				MessageMode:   ModePlaintext, TokenMode: TokenModeStable,
				APIBaseURLs: []string{"https://api2.weixin.qq.com"},
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("Load mismatch\n got: %+v\nwant: %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		path      string
		wantParts []string
	}{
		{"unknown key names key and line", "testdata/unknown_key.yaml", []string{"testdata/unknown_key.yaml", `line 5: unknown key "tokne"`}},
		{"duration needs a unit", "testdata/bad_duration.yaml", []string{"testdata/bad_duration.yaml", "line 2", "time.Duration"}},
		{"missing file", "testdata/does-not-exist.yaml", []string{"reading config file", "does-not-exist.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tt.path, nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestLoadKeepsDefaultsNotInFile(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "testdata/empty.yaml", "testdata/partial_callback.yaml"} {
		cfg, err := Load(path, nil)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		want := Default()
		if path == "testdata/partial_callback.yaml" {
			want.Callback.MaxBodyBytes = 1 << 20
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("Load(%q) = %+v, want %+v", path, cfg, want)
		}
	}
}

func TestLoadEnvironment(t *testing.T) {
	t.Parallel()
	mainFile := writeFile(t, "main.yaml", `
accounts:
  - name: main
    app_id: wx0123456789abcdef
    token: filetoken
    app_secret_file: /nonexistent/secret
  - name: main-previous
    app_id: wx1111111111111111
    token: othertoken
`)
	tests := []struct {
		name    string
		file    string
		environ []string
		check   func(t *testing.T, cfg Config)
	}{
		{
			name: "top-level and callback settings",
			environ: []string{
				"WXGATE_LISTEN=:9000",
				"WXGATE_PUBLIC_URL=https://gw.example.com",
				"WXGATE_DATABASE_URL=postgres://u:p@h/db",
				"WXGATE_LOG_LEVEL=warn",
				"WXGATE_LOG_FORMAT=json",
				"WXGATE_SHUTDOWN_TIMEOUT=45s",
				"WXGATE_CALLBACK_TIMESTAMP_WINDOW=10m",
				"WXGATE_CALLBACK_MAX_BODY_BYTES=4096",
				"WXGATE_CALLBACK_REPLY_DEADLINE=2s",
				"WXGATE_PUSH_RATE_PER_ACCOUNT=20",
				"WXGATE_PUSH_BURST=5",
				"WXGATE_PUSH_WORKERS=8",
				"WXGATE_PUSH_CALL_TIMEOUT=3s",
				"WXGATE_PUSH_RECEIPT_TIMEOUT=5s",
				"WXGATE_API_RATE_PER_KEY=0",
				"WXGATE_API_BURST_PER_KEY=7",
				"WXGATE_PROXY_RATE_PER_KEY=2.5",
				"WXGATE_PROXY_BURST_PER_KEY=3",
				"WXGATE_FOLLOWERS_SYNC_EVERY=12h",
				"WXGATE_MSGLOG_RETENTION=168h",
				"PATH=/usr/bin",
				"WXGATE_TEST_POSTGRES_URL=ignored-by-config",
			},
			check: func(t *testing.T, cfg Config) {
				want := Config{
					Listen: ":9000", PublicURL: "https://gw.example.com", DatabaseURL: "postgres://u:p@h/db",
					LogLevel: "warn", LogFormat: "json", ShutdownTimeout: 45 * time.Second,
					Callback:  CallbackConfig{TimestampWindow: 10 * time.Minute, MaxBodyBytes: 4096, ReplyDeadline: 2 * time.Second},
					Push:      PushConfig{RatePerAccount: 20, Burst: 5, Workers: 8, CallTimeout: 3 * time.Second, ReceiptTimeout: 5 * time.Second},
					API:       APIConfig{RatePerKey: 0, BurstPerKey: 7},
					Proxy:     ProxyConfig{RatePerKey: 2.5, BurstPerKey: 3},
					Followers: FollowersConfig{SyncEvery: 12 * time.Hour},
					MsgLog:    MsgLogConfig{Retention: 7 * 24 * time.Hour},
					Metrics:   MetricsConfig{Listen: "127.0.0.1:9464"},
				}
				if !reflect.DeepEqual(cfg, want) {
					t.Errorf("got %+v, want %+v", cfg, want)
				}
			},
		},
		{
			name: "empty value counts as unset",
			environ: []string{
				"WXGATE_LISTEN=",
			},
			check: func(t *testing.T, cfg Config) {
				if cfg.Listen != "127.0.0.1:8080" {
					t.Errorf("Listen = %q, want the default", cfg.Listen)
				}
			},
		},
		{
			name: "one account purely from the environment",
			environ: []string{
				"WXGATE_ACCOUNT_MY_SHOP_APP_ID=wx0123456789abcdef",
				"WXGATE_ACCOUNT_MY_SHOP_TOKEN=envtoken",
				"WXGATE_ACCOUNT_MY_SHOP_ENCODING_AES_KEY=" + validAESKey,
				"WXGATE_ACCOUNT_MY_SHOP_PREVIOUS_ENCODING_AES_KEY=" + validPreviousAESKey,
				"WXGATE_ACCOUNT_MY_SHOP_MESSAGE_MODE=compatible",
				"WXGATE_ACCOUNT_MY_SHOP_API_BASE_URLS= http://127.0.0.1:8081 , ,http://127.0.0.1:8082",
				"WXGATE_ACCOUNT_MY_SHOP_ORIGINAL_ID=gh_0123456789ab",
				"WXGATE_ACCOUNT_MY_SHOP_APP_SECRET=test-secret-for-config-tests-0001",
			},
			check: func(t *testing.T, cfg Config) {
				want := []Account{{
					Name: "my-shop", Kind: KindOfficialAccount, AppID: "wx0123456789abcdef",
					AppSecret: "test-secret-for-config-tests-0001", Token: "envtoken",
					EncodingAESKey: validAESKey, PreviousEncodingAESKey: validPreviousAESKey,
					MessageMode: ModeCompatible, TokenMode: TokenModeStable, OriginalID: "gh_0123456789ab",
					APIBaseURLs: []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"},
				}}
				if !reflect.DeepEqual(cfg.Accounts, want) {
					t.Errorf("accounts = %+v, want %+v", cfg.Accounts, want)
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			},
		},
		{
			name: "new accounts are added in name order",
			environ: []string{
				"WXGATE_ACCOUNT_ZED_APP_ID=wx1",
				"WXGATE_ACCOUNT_ALPHA_APP_ID=wx2",
				"WXGATE_ACCOUNT_MP_KIND=mini_program",
			},
			check: func(t *testing.T, cfg Config) {
				var names []string
				for _, a := range cfg.Accounts {
					names = append(names, a.Name)
				}
				if got := strings.Join(names, ","); got != "alpha,mp,zed" {
					t.Errorf("account order = %s, want alpha,mp,zed", got)
				}
				if mp, _ := cfg.Account("mp"); mp.Kind != KindMiniProgram {
					t.Errorf("mp kind = %q", mp.Kind)
				}
			},
		},
		{
			name: "overrides a file account; known names win over longer keys",
			file: mainFile,
			environ: []string{
				"WXGATE_ACCOUNT_MAIN_TOKEN=envtoken",
				// Could be account "main" key PREVIOUS_ENCODING_AES_KEY or account
				// "main-previous" key ENCODING_AES_KEY: the longer known name wins.
				"WXGATE_ACCOUNT_MAIN_PREVIOUS_ENCODING_AES_KEY=" + validAESKey,
				// The environment's secret replaces the file's app_secret_file.
				"WXGATE_ACCOUNT_MAIN_APP_SECRET=fromenv",
			},
			check: func(t *testing.T, cfg Config) {
				main, _ := cfg.Account("main")
				if main.Token != "envtoken" || main.AppSecret != "fromenv" || main.AppSecretFile != "" || main.PreviousEncodingAESKey != "" {
					t.Errorf("main = %+v", main)
				}
				previous, _ := cfg.Account("main-previous")
				if previous.EncodingAESKey != validAESKey || previous.Token != "othertoken" {
					t.Errorf("main-previous = %+v", previous)
				}
				if len(cfg.Accounts) != 2 {
					t.Errorf("got %d accounts, want 2", len(cfg.Accounts))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(tt.file, tt.environ)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestLoadEnvironmentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		environ   []string
		wantParts []string
	}{
		{"bad duration", []string{"WXGATE_CALLBACK_REPLY_DEADLINE=4"}, []string{"WXGATE_CALLBACK_REPLY_DEADLINE", `"4" is not a duration`}},
		{"bad number", []string{"WXGATE_CALLBACK_MAX_BODY_BYTES=1MB"}, []string{"WXGATE_CALLBACK_MAX_BODY_BYTES", "whole number"}},
		{"unknown callback variable", []string{"WXGATE_CALLBACK_TIMEOUT=4s"}, []string{"WXGATE_CALLBACK_TIMEOUT: unknown variable"}},
		{"unknown account key", []string{"WXGATE_ACCOUNT_MAIN_TOKNE=x"}, []string{"WXGATE_ACCOUNT_MAIN_TOKNE", "not a known account setting", "APP_SECRET_FILE"}},
		{"key without a name", []string{"WXGATE_ACCOUNT_TOKEN=x"}, []string{"WXGATE_ACCOUNT_TOKEN"}},
		{"secret and its file both in env", []string{"WXGATE_ACCOUNT_MAIN_TOKEN=x", "WXGATE_ACCOUNT_MAIN_TOKEN_FILE=/x"}, []string{`account "main"`, "WXGATE_ACCOUNT_MAIN_TOKEN and WXGATE_ACCOUNT_MAIN_TOKEN_FILE"}},
		{"all problems at once", []string{"WXGATE_CALLBACK_REPLY_DEADLINE=x", "WXGATE_CALLBACK_TIMESTAMP_WINDOW=y"}, []string{"REPLY_DEADLINE", "TIMESTAMP_WINDOW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("", tt.environ)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestLoadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "token")
	if err := os.WriteFile(secretPath, []byte("filetoken\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "key")
	if err := os.WriteFile(keyPath, []byte(validAESKey+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("read and trimmed", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load("", []string{
			"WXGATE_ACCOUNT_MAIN_TOKEN_FILE=" + secretPath,
			"WXGATE_ACCOUNT_MAIN_ENCODING_AES_KEY_FILE=" + keyPath,
			"WXGATE_ACCOUNT_MAIN_PREVIOUS_ENCODING_AES_KEY_FILE=" + keyPath,
		})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		a := cfg.Accounts[0]
		if a.Token != "filetoken" || a.EncodingAESKey != validAESKey || a.PreviousEncodingAESKey != validAESKey {
			t.Errorf("account = %+v", a)
		}
	})

	t.Run("unreadable file names account and file", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(dir, "missing")
		_, err := Load("", []string{"WXGATE_ACCOUNT_SHOP_APP_SECRET_FILE=" + missing})
		if err == nil {
			t.Fatal("Load succeeded, want an error")
		}
		for _, part := range []string{`account "shop"`, "app_secret_file", missing} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not contain %q", err, part)
			}
		}
	})

	t.Run("value and file both in the file", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "both.yaml", "accounts:\n  - name: main\n    token: abc\n    token_file: "+secretPath+"\n")
		_, err := Load(path, nil)
		if err == nil || !strings.Contains(err.Error(), `account "main": both token and token_file are set`) {
			t.Fatalf("Load error = %v, want a conflict", err)
		}
	})
}

func TestMaskedYAMLLoadsBack(t *testing.T) {
	t.Parallel()
	// Without secrets, the dump is the configuration itself: loading it
	// again must give the same values, durations included.
	cfg, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = "sqlite:///var/lib/wxgate/wxgate.db"
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		a.AppSecret, a.AppSecretFile, a.Token, a.EncodingAESKey, a.PreviousEncodingAESKey = "", "", "", "", ""
	}
	out, err := cfg.MaskedYAML()
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := Load(writeFile(t, "dump.yaml", string(out)), nil)
	if err != nil {
		t.Fatalf("loading the dump: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(reloaded, cfg) {
		t.Fatalf("reloaded dump differs\n got: %+v\nwant: %+v\n%s", reloaded, cfg, out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTokenModeKeys(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{
		"WXGATE_ACCOUNT_MAIN_APP_ID=wx0123456789abcdef",
		"WXGATE_ACCOUNT_MAIN_TOKEN=mytoken2026",
		"WXGATE_ACCOUNT_MAIN_TOKEN_MODE=classic",
		"WXGATE_ACCOUNT_MAIN_TOKEN_REFRESH_MARGIN=3m",
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Account("main")
	if a.TokenMode != TokenModeClassic || a.TokenRefreshMargin != 3*time.Minute {
		t.Fatalf("token keys from env: mode %q margin %s", a.TokenMode, a.TokenRefreshMargin)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}

	cfg, err = Load("", []string{"WXGATE_ACCOUNT_MAIN_APP_ID=wx0123456789abcdef", "WXGATE_ACCOUNT_MAIN_TOKEN=mytoken2026"})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := cfg.Account("main"); a.TokenMode != TokenModeStable {
		t.Fatalf("default token mode %q, want stable", a.TokenMode)
	}
	cfg.Accounts[0].TokenMode = "weird"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "token_mode") {
		t.Fatalf("bad token_mode not reported: %v", err)
	}
}

// A reply's file is read from the config file's folder; the media keys
// come from the file and the environment.
func TestLoadMediaKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wxgate.yaml")
	if err := os.WriteFile(path, []byte(`media:
  download_max_bytes: 2048
accounts:
  - name: main
    app_id: wx0123456789abcdef
    token: mytoken
    replies:
      - {match: keyword, pattern: 图片, reply: {type: image, file: img/welcome.jpg}}
      - {match: keyword, pattern: logo, reply: {type: image, file: /srv/logo.jpg}}
      - {match: keyword, pattern: 开盘, reply: {type: news, articles: [{title: 开盘, pic_file: img/cover.jpg}]}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{"WXGATE_ACCOUNT_MAIN_MASS_SENDS_PER_MONTH=31", "WXGATE_MEDIA_DOWNLOAD_MAX_BYTES=4096"})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Accounts[0]
	if got := a.Replies[0].Reply.File; got != filepath.Join(dir, "img", "welcome.jpg") {
		t.Errorf("relative file read as %q", got)
	}
	if got := a.Replies[1].Reply.File; got != "/srv/logo.jpg" {
		t.Errorf("absolute file changed to %q", got)
	}
	if got := a.Replies[2].Reply.Articles[0].PicFile; got != filepath.Join(dir, "img", "cover.jpg") {
		t.Errorf("relative pic_file read as %q", got)
	}
	if a.MassSendsPerMonth != 31 || cfg.Media.DownloadMaxBytes != 4096 {
		t.Errorf("mass_sends_per_month %d, download_max_bytes %d", a.MassSendsPerMonth, cfg.Media.DownloadMaxBytes)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "无法读取文件") || !strings.Contains(err.Error(), "cover.jpg") {
		t.Errorf("a missing reply file validated: %v", err)
	}
}
