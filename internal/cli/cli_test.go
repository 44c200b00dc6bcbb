package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func run(t *testing.T, ctx context.Context, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = Run(ctx, args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Environ: environ})
	return code, out.String(), errOut.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wxgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, context.Background(), nil, "version")
	if code != 0 || !strings.HasPrefix(out, "wxgate ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
	code, out, _ = run(t, context.Background(), nil, "help")
	if code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "migrate") {
		t.Fatalf("help: code %d, out %q", code, out)
	}
	code, _, errOut := run(t, context.Background(), nil, "nosuch")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: code %d, stderr %q", code, errOut)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := writeConfig(t, `
database_url: sqlite://`+filepath.Join(dir, "w.db")+`
accounts:
  - name: main
    app_id: wx0123456789abcdef
    app_secret: s3cr3t-app-secret-value
    token: mytoken2026
    encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
    message_mode: safe
`)
	code, out, errOut := run(t, context.Background(), nil, "config", "check", "--config", good)
	if code != 0 {
		t.Fatalf("good config refused: %d %s", code, errOut)
	}
	for _, secret := range []string{"s3cr3t-app-secret-value", "mytoken2026", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"} {
		if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
			t.Errorf("config check printed the secret %q", secret)
		}
	}
	if !strings.Contains(out, "wx0123456789abcdef") {
		t.Errorf("config check did not print the app id:\n%s", out)
	}

	bad := writeConfig(t, `
accounts:
  - name: shop
    app_id: wx0123456789abcdef
    encoding_aes_key: tooshort
    message_mode: safe
`)
	code, _, errOut = run(t, context.Background(), nil, "config", "check", "--config", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{`account "shop"`, "43", "token"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestMigrateStatus(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "m.db")
	code, out, errOut := run(t, context.Background(), nil, "migrate", "--database-url", url)
	if code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	if !strings.Contains(out, "00001") || strings.Contains(out, "pending") {
		t.Fatalf("migrate output:\n%s", out)
	}
}

func TestServePrintsConnectInstructionsAndStops(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, `
listen: 127.0.0.1:0
public_url: https://wx.example.com
database_url: sqlite://`+filepath.Join(dir, "w.db")+`
accounts:
  - name: main
    app_id: wx0123456789abcdef
    token: mytoken2026
    encoding_aes_key: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
    message_mode: safe
`)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", cfg}, Env{Stdout: &out, Stderr: &errOut})
	}()
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("serve did not start:\nstdout: %s\nstderr: %s", out.String(), errOut.String())
	}
	for _, want := range []string{"https://wx.example.com/wx/main", "safe", "IP白名单"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve output lacks %q:\n%s", want, out.String())
		}
	}
	// Not a terminal: the Token stays masked.
	if strings.Contains(out.String(), "mytoken2026") {
		t.Errorf("serve printed the token to a non-terminal")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}

func TestAPIKeyAndRepliesCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := []string{"WXGATE_DATABASE_URL=sqlite://" + filepath.Join(t.TempDir(), "k.db")}

	code, key, errOut := run(t, ctx, env, "apikey", "create", "--name", "crm", "--scopes", "send,read")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(key), "wxg_") {
		t.Fatalf("apikey create: %d %q %s", code, key, errOut)
	}
	code, list, _ := run(t, ctx, env, "apikey", "list")
	if code != 0 || !strings.Contains(list, "crm") || !strings.Contains(list, "read,send") || strings.Contains(list, strings.TrimSpace(key)) {
		t.Fatalf("apikey list (must show the key but never its secret):\n%s", list)
	}
	if code, _, errOut := run(t, ctx, env, "apikey", "create", "--name", "x", "--scopes", "everything"); code == 0 || !strings.Contains(errOut, "unknown scope") {
		t.Fatalf("bad scope accepted: %d %s", code, errOut)
	}
	if code, key, errOut := run(t, ctx, env, "apikey", "create", "--name", "legacy-crm", "--scopes", "proxy", "--allow-path", "cgi-bin/user/,cgi-bin/menu/get"); code != 0 || !strings.HasPrefix(strings.TrimSpace(key), "wxg_") {
		t.Fatalf("apikey create --scopes proxy --allow-path: %d %q %s", code, key, errOut)
	}
	if code, list, _ := run(t, ctx, env, "apikey", "list"); code != 0 || !strings.Contains(list, "legacy-crm") || !strings.Contains(list, "proxy") || !strings.Contains(list, "cgi-bin/menu/get,cgi-bin/user/") {
		t.Fatalf("apikey list lacks the proxy key:\n%s", list)
	}
	if code, _, errOut := run(t, ctx, env, "apikey", "revoke", "1"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}

	code, _, errOut = run(t, ctx, env, "replies", "add", "--account", "main", "--match", "keyword", "--mode", "contains", "--pattern", "价格", "--text", "请看价目表")
	if code != 0 {
		t.Fatalf("replies add: %s", errOut)
	}
	code, out, _ := run(t, ctx, env, "replies", "list", "--account", "main")
	if code != 0 || !strings.Contains(out, `contains "价格"`) || !strings.Contains(out, "请看价目表") {
		t.Fatalf("replies list:\n%s", out)
	}
	code, _, errOut = run(t, ctx, env, "replies", "add", "--account", "main", "--match", "keyword", "--mode", "regex", "--pattern", "([", "--text", "x")
	if code == 0 || !strings.Contains(errOut, "regex") {
		t.Fatalf("invalid regex accepted: %d %s", code, errOut)
	}
}

func TestFollowerSyncJobs(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Accounts = []config.Account{
		{Name: "main", Kind: config.KindOfficialAccount, AppSecret: "s"},
		{Name: "nosecret", Kind: config.KindOfficialAccount},
		{Name: "shop-mp", Kind: config.KindMiniProgram, AppSecret: "s"},
	}
	if got := len(followerSyncJobs(cfg)); got != 1 {
		t.Fatalf("periodic syncs = %d, want 1 (only the official account with a secret)", got)
	}
	cfg.Followers.SyncEvery = 0
	if got := len(followerSyncJobs(cfg)); got != 0 {
		t.Fatalf("sync_every 0 still schedules %d syncs", got)
	}
}
