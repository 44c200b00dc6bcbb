// Command followersync measures a full follower sync: it runs the WeChat
// simulator in this process with N followers, runs `wxgate followers sync`
// against it as a child process, and reports the wall time, the WeChat
// calls made (user/get, user/info/batchget: the fewest possible are
// ⌈N/10 000⌉ and ⌈N/100⌉) and the child's peak RSS (VmHWM, Linux). With
// --interrupt-after the first run is killed (SIGKILL) after that long and
// the run that resumes it is reported too.
//
//	go build -o /tmp/wxgate ./cmd/wxgate
//	go run ./bench/followersync --wxgate /tmp/wxgate -n 1000000 [--database-url postgres://…] [--interrupt-after 30s]
//
// The database is a fresh SQLite file unless --database-url names one (it
// should be empty: an earlier sync there would be resumed or repeated).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	appID     = "wx00000000000be0c1"
	appSecret = "bench-secret-0123456789abcdef012"
	pathList  = "/cgi-bin/user/get"
	pathBatch = "/cgi-bin/user/info/batchget"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "followersync:", err)
		os.Exit(1)
	}
}

func run() error {
	wxgate := flag.String("wxgate", "wxgate", "the wxgate binary")
	n := flag.Int("n", 1000000, "followers")
	databaseURL := flag.String("database-url", "", "database of the sync (default: a new SQLite file)")
	concurrency := flag.Int("concurrency", 4, "batchget calls in flight (wxgate followers sync --concurrency)")
	interrupt := flag.Duration("interrupt-after", 0, "kill the first run after this long and report the resumed run")
	flag.Parse()

	dir, err := os.MkdirTemp("", "followersync")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *databaseURL == "" {
		*databaseURL = "sqlite://" + filepath.Join(dir, "wxgate.db")
	}

	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: appSecret, OpenPlatform: "bench",
		Quotas: map[string]int{pathList: 1 << 30, pathBatch: 1 << 30}}}})
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.Handler()}
	go srv.Serve(ln)
	defer srv.Close()

	start := time.Now()
	ctx := context.Background()
	for i := range *n {
		if _, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, OpenID: fmt.Sprintf("oBENCH%022d", i), Follow: true}); err != nil {
			return err
		}
	}
	runtime.GC()
	fmt.Printf("simulator: %d followers created in %s\n", *n, time.Since(start).Round(time.Millisecond))

	cfg := filepath.Join(dir, "wxgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`database_url: %s
log_level: warn
metrics:
  listen: 127.0.0.1:0
accounts:
  - name: main
    app_id: %s
    app_secret: %s
    token: benchtoken
    api_base_urls: [http://%s]
`, *databaseURL, appID, appSecret, ln.Addr())), 0o600); err != nil {
		return err
	}

	args := []string{"followers", "sync", "--config", cfg, "--account", "main", "--concurrency", fmt.Sprint(*concurrency)}
	if *interrupt > 0 {
		r, err := runSync(sim, *wxgate, args, *interrupt)
		if err != nil {
			return err
		}
		r.print("interrupted run (SIGKILL after " + interrupt.String() + ")")
	}
	r, err := runSync(sim, *wxgate, args, 0)
	if err != nil {
		return err
	}
	title := "full sync"
	if *interrupt > 0 {
		title = "resumed run"
	}
	r.print(title)
	fmt.Printf("fewest calls possible for %d followers: user/get %d, batchget %d\n", *n, (*n+9999)/10000, (*n+99)/100)
	return nil
}

type result struct {
	wall         time.Duration
	list, batch  int
	maxRSSKiB    int64
	killed       bool
	userCPU, sys time.Duration
}

func (r result) print(title string) {
	fmt.Printf("%s: wall %s, WeChat calls user/get %d + batchget %d, peak RSS %.1f MiB, CPU user %s sys %s",
		title, r.wall.Round(time.Millisecond), r.list, r.batch, float64(r.maxRSSKiB)/1024, r.userCPU.Round(time.Millisecond), r.sys.Round(time.Millisecond))
	if r.killed {
		fmt.Print(" (killed)")
	}
	fmt.Println()
}

// runSync runs wxgate followers sync once; killAfter > 0 kills it then.
func runSync(sim *wechatsim.Simulator, wxgate string, args []string, killAfter time.Duration) (result, error) {
	list0, batch0 := sim.CallCount(appID, pathList), sim.CallCount(appID, pathBatch)
	cmd := exec.Command(wxgate, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var timer *time.Timer
	if killAfter > 0 {
		timer = time.AfterFunc(killAfter, func() { _ = cmd.Process.Kill() })
	}
	// The child's rusage counts the parent's memory it was forked with
	// (this process holds the simulator), so its peak is read from
	// /proc while it runs.
	var peak atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm := vmHWM(cmd.Process.Pid); hwm > peak.Load() {
				peak.Store(hwm)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	<-watched
	if timer != nil {
		timer.Stop()
	}
	r := result{wall: time.Since(start), list: sim.CallCount(appID, pathList) - list0, batch: sim.CallCount(appID, pathBatch) - batch0,
		maxRSSKiB: peak.Load()}
	r.userCPU, r.sys = cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case killAfter > 0 && errors.As(err, &exit):
		r.killed = true
	default:
		return r, err
	}
	return r, nil
}

// vmHWM is a process's peak resident set in KiB (Linux), 0 when unknown.
func vmHWM(pid int) int64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
