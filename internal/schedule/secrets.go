package schedule

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Secrets gives the values of {{secret "NAME"}} in a data source's URL and
// headers (API keys). Values are never logged nor stored: runs record the
// URL with "****" in their place.
type Secrets interface {
	// Secret returns the value of a secret and whether it is set.
	Secret(name string) (string, bool)
}

// secretName: letters, digits and underscores, as in an environment
// variable.
var secretName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// EnvSecrets reads secret NAME from the environment variable
// WXGATE_SECRET_NAME, or from the file named by WXGATE_SECRET_NAME_FILE
// (trailing newlines removed), NAME in upper case. environ is
// os.Environ() or a test's list.
func EnvSecrets(environ []string) Secrets {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "WXGATE_SECRET_") {
			m[k] = v
		}
	}
	return envSecrets(m)
}

type envSecrets map[string]string

func (e envSecrets) Secret(name string) (string, bool) {
	key := "WXGATE_SECRET_" + strings.ToUpper(name)
	if v, ok := e[key]; ok && v != "" {
		return v, true
	}
	if path, ok := e[key+"_FILE"]; ok && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", false
		}
		return strings.TrimRight(string(b), "\r\n"), true
	}
	return "", false
}

// MapSecrets are secrets given by the program (the demo's weather key).
type MapSecrets map[string]string

// Secret implements Secrets; names are matched in upper case.
func (m MapSecrets) Secret(name string) (string, bool) {
	v, ok := m[strings.ToUpper(name)]
	return v, ok && v != ""
}

// ChainSecrets looks a secret up in each source in turn.
func ChainSecrets(list ...Secrets) Secrets { return chain(list) }

type chain []Secrets

func (c chain) Secret(name string) (string, bool) {
	for _, s := range c {
		if s == nil {
			continue
		}
		if v, ok := s.Secret(name); ok {
			return v, true
		}
	}
	return "", false
}

// secretFunc is {{secret "NAME"}} for one run.
func secretFunc(s Secrets) func(string) (string, error) {
	return func(name string) (string, error) {
		if !secretName.MatchString(name) {
			return "", fmt.Errorf("secret name %q must be letters, digits and _ — 密钥名称只能包含字母、数字和下划线", name)
		}
		if s != nil {
			if v, ok := s.Secret(name); ok {
				return v, nil
			}
		}
		up := strings.ToUpper(name)
		return "", fmt.Errorf("secret %s is not set: set WXGATE_SECRET_%s (or WXGATE_SECRET_%s_FILE) in the gateway's environment — 未设置密钥 %s", up, up, up, up)
	}
}
