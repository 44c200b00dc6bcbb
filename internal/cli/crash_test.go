package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechat"
)

// crashServeEnv makes the test binary run `wxgate serve --config $value`
// instead of the tests (TestMain): the crash test's server is a process
// of its own that it can SIGKILL.
const crashServeEnv = "WXGATE_TEST_SERVE_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(crashServeEnv); cfg != "" {
		os.Exit(Run(context.Background(), []string{"serve", "--config", cfg},
			Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}))
	}
	os.Exit(m.Run())
}

// The server is SIGKILLed under load: every push it answered with its
// reply is in the message log afterwards, and after a restart (with the
// rule's text changed) a retry of one of them gets the first reply, while
// a new push gets the new one.
func TestSIGKILLUnderLoadLosesNoAnsweredPush(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		crashUnderLoad(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "wxgate.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		crashUnderLoad(t, dbtest.PostgresURL(t))
	})
}

const crashToken = "crashtoken"

// crashServer is one `wxgate serve` child process.
type crashServer struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	url  string
	done chan struct{}
}

func startCrashServer(t *testing.T, cfgPath string) *crashServer {
	t.Helper()
	s := &crashServer{out: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), crashServeEnv+"="+cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	listening := regexp.MustCompile(`wxgate is listening on (http://\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listening.FindStringSubmatch(s.out.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("the server exited before listening:\n%s", s.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen within 60 s:\n%s", s.out.String())
		}
	}
}

// push posts one plaintext text message with MsgId id from openid and
// returns the HTTP status and body.
func crashPush(ctx context.Context, client *http.Client, base string, id int64, openid string) (int, string, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := strconv.FormatInt(id%1000000007, 10)
	m := wechat.Message{ToUserName: "gh_crash0000001", FromUserName: openid, CreateTime: time.Now().Unix(),
		MsgType: wechat.MsgTypeText, Content: "第 " + strconv.FormatInt(id, 10) + " 条", MsgID: id}
	target := fmt.Sprintf("%s/wx/main?signature=%s&timestamp=%s&nonce=%s&openid=%s", base, wechat.Signature(crashToken, ts, nonce), ts, nonce, openid)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(wechat.EncodeMessage(&m))))
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func crashUnderLoad(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wxgate.yaml")
	writeCfg := func(reply string) {
		// Ports the system picks: tests in other packages run servers at
		// the same time, the default metrics port among them.
		cfg := fmt.Sprintf(`listen: 127.0.0.1:0
database_url: %s
log_level: warn
metrics:
  listen: 127.0.0.1:0
accounts:
  - name: main
    app_id: wx00000000c0a5h001
    token: %s
    message_mode: plaintext
    original_id: gh_crash0000001
    replies:
      - {match: default, reply: {type: text, content: %s}}
`, databaseURL, crashToken, reply)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("第一次回复")
	srv := startCrashServer(t, cfgPath)

	// Load from 16 senders at once, each push a new MsgId from a new
	// follower, until enough have been answered; then SIGKILL mid-load.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var (
		mu       sync.Mutex
		answered []int64 // pushes answered with the rule's reply
		deferred int     // pushes answered "success" before their write (a stalled database)
		nextID   atomic.Int64
		wg       sync.WaitGroup
	)
	nextID.Store(time.Now().UnixNano() / 1000)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id := nextID.Add(1)
				status, body, err := crashPush(ctx, client, srv.url, id, fmt.Sprintf("oCrash%022d", id%1e9))
				if err != nil || status != http.StatusOK {
					continue // the kill cuts requests off: those were never answered
				}
				mu.Lock()
				switch {
				case strings.Contains(body, "第一次回复"):
					answered = append(answered, id)
				case body == "success":
					deferred++
				}
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d pushes answered in 60 s:\n%s", n, srv.out.String())
		}
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	stopLoad()
	wg.Wait()
	mu.Lock()
	got := append([]int64(nil), answered...)
	mu.Unlock()
	if deferred > 0 {
		t.Logf("%d pushes were answered before their write (the database stalled past the deadline); they are not counted", deferred)
	}

	// Every answered push is in the log.
	openCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	database, err := db.Open(openCtx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[int64]bool{}
	rows, err := database.QueryContext(openCtx, `SELECT msg_id FROM inbound_messages WHERE account = 'main'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		logged[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	database.Close()
	var lost []int64
	for _, id := range got {
		if !logged[id] {
			lost = append(lost, id)
		}
	}
	t.Logf("%d pushes answered before the SIGKILL, %d rows in the log", len(got), len(logged))
	if len(lost) > 0 {
		t.Fatalf("%d answered pushes are missing from the log after SIGKILL, e.g. MsgId %d", len(lost), lost[0])
	}

	// Restarted with another reply: a retry gets the first answer, a new
	// push the new one.
	writeCfg("第二次回复")
	srv = startCrashServer(t, cfgPath)
	for _, id := range got[:20] {
		status, body, err := crashPush(context.Background(), client, srv.url, id, fmt.Sprintf("oCrash%022d", id%1e9))
		if err != nil || status != http.StatusOK || !strings.Contains(body, "第一次回复") {
			t.Fatalf("the retry of answered MsgId %d after the restart: %d %q %v", id, status, body, err)
		}
	}
	status, body, err := crashPush(context.Background(), client, srv.url, nextID.Add(1), "oCrashNewAfterRestart0000000")
	if err != nil || status != http.StatusOK || !strings.Contains(body, "第二次回复") {
		t.Fatalf("a new push after the restart: %d %q %v", status, body, err)
	}
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the restarted server did not stop on SIGINT:\n%s", srv.out.String())
	}
}
