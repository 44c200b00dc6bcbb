package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	envPrefix         = "WXGATE_"
	envAccountPrefix  = "WXGATE_ACCOUNT_"
	envCallbackPrefix = "WXGATE_CALLBACK_"
)

// Load builds the configuration from the defaults, then the YAML file at
// path (none when path is ""), then the WXGATE_* variables in environ
// (as returned by os.Environ). Secrets given as *_file keys are read last.
// Load does not validate; call Validate on the result.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		if err := decodeFile(path, &cfg); err != nil {
			return Config{}, err
		}
		resolveReplyFiles(&cfg, filepath.Dir(path))
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	for i := range cfg.Accounts {
		cfg.Accounts[i].applyDefaults()
	}
	if err := readSecretFiles(&cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// resolveReplyFiles makes the files named by reply rules relative to the
// configuration file's directory, where the user wrote them from.
func resolveReplyFiles(cfg *Config, dir string) {
	for i := range cfg.Accounts {
		for j := range cfg.Accounts[i].Replies {
			c := &cfg.Accounts[i].Replies[j].Reply
			if c.File != "" && !filepath.IsAbs(c.File) {
				c.File = filepath.Join(dir, c.File)
			}
			for k := range c.Articles {
				if a := &c.Articles[k]; a.PicFile != "" && !filepath.IsAbs(a.PicFile) {
					a.PicFile = filepath.Join(dir, a.PicFile)
				}
			}
		}
	}
}

func decodeFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	// A misspelt key would otherwise be ignored silently and the setting
	// would quietly keep its default.
	decoder.KnownFields(true)
	if err := decoder.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, readableYAMLError(err))
	}
	return nil
}

// readableYAMLError rewrites yaml's "field x not found in type config.Account"
// into a message that names the key as the user wrote it.
func readableYAMLError(err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	lines := make([]string, 0, len(typeErr.Errors))
	for _, msg := range typeErr.Errors {
		lineNumber, rest, ok := strings.Cut(msg, ": field ")
		key, _, found := strings.Cut(rest, " not found in type ")
		if ok && found {
			msg = fmt.Sprintf("%s: unknown key %q", lineNumber, key)
		}
		lines = append(lines, msg)
	}
	return errors.New(strings.Join(lines, "; "))
}

func applyEnv(cfg *Config, environ []string) error {
	var errs []error
	var fromEnv []*accountEnv
	for _, entry := range environ {
		key, value, ok := strings.Cut(entry, "=")
		// An empty value counts as unset, like most tools treat it.
		if !ok || value == "" || !strings.HasPrefix(key, envPrefix) {
			continue
		}
		if rest, isAccount := strings.CutPrefix(key, envAccountPrefix); isAccount {
			name, field, err := splitAccountEnv(rest, cfg.Accounts, fromEnv)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
				continue
			}
			fromEnv = recordAccountEnv(fromEnv, name, field, value)
			continue
		}
		if err := setTopLevel(cfg, key, value); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("environment: %w", err)
	}

	// Accounts known only from the environment are added in name order so
	// the result does not depend on the order of the environment.
	slices.SortStableFunc(fromEnv, func(a, b *accountEnv) int { return strings.Compare(a.name, b.name) })
	for _, env := range fromEnv {
		account, exists := cfg.Account(env.name)
		if !exists {
			cfg.Accounts = append(cfg.Accounts, Account{Name: env.name})
			account = &cfg.Accounts[len(cfg.Accounts)-1]
		}
		for _, field := range env.fields {
			if err := setAccountField(account, field.key, field.value); err != nil {
				errs = append(errs, fmt.Errorf("%s%s_%s: %w", envAccountPrefix, envName(env.name), field.key, err))
			}
		}
		if err := dropOverriddenFileKeys(account, env.fields); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	return nil
}

