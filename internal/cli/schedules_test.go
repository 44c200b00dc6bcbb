package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSchedulesCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, `
database_url: sqlite://`+filepath.Join(dir, "w.db")+`
accounts:
  - name: main
    app_id: wx0123456789abcdef
    app_secret: s3cr3t-app-secret-value
    token: mytoken2026
    message_mode: plaintext
`)
	file := filepath.Join(dir, "schedule.json")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	sched := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, ctx, nil, append([]string{"schedules"}, append(args, "--config", cfg)...)...)
	}
	write(`{"name":"早安","account":"main","cron":"30 7 * * *","audience":{"kind":"openids","openids":["o-1"]},
	  "template":"good_morning","data":{"thing1":"在一起第 {{add (daysSince .Attr.since) 1}} 天"}}`)
	code, out, errOut := sched("create", "--file", file)
	if code != 0 || !strings.Contains(out, `schedule 1 "早安" saved`) || !strings.Contains(out, "07:30 CST") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	code, out, _ = sched("list")
	if code != 0 || !regexp.MustCompile(`1\s+早安\s+main\s+30 7 \* \* \*\s+Asia/Shanghai\s+enabled`).MatchString(out) {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ = sched("next", "1", "--n", "3")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 || !strings.HasSuffix(lines[2], "07:30 "+lines[2][17:20]+" CST (+08:00)") {
		t.Fatalf("next: %d %q", code, out)
	}
	if code, out, _ = sched("pause", "1"); code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %d %q", code, out)
	}
	if code, out, _ = sched("list"); !strings.Contains(out, "paused") {
		t.Fatalf("list after pause: %q", out)
	}
	if code, out, _ = sched("resume", "1"); code != 0 || !strings.Contains(out, "resumed") {
		t.Fatalf("resume: %d %q", code, out)
	}
	if code, out, _ = sched("run", "1"); code != 0 || !strings.Contains(out, "run 1 of schedule 1 queued") {
		t.Fatalf("run: %d %q", code, out)
	}
	if code, out, _ = sched("runs", "1"); code != 0 || !regexp.MustCompile(`1\s+manual\s+\S+ \S+ CST\s+queued`).MatchString(out) {
		t.Fatalf("runs: %d %q", code, out)
	}
	if code, out, _ = sched("attr", "--account", "main", "--openid", "o-1", "city=北京", "since=2020-05-20"); code != 0 || out != "city=北京\nsince=2020-05-20\n" {
		t.Fatalf("attr: %d %q", code, out)
	}
	if code, out, _ = sched("attr", "--account", "main", "--openid", "o-1", "--unset", "city"); code != 0 || out != "since=2020-05-20\n" {
		t.Fatalf("attr --unset: %d %q", code, out)
	}

	// Mistakes are explained in both languages.
	write(`{"name":"x","account":"main","cron":"30 7 * *","audience":{"kind":"all"},"template":"t","data":{"thing1":"x"}}`)
	if code, _, errOut = sched("update", "1", "--file", file); code != 1 || !strings.Contains(errOut, "cron 表达式") {
		t.Fatalf("bad cron: %d %q", code, errOut)
	}
	write(`{"name":"x","account":"main","cron":"30 7 * * *","timezone":"Asia/Beijing","audience":{"kind":"all"},"template":"t","data":{"thing1":"x"}}`)
	if code, _, errOut = sched("update", "1", "--file", file); code != 1 || !strings.Contains(errOut, "时区") {
		t.Fatalf("bad zone: %d %q", code, errOut)
	}
	if code, out, _ = sched("delete", "1"); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %q", code, out)
	}
	if code, _, errOut = sched("get", "1"); code != 1 || !strings.Contains(errOut, "schedule_not_found") {
		t.Fatalf("get after delete: %d %q", code, errOut)
	}
}

// The demo's weather schedule, run now with the printed line, puts one
// card with its own city's weather on each phone.
func TestDemoWeatherSchedule(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", dataDir, "--mode", "plaintext"},
			Env{Stdout: &out, Stderr: &errOut})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited %d: %s", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop")
		}
	})
	runLine := regexp.MustCompile(`curl -s -X POST -H 'Authorization: Bearer (wxg_\w+)' (http://127\.0\.0\.1:\d+/api/v1/schedules/(\d+))/run\n`)
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		m = runLine.FindStringSubmatch(out.String())
	}
	if m == nil {
		t.Fatalf("demo printed no weather line:\n%s\n%s", out.String(), errOut.String())
	}
	key, scheduleURL := m[1], m[2]
	sim := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/sim/`).FindStringSubmatch(out.String())[1]

	req := postJSON(scheduleURL+"/run", "")
	req.Header.Set("Authorization", "Bearer "+key)
	var run struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	doJSON(t, req, &run)
	if run.ID == 0 || run.Status != "queued" {
		t.Fatalf("run answer %+v", run)
	}
	var detail struct {
		Status string `json:"status"`
		Counts struct {
			Recipients, Sent, Delivered, Skipped int
		} `json:"counts"`
		Recipients []struct {
			OpenID string            `json:"openid"`
			Data   map[string]string `json:"data"`
		} `json:"recipients"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		get, _ := http.NewRequest("GET", scheduleURL+"/runs/"+strconv.FormatInt(run.ID, 10), nil)
		get.Header.Set("Authorization", "Bearer "+key)
		doJSON(t, get, &detail)
		if detail.Status == "done" && detail.Counts.Delivered == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weather run not delivered: %+v", detail)
		}
	}
	cities := map[string]bool{}
	for _, r := range detail.Recipients {
		var inbox []struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
		}
		get, _ := http.NewRequest("GET", sim+"/sim/api/users/"+r.OpenID+"/inbox?app_id=wxd0e1110000000001", nil)
		doJSON(t, get, &inbox)
		var cards []map[string]string
		for _, it := range inbox {
			if it.Kind == "template" {
				cards = append(cards, it.Data)
			}
		}
		if len(cards) != 1 || cards[0]["thing1"] != r.Data["city"] || cards[0]["phrase2"] == "" {
			t.Errorf("phone %s: cards %v, want one with the weather of %s", r.OpenID, cards, r.Data["city"])
		}
		cities[r.Data["city"]] = true
	}
	if len(cities) != 3 {
		t.Errorf("cities %v, want 北京, 上海, 广州", cities)
	}
}
