// Command push measures wxgate's push pipeline end to end: the simulator
// (`wxgate sim`) and the gateway (`wxgate serve`) run as separate processes
// of the real binary, and this driver sends through the JSON API as a
// business would.
//
//	push --wxgate ./wxgate [--postgres postgres://…] [--recipients 100000] [--batch 1000] [--concurrency 4]
//	     [--steady-rate 500 --steady-duration 60s --steady-batch 10] [--workers 50] [--json out.json]
//	push --wxgate ./wxgate --sim-only [--recipients 100000] [--concurrency 64]
//
// Gateway mode, in order:
//
//  1. The simulator starts with one official account and one template; the
//     followers are created in bulk (enough for both phases, each gets one
//     message).
//  2. A fresh database (SQLite in a temporary directory, or a database
//     created on the PostgreSQL server given with --postgres and dropped at
//     the end); `wxgate followers sync`, `wxgate templates sync` and
//     `wxgate apikey create` prepare it, as an operator would.
//  3. `wxgate serve` starts with push.rate_per_account 0 (no limit) and
//     api.rate_per_key 0.
//  4. Throughput: the recipients are sent as requests of --batch openids,
//     --concurrency requests at a time, as fast as the API accepts them.
//     Throughput is recipients / (last sent_at − first request).
//  5. Steady: --steady-rate recipients per second for --steady-duration, as
//     requests of --steady-batch openids at a fixed pace. Latency is each
//     recipient's sent_at − queued_at (the accept time stamped by the
//     gateway).
//  6. Verification: every recipient is `sent` in the gateway, and in the
//     simulator every follower has exactly one template card (no loss, no
//     duplicate).
//
// Peak RSS is the gateway's VmHWM; CPU times come from /proc (Linux).
// Sim-only mode measures the simulator alone: template/send straight to its
// API with --concurrency clients, each send with its own client_msg_id.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

const (
	appID      = "wx0000000000bench1"
	appSecret  = "bench-secret-0123456789abcdef0123"
	templateID = "Tm-Bench-Notice-00000000000000000000000001"
	account    = "bench"
)

type options struct {
	wxgate      string
	postgres    string
	dir         string
	recipients  int
	batch       int
	concurrency int

	steadyRate     float64
	steadyDuration time.Duration
	steadyBatch    int

	workers   int
	instances int
	callbacks bool
	simOnly   bool
	jsonOut   string
	label     string
	timeout   time.Duration
}

func main() {
	var o options
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	fs.StringVar(&o.wxgate, "wxgate", "", "path of the wxgate binary (required)")
	fs.StringVar(&o.postgres, "postgres", "", "PostgreSQL server URL; a database is created on it for the run and dropped after (default: SQLite)")
	fs.StringVar(&o.dir, "dir", "", "working directory for logs, configs and SQLite (default: a new temporary directory, removed after)")
	fs.IntVar(&o.recipients, "recipients", 100_000, "throughput phase: recipients in all")
	fs.IntVar(&o.batch, "batch", 1000, "throughput phase: openids per request")
	fs.IntVar(&o.concurrency, "concurrency", 4, "throughput phase: requests in flight (sim-only: clients)")
	fs.Float64Var(&o.steadyRate, "steady-rate", 500, "steady phase: recipients per second (0 skips the phase)")
	fs.DurationVar(&o.steadyDuration, "steady-duration", time.Minute, "steady phase: how long")
	fs.IntVar(&o.steadyBatch, "steady-batch", 10, "steady phase: openids per request")
	fs.IntVar(&o.workers, "workers", 50, "gateway push.workers")
	fs.IntVar(&o.instances, "instances", 1, "gateway instances on the one database (more than one needs --postgres)")
	fs.BoolVar(&o.callbacks, "callbacks", false, "the simulator posts delivery receipts (TEMPLATESENDJOBFINISH) to the gateway")
	fs.BoolVar(&o.simOnly, "sim-only", false, "measure the simulator alone")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.label, "label", "", "name of the run in the report (default: the database)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "bound on the whole run")
	_ = fs.Parse(os.Args[1:])
	if o.wxgate == "" {
		fmt.Fprintln(os.Stderr, "push: --wxgate is required")
		fs.Usage()
		os.Exit(2)
	}
	if o.instances > 1 && o.postgres == "" {
		fmt.Fprintln(os.Stderr, "push: --instances above 1 needs --postgres (SQLite runs one instance per file)")
		os.Exit(2)
	}
	if o.recipients < 1 || o.batch < 1 || o.concurrency < 1 || o.steadyBatch < 1 || o.steadyRate < 0 {
		fmt.Fprintln(os.Stderr, "push: --recipients, --batch, --concurrency and --steady-batch must be positive, --steady-rate not negative")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, o)
	stop()
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		var v verifyError
		if errors.As(err, &v) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

// verifyError is a loss, a duplicate or a failed send: exit status 1.
type verifyError struct{ msg string }

func (e verifyError) Error() string { return e.msg }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

func runBench(ctx context.Context, o options) (err error) {
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "wxgate-pushbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.dir = dir
	}
	if o.wxgate, err = filepath.Abs(o.wxgate); err != nil {
		return err
	}
	logf("%s; %d CPUs; working in %s", runtime.Version(), runtime.NumCPU(), o.dir)

	sim, simURL, err := startSim(o)
	if err != nil {
		return err
	}
	defer func() {
		if serr := sim.stop(10 * time.Second); serr != nil && err == nil {
			err = fmt.Errorf("simulator: %w", serr)
		}
	}()
	simc := &simClient{base: simURL, http: newHTTPClient(256)}

	if o.simOnly {
		rep, err := simOnly(ctx, o, simc, sim)
		if err != nil {
			return err
		}
		return writeReport(o, rep)
	}
	rep, err := gatewayBench(ctx, o, sim, simc)
	if rep != nil {
		if werr := writeReport(o, rep); err == nil {
			err = werr
		}
	}
	return err
}

func startSim(o options) (*proc, string, error) {
	apps := fmt.Sprintf(`apps:
  - app_id: %s
    app_secret: %s
    name: Bench
    original_id: gh_bench0000001
    token: benchtoken
    quotas:
      /cgi-bin/message/template/send: 100000000
      /cgi-bin/user/get: 100000
    templates:
      - id: %s
        title: 通知
        content: "事项：{{thing1.DATA}}\n时间：{{time2.DATA}}"
`, appID, appSecret, templateID)
	appsFile := filepath.Join(o.dir, "sim-apps.yaml")
	if err := os.WriteFile(appsFile, []byte(apps), 0o600); err != nil {
		return nil, "", err
	}
	sim, err := start("simulator", o.wxgate, filepath.Join(o.dir, "sim.log"),
		"sim", "--listen", "127.0.0.1:0", "--apps", appsFile, "--log-level", "warn")
	if err != nil {
		return nil, "", err
	}
	url, err := sim.waitLine("API base URL (SDK base URL):", 30*time.Second)
	if err != nil {
		sim.kill()
		return nil, "", err
	}
	logf("simulator at %s (pid %d)", url, sim.pid())
	return sim, url, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeReport(o options, rep *report) error {
	rep.print(os.Stdout)
	if o.jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(o.jsonOut, append(b, '\n'), 0o644)
}
