// Package deploy holds the deployment kit (systemd unit, Dockerfile,
// docker compose, nginx); its test keeps the kit in step with the code.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wxgate/wxgate/internal/cli"
	"github.com/wxgate/wxgate/internal/config"
)

// composeFile is the part of docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// Every WXGATE_ variable the compose file sets is a configuration key:
// setting it alone changes the loaded configuration (a misspelt one would
// be ignored by wxgate and leave the default in place).
func TestComposeUsesRealConfigKeys(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	base, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	instances := 0
	var all []string
	for name, svc := range c.Services {
		if !strings.HasPrefix(name, "wxgate") {
			continue
		}
		instances++
		if len(svc.Command) == 0 || !isCommand(t, svc.Command[0]) {
			t.Errorf("service %s: command %v is not a wxgate command", name, svc.Command)
		}
		for key, value := range svc.Environment {
			if !strings.HasPrefix(key, "WXGATE_") {
				continue
			}
			if strings.HasSuffix(key, "_FILE") {
				// A secret read from a file: give it one.
				value = filepath.Join(t.TempDir(), "secret")
				if err := os.WriteFile(value, []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			all = append(all, key+"="+value)
			if _, err := config.Load("", []string{key + "=" + value}); err != nil {
				t.Errorf("service %s: %s=%s: %v", name, key, value, err)
				continue
			}
			if !changesConfig(base, key, value) {
				t.Errorf("service %s: %s changes nothing: not a configuration key (docs/configuration.md)", name, key)
			}
		}
		if got := svc.Environment["WXGATE_DATABASE_URL"]; !strings.HasPrefix(got, "postgres://") {
			t.Errorf("service %s: database_url %q; several instances need PostgreSQL", name, got)
		}
	}
	if instances != 2 {
		t.Errorf("%d wxgate services, want 2", instances)
	}
	// Together, with the secrets in files, they make a valid configuration.
	if len(all) > 0 {
		cfg, err := config.Load("", dedupe(all))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("the compose configuration does not validate: %v", err)
		}
		// docs/operations.md tells to paste https://…/wx/main into WeChat.
		if _, ok := cfg.Account("main"); !ok || len(cfg.Accounts) != 1 {
			t.Errorf("accounts = %+v, want the one account main", cfg.Accounts)
		}
	}
}

// The systemd unit starts a real command with real flags.
func TestSystemdExecStart(t *testing.T) {
	f, err := os.Open("systemd/wxgate.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var exec []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ExecStart="); ok {
			exec = strings.Fields(v)
		}
	}
	if len(exec) < 2 || filepath.Base(exec[0]) != "wxgate" {
		t.Fatalf("ExecStart = %v, want wxgate <command> …", exec)
	}
	if !isCommand(t, exec[1]) {
		t.Fatalf("ExecStart runs %q, not a wxgate command", exec[1])
	}
	// Its flags are the command's: each appears in `wxgate <command> -h`.
	var stderr bytes.Buffer
	cli.Run(context.Background(), []string{exec[1], "-h"}, cli.Env{Stdout: &bytes.Buffer{}, Stderr: &stderr})
	for _, arg := range exec[2:] {
		if name, ok := strings.CutPrefix(arg, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !strings.Contains(stderr.String(), "-"+name+" ") && !strings.Contains(stderr.String(), "-"+name+"\n") {
				t.Errorf("ExecStart flag %s is not a flag of wxgate %s:\n%s", arg, exec[1], stderr.String())
			}
		}
	}
}

// isCommand tells whether wxgate knows the command (it is listed by
// `wxgate help`).
func isCommand(t *testing.T, name string) bool {
	t.Helper()
	var out bytes.Buffer
	cli.Run(context.Background(), []string{"help"}, cli.Env{Stdout: &out, Stderr: &out})
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// changesConfig tells whether setting key changes the loaded
// configuration, to value or, when value is the default, to another value
// of a likely type.
func changesConfig(base config.Config, key, value string) bool {
	for _, v := range []string{value, "7", "debug", "true", "3s", "x"} {
		got, err := config.Load("", []string{key + "=" + v})
		if err == nil && !reflect.DeepEqual(got, base) {
			return true
		}
	}
	return false
}

func dedupe(env []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !seen[k] {
			seen[k] = true
			out = append(out, kv)
		}
	}
	return out
}