func setTopLevel(cfg *Config, key, value string) error {
	switch key {
	case "WXGATE_LISTEN":
		cfg.Listen = value
	case "WXGATE_PUBLIC_URL":
		cfg.PublicURL = value
	case "WXGATE_DATABASE_URL":
		cfg.DatabaseURL = value
	case "WXGATE_LOG_LEVEL":
		cfg.LogLevel = value
	case "WXGATE_LOG_FORMAT":
		cfg.LogFormat = value
	case "WXGATE_SHUTDOWN_TIMEOUT":
		return parseDurationInto(&cfg.ShutdownTimeout, key, value)
	case "WXGATE_CALLBACK_TIMESTAMP_WINDOW":
		return parseDurationInto(&cfg.Callback.TimestampWindow, key, value)
	case "WXGATE_CALLBACK_REPLY_DEADLINE":
		return parseDurationInto(&cfg.Callback.ReplyDeadline, key, value)
	case "WXGATE_CALLBACK_MAX_BODY_BYTES":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number of bytes", key, value)
		}
		cfg.Callback.MaxBodyBytes = n
	case "WXGATE_PUSH_RATE_PER_ACCOUNT":
		return parseFloatInto(&cfg.Push.RatePerAccount, key, value)
	case "WXGATE_PUSH_BURST":
		return parseIntInto(&cfg.Push.Burst, key, value)
	case "WXGATE_PUSH_WORKERS":
		return parseIntInto(&cfg.Push.Workers, key, value)
	case "WXGATE_PUSH_CALL_TIMEOUT":
		return parseDurationInto(&cfg.Push.CallTimeout, key, value)
	case "WXGATE_PUSH_RECEIPT_TIMEOUT":
		return parseDurationInto(&cfg.Push.ReceiptTimeout, key, value)
	case "WXGATE_API_RATE_PER_KEY":
		return parseFloatInto(&cfg.API.RatePerKey, key, value)
	case "WXGATE_FOLLOWERS_SYNC_EVERY":
		return parseDurationInto(&cfg.Followers.SyncEvery, key, value)
	case "WXGATE_MEDIA_DOWNLOAD_MAX_BYTES":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: %q is not a whole number of bytes", key, value)
		}
		cfg.Media.DownloadMaxBytes = n
	case "WXGATE_MSGLOG_RETENTION":
		return parseDurationInto(&cfg.MsgLog.Retention, key, value)
	case "WXGATE_API_BURST_PER_KEY":
		return parseIntInto(&cfg.API.BurstPerKey, key, value)
	case "WXGATE_PROXY_RATE_PER_KEY":
		return parseFloatInto(&cfg.Proxy.RatePerKey, key, value)
	case "WXGATE_PROXY_BURST_PER_KEY":
		return parseIntInto(&cfg.Proxy.BurstPerKey, key, value)
	case "WXGATE_METRICS_LISTEN":
		cfg.Metrics.Listen = value
	case "WXGATE_METRICS_TOKEN":
		cfg.Metrics.Token, cfg.Metrics.TokenFile = value, ""
	case "WXGATE_METRICS_TOKEN_FILE":
		cfg.Metrics.TokenFile, cfg.Metrics.Token = value, ""
	case "WXGATE_METRICS_ON_PUBLIC_LISTENER":
		on, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
		cfg.Metrics.OnPublicListener = on
	default:
		// Other WXGATE_* variables belong to other parts of the program
		// (and to tests); only the callback namespace is ours to police.
		if strings.HasPrefix(key, envCallbackPrefix) {
			return fmt.Errorf("%s: unknown variable (known: WXGATE_CALLBACK_TIMESTAMP_WINDOW, WXGATE_CALLBACK_MAX_BODY_BYTES, WXGATE_CALLBACK_REPLY_DEADLINE)", key)
		}
	}
	return nil
}

func parseFloatInto(dst *float64, key, value string) error {
	f, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number", key, value)
	}
	*dst = f
	return nil
}

