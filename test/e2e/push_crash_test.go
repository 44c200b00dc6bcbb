// Package e2e drives the real wxgate binary as separate processes.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

const (
	crashAppID     = "wx00000000crash001"
	crashAppSecret = "crash-secret-0123456789abcdef0123"
	crashTemplate  = "Tm-Crash-Notice-0000000000000000000000001"
	crashFollowers = 10_000
)

// SIGKILL in the middle of a 10 000-recipient send, then a restart: every
// follower ends with exactly one card in the simulator's inbox. The
// simulator runs as its own process and outlives the gateway. Recipients
// not yet sent are taken up by the restarted gateway; those whose call was
// in flight at the kill are sent again with the same client_msg_id, which
// WeChat (here the simulator) answers with the first msgid without a
// second delivery. On SQLite the restarted gateway takes those jobs back at
// once (one process per file); on PostgreSQL River's rescuer does, after
// queue.DefaultRescueAfter (2 minutes), so that subtest takes about three
// minutes.
func TestPushSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the real binary around a 10 000-recipient send; takes minutes")
	}
	t.Parallel()
	bin := wxgateBinary(t)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		crashTest(t, bin, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "data", "wxgate.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		crashTest(t, bin, postgresDatabase(t))
	})
}

func crashTest(t *testing.T, bin, databaseURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 280*time.Second)
	defer cancel()
	dir := t.TempDir()

	// The simulator with a daily quota large enough, and the gateway's
	// configuration, its followers and an API key.
	setup := newSendSetup(t, ctx, bin, dir, sendSetupSpec{appID: crashAppID, secret: crashAppSecret, originalID: "gh_crash00000001",
		template: crashTemplate, callbackToken: "crashtoken", followers: crashFollowers, databaseURL: databaseURL})
	simURL, cfg, key, created := setup.simURL, setup.cfg, setup.key, struct{ OpenIDs []string }{setup.openids}

	gw := startProc(t, "gateway", bin, filepath.Join(dir, "gateway-1.log"), "serve", "--config", cfg)
	base := gw.waitLine(t, "wxgate is listening on")
	var accepted struct {
		ID         string `json:"id"`
		Recipients []struct {
			Status string `json:"status"`
		} `json:"recipients"`
	}
	call(t, ctx, "POST", base+"/api/v1/messages", key, map[string]any{"account": "main", "to": map[string]any{"openids": created.OpenIDs},
		"channel": "template", "template": crashTemplate, "data": map[string]string{"thing1": "停电通知", "time2": "2026-11-24 10:00"}},
		http.StatusAccepted, &accepted)
	if len(accepted.Recipients) != crashFollowers {
		t.Fatalf("accepted %d recipients, want %d", len(accepted.Recipients), crashFollowers)
	}
	for i, r := range accepted.Recipients {
		if r.Status != "queued" {
			t.Fatalf("recipient %d is %s, want queued", i, r.Status)
		}
	}

	// Kill the gateway once about half are sent.
	counts := func(base string) map[string]int {
		var m struct {
			Counts map[string]int `json:"counts"`
		}
		call(t, ctx, "GET", base+"/api/v1/messages/"+accepted.ID+"?limit=1", key, nil, http.StatusOK, &m)
		return m.Counts
	}
	for {
		c := counts(base)
		if c["sent"] >= crashFollowers/2 {
			break
		}
		if c["queued"] == 0 {
			t.Fatalf("the send finished before the kill: %v", c)
		}
		sleep(t, ctx, 20*time.Millisecond)
	}
	gw.kill(t)
	before := simStats(t, ctx, simURL)
	t.Logf("SIGKILL with %d cards delivered", before.Items)
	if before.Items >= crashFollowers || before.Items == 0 {
		t.Fatalf("killed with %d of %d cards delivered; want the kill in the middle", before.Items, crashFollowers)
	}

	gw = startProc(t, "gateway", bin, filepath.Join(dir, "gateway-2.log"), "serve", "--config", cfg)
	base = gw.waitLine(t, "wxgate is listening on")
	var c map[string]int
	for {
		c = counts(base)
		if c["queued"] == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the restart, recipients still queued: %v", c)
		}
		sleep(t, ctx, 200*time.Millisecond)
	}
	if c["sent"] != crashFollowers {
		t.Errorf("gateway: %v, want all %d sent", c, crashFollowers)
	}
	after := simStats(t, ctx, simURL)
	if after.Users != crashFollowers || after.Items != crashFollowers || after.Histogram["1"] != crashFollowers {
		t.Errorf("simulator: %d followers, %d cards, cards per follower %v; want exactly one each (none: %v, several: %v)",
			after.Users, after.Items, after.Histogram, after.None, after.Several)
	}
	var calls map[string]int
	call(t, ctx, "GET", simURL+"/sim/api/calls?app_id="+crashAppID, "", nil, http.StatusOK, &calls)
	t.Logf("template/send calls: %d for %d followers (repeats answered by client_msg_id without a second card)",
		calls["/cgi-bin/message/template/send"], crashFollowers)
	gw.stop(t)
	setup.sim.stop(t)
}

type inboxStats struct {
	Users     int            `json:"users"`
	Items     int            `json:"items"`
	Histogram map[string]int `json:"histogram"`
	None      []string       `json:"none"`
	Several   []string       `json:"several"`
	// MaxPerSecond is the most cards that arrived within one second.
	MaxPerSecond int `json:"max_per_second"`
}

func simStats(t *testing.T, ctx context.Context, simURL string) inboxStats {
	t.Helper()
	var st inboxStats
	call(t, ctx, "GET", simURL+"/sim/api/apps/"+crashAppID+"/inbox_stats?kind=template", "", nil, http.StatusOK, &st)
	return st
}

// wxgateBinary builds the wxgate command once per test binary.
var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func wxgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "wxgate-e2e-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "wxgate"), "github.com/wxgate/wxgate/cmd/wxgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "wxgate")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// postgresDatabase creates a database for the test on the server of
// WXGATE_TEST_POSTGRES_URL (as internal/db/dbtest) and drops it after;
// it skips the test when the server is unreachable, unless
// WXGATE_REQUIRE_POSTGRES=1.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	serverURL := os.Getenv("WXGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := db.Open(ctx, serverURL)
	if err != nil {
		if os.Getenv("WXGATE_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("postgres unreachable at %s: %v", db.MaskURL(serverURL), err)
		}
		t.Skipf("postgres unreachable at %s: %v", db.MaskURL(serverURL), err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "wxgate_e2e_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// proc is a child process whose stdout and stderr go to a log file; it is
// ended by its PID when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}

	mu    sync.Mutex
	lines []string
}

func startProc(t *testing.T, name, bin, logPath string, args ...string) *proc {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("%s log:\n%s", p.name, lastLines(string(b), 20))
		}
	})
	return p
}

// waitLine returns what follows prefix on the first stdout line that
// starts with it.
func (p *proc) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
				p.mu.Unlock()
				return strings.TrimSpace(rest)
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %q", p.name, prefix)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %q within a minute", p.name, prefix)
	return ""
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop sends SIGTERM and expects a clean exit within 30 seconds.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with status %d after SIGTERM", p.name, code)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

func runCmd(t *testing.T, ctx context.Context, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wxgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

var httpClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil}}

// call sends a JSON request (with a Bearer key when key is set), expects
// the status want and decodes the answer into out.
func call(t *testing.T, ctx context.Context, method, u, key string, body any, want int, out any) {
	t.Helper()
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rdr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, u, resp.StatusCode, want, lastLines(string(raw), 5))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
	}
}

func sleep(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("out of time: %v", ctx.Err())
	case <-time.After(d):
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
