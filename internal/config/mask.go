package config

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maskVisibleMinLength is the shortest secret whose last characters are
// shown: four characters of a long secret help tell keys apart without
// giving much away, while for a short one they would be most of it.
const maskVisibleMinLength = 12

// MaskSecret hides a secret for display: "****" plus its last four
// characters when it is at least 12 characters long, otherwise "****".
// An empty secret stays empty so "not set" remains visible.
func MaskSecret(secret string) string {
	if secret == "" {
		return ""
	}
	if utf8.RuneCountInString(secret) < maskVisibleMinLength {
		return "****"
	}
	runes := []rune(secret)
	return "****" + string(runes[len(runes)-4:])
}

// MaskDatabaseURL hides the password of a database URL, in the user part
// or in a password= query parameter.
func MaskDatabaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// An unparsable URL may still hold a password; show only its scheme.
		if scheme, _, ok := strings.Cut(raw, "://"); ok {
			return scheme + "://****"
		}
		return "****"
	}
	// Edited in place rather than through url.Values, which would reorder
	// the parameters and percent-encode the mask.
	params := strings.Split(u.RawQuery, "&")
	for i, param := range params {
		if value, ok := strings.CutPrefix(param, "password="); ok {
			if unescaped, err := url.QueryUnescape(value); err == nil {
				value = unescaped
			}
			params[i] = "password=" + MaskSecret(value)
		}
	}
	u.RawQuery = strings.Join(params, "&")
	masked := u.String()
	if password, ok := u.User.Password(); ok {
		// Built by hand because url.UserPassword would percent-encode the mask.
		userinfo := url.UserPassword(u.User.Username(), "").String()
		masked = strings.Replace(masked, u.User.String()+"@", userinfo+MaskSecret(password)+"@", 1)
	}
	return masked
}

// Masked returns a copy of c with every secret masked, for display.
func (c Config) Masked() Config {
	masked := c
	masked.DatabaseURL = MaskDatabaseURL(c.DatabaseURL)
	masked.Metrics.Token = MaskSecret(c.Metrics.Token)
	masked.Accounts = slices.Clone(c.Accounts)
	for i := range masked.Accounts {
		a := &masked.Accounts[i]
		a.AppSecret = MaskSecret(a.AppSecret)
		a.Token = MaskSecret(a.Token)
		a.EncodingAESKey = MaskSecret(a.EncodingAESKey)
		a.PreviousEncodingAESKey = MaskSecret(a.PreviousEncodingAESKey)
	}
	return masked
}

// MaskedYAML is the whole configuration as YAML with secrets masked, as
// printed by `wxgate config check`.
func (c Config) MaskedYAML() ([]byte, error) {
	var out bytes.Buffer
	encoder := yaml.NewEncoder(&out)
	encoder.SetIndent(2)
	if err := encoder.Encode(c.Masked()); err != nil {
		return nil, fmt.Errorf("encoding config as YAML: %w", err)
	}
	if err := encoder.Close(); err != nil {
		return nil, fmt.Errorf("encoding config as YAML: %w", err)
	}
	return out.Bytes(), nil
}