func parseIntInto(dst *int, key, value string) error {
	n, err := strconv.Atoi(value)
	if err != nil {
		return fmt.Errorf("%s: %q is not a whole number", key, value)
	}
	*dst = n
	return nil
}

func parseDurationInto(dst *time.Duration, key, value string) error {
	d, err := time.ParseDuration(value)
	if err != nil {
		return fmt.Errorf("%s: %q is not a duration like 5m or 4s", key, value)
	}
	*dst = d
	return nil
}

// accountKeys are the account keys settable from the environment, as they
// appear upper-cased in variable names.
func accountKeys() []string {
	return []string{
		"KIND", "APP_ID", "APP_SECRET", "APP_SECRET_FILE", "TOKEN", "TOKEN_FILE",
		"ENCODING_AES_KEY", "ENCODING_AES_KEY_FILE",
		"PREVIOUS_ENCODING_AES_KEY", "PREVIOUS_ENCODING_AES_KEY_FILE",
		"MESSAGE_MODE", "ORIGINAL_ID", "API_BASE_URLS", "TOKEN_MODE", "TOKEN_REFRESH_MARGIN", "MASS_SENDS_PER_MONTH",
	}
}

// envName is how an account name appears in variable names.
func envName(accountName string) string {
	return strings.ToUpper(strings.ReplaceAll(accountName, "-", "_"))
}

type accountEnv struct {
	name   string
	fields []accountEnvField
}

type accountEnvField struct {
	key, value string
}

func recordAccountEnv(list []*accountEnv, name, key, value string) []*accountEnv {
	for _, env := range list {
		if env.name == name {
			env.fields = append(env.fields, accountEnvField{key, value})
			return list
		}
	}
	return append(list, &accountEnv{name: name, fields: []accountEnvField{{key, value}}})
}

// splitAccountEnv splits "MAIN_APP_SECRET" into the account name and key.
// Both parts may contain underscores, so names of accounts already known
// are tried first, then the longest key that ends the variable.
func splitAccountEnv(rest string, known []Account, fromEnv []*accountEnv) (name, key string, err error) {
	keys := accountKeys()
	names := make([]string, 0, len(known)+len(fromEnv))
	for _, a := range known {
		names = append(names, a.Name)
	}
	for _, env := range fromEnv {
		names = append(names, env.name)
	}
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	for _, candidate := range names {
		if k, ok := strings.CutPrefix(rest, envName(candidate)+"_"); ok && slices.Contains(keys, k) {
			return candidate, k, nil
		}
	}

	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		if n, ok := strings.CutSuffix(rest, "_"+k); ok && n != "" {
			return strings.ToLower(strings.ReplaceAll(n, "_", "-")), k, nil
		}
	}
	return "", "", fmt.Errorf("not a known account setting; expected %sNAME_KEY with KEY one of %s (replies can only come from the file)",
		envAccountPrefix, strings.Join(accountKeys(), ", "))
}

func setAccountField(a *Account, key, value string) error {
	switch key {
	case "KIND":
		a.Kind = AccountKind(value)
	case "APP_ID":
		a.AppID = value
	case "APP_SECRET":
		a.AppSecret = value
	case "APP_SECRET_FILE":
		a.AppSecretFile = value
	case "TOKEN":
		a.Token = value
	case "TOKEN_FILE":
		a.TokenFile = value
	case "ENCODING_AES_KEY":
		a.EncodingAESKey = value
	case "ENCODING_AES_KEY_FILE":
		a.EncodingAESKeyFile = value
	case "PREVIOUS_ENCODING_AES_KEY":
		a.PreviousEncodingAESKey = value
	case "PREVIOUS_ENCODING_AES_KEY_FILE":
		a.PreviousEncodingAESKeyFile = value
	case "MESSAGE_MODE":
		a.MessageMode = MessageMode(value)
	case "ORIGINAL_ID":
		a.OriginalID = value
	case "TOKEN_MODE":
		a.TokenMode = TokenMode(value)
	case "TOKEN_REFRESH_MARGIN":
		return parseDurationInto(&a.TokenRefreshMargin, "WXGATE_ACCOUNT_…_TOKEN_REFRESH_MARGIN", value)
	case "MASS_SENDS_PER_MONTH":
		return parseIntInto(&a.MassSendsPerMonth, "WXGATE_ACCOUNT_…_MASS_SENDS_PER_MONTH", value)
	case "API_BASE_URLS":
		var urls []string
		for part := range strings.SplitSeq(value, ",") {
			if part = strings.TrimSpace(part); part != "" {
				urls = append(urls, part)
			}
		}
		a.APIBaseURLs = urls
	default:
		return fmt.Errorf("unknown account key %s", key)
	}
	return nil
}

// secretField pairs a secret with the *_file key that may hold it instead.
type secretField struct {
	key   string // yaml key of the value, e.g. "app_secret"
	value *string
	file  *string
}

func secretFields(a *Account) []secretField {
	return []secretField{
		{"app_secret", &a.AppSecret, &a.AppSecretFile},
		{"token", &a.Token, &a.TokenFile},
		{"encoding_aes_key", &a.EncodingAESKey, &a.EncodingAESKeyFile},
		{"previous_encoding_aes_key", &a.PreviousEncodingAESKey, &a.PreviousEncodingAESKeyFile},
	}
}

// dropOverriddenFileKeys lets the environment replace a secret the file
// gave the other way: WXGATE_ACCOUNT_MAIN_APP_SECRET wins over the file's
// app_secret_file, and the reverse. Setting both in the environment is a
// mistake worth reporting.
func dropOverriddenFileKeys(a *Account, fields []accountEnvField) error {
	set := make(map[string]bool, len(fields))
	for _, f := range fields {
		set[f.key] = true
	}
	var errs []error
	for _, s := range secretFields(a) {
		valueKey := strings.ToUpper(s.key)
		fileKey := valueKey + "_FILE"
		switch {
		case set[valueKey] && set[fileKey]:
			errs = append(errs, fmt.Errorf("account %q: both %s%s_%s and %s%s_%s are set; keep one",
				a.Name, envAccountPrefix, envName(a.Name), valueKey, envAccountPrefix, envName(a.Name), fileKey))
		case set[valueKey]:
			*s.file = ""
		case set[fileKey]:
			*s.value = ""
		}
	}
	return errors.Join(errs...)
}

// readSecretFiles replaces each *_file key by the content of its file.
func readSecretFiles(cfg *Config) error {
	var errs []error
	if err := readSecretFile("metrics.token", &cfg.Metrics.Token, cfg.Metrics.TokenFile); err != nil {
		errs = append(errs, err)
	}
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		for _, s := range secretFields(a) {
			if *s.file == "" {
				continue
			}
			if *s.value != "" {
				errs = append(errs, fmt.Errorf("account %q: both %s and %s_file are set; keep one — %s 与 %s_file 只能设置一个",
					a.Name, s.key, s.key, s.key, s.key))
				continue
			}
			data, err := os.ReadFile(*s.file)
			if err != nil {
				errs = append(errs, fmt.Errorf("account %q: reading %s_file: %w", a.Name, s.key, err))
				continue
			}
			// Files written by editors or `echo` end with a newline that is
			// not part of the secret.
			*s.value = strings.TrimRight(string(data), "\r\n")
		}
	}
	return errors.Join(errs...)
}

// readSecretFile fills *value from file (when set) for a top-level key.
func readSecretFile(key string, value *string, file string) error {
	if file == "" {
		return nil
	}
	if *value != "" {
		return fmt.Errorf("both %s and %s_file are set; keep one — %s 与 %s_file 只能设置一个", key, key, key, key)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s_file: %w", key, err)
	}
	*value = strings.TrimRight(string(data), "\r\n")
	return nil
}
