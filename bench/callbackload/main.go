// Command callbackload replays distinct safe-mode text messages against a
// WeChat callback URL over keep-alive connections, as WeChat's servers post
// them, verifies every answer as WeChat would (HTTP 200, MsgSignature,
// decryption with the AppID, a text reply addressed to the sender) and
// reports requests/s and latency percentiles per concurrency level.
//
//	callbackload --url http://127.0.0.1:8080/wx/main --token T --aes-key K \
//	    --app-id wx… --original-id gh_… -n 30000 -c 1,16,64 --json out.json
//	callbackload --sustained --duration 60s --distinct-senders -c 16 … # build, send, verify continuously
//	callbackload compare [--concurrency 64 --min-ratio 0.6 --max-p99 20ms] ceiling.json wxgate.json
//	callbackload compare ceiling-1.json wxgate-1.json ceiling-2.json wxgate-2.json …   # rounds: medians and spread
//
// All pushes of a level are signed and encrypted before its timed part
// starts, each with a new MsgId and the current timestamp; answers are
// verified after it, so the client's clock measures the server. Any failed
// answer makes the exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/bench/internal/loadgen"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "compare" {
		os.Exit(compare(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("callbackload", flag.ContinueOnError)
	var (
		target   = fs.String("url", "", "callback URL, e.g. http://127.0.0.1:8080/wx/main (required)")
		token    = fs.String("token", "", "the account's Token (required)")
		aesKey   = fs.String("aes-key", "", "the account's EncodingAESKey, 43 characters (required)")
		appID    = fs.String("app-id", "", "the account's AppID (required)")
		original = fs.String("original-id", "gh_bench0000001", "the account's original id (ToUserName of the pushes)")
		total    = fs.Int("n", 30000, "distinct messages in all, shared equally by the levels")
		levels   = fs.String("c", "1,16,64", "concurrency levels, comma-separated")
		duration = fs.Duration("duration", 0, "per level: stop after this long (0: send all of the level's messages)")
		warmup   = fs.Int("warmup", 200, "per level: untimed, verified messages sent first")
		jsonOut  = fs.String("json", "", "also write the results as JSON to this file")
		label    = fs.String("label", "", "name of the server in the report (default: the URL's host)")
		pid      = fs.Int("server-pid", 0, "the server's process id, to report its CPU time per request (Linux)")
		sustain  = fs.Bool("sustained", false, "build, send and verify pushes continuously for --duration per level (a load generator on a core of its own); -n is ignored")
		distinct = fs.Bool("distinct-senders", false, "every push from a follower of its own (default: rotate over 1000)")
		cpuProf  = fs.String("cpuprofile", "", "write a CPU profile of the load generator to this file")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: callbackload --url URL --token T --aes-key K --app-id ID [flags]\n       callbackload compare [flags] BASE.json CANDIDATE.json [BASE2.json CANDIDATE2.json …]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	concs, err := parseLevels(*levels)
	if err != nil {
		return usage(fs, err)
	}
	switch {
	case *target == "" || *token == "" || *aesKey == "" || *appID == "":
		return usage(fs, errors.New("--url, --token, --aes-key and --app-id are required"))
	case *sustain && *duration <= 0:
		return usage(fs, errors.New("--sustained needs --duration, e.g. 60s"))
	case !*sustain && *total < len(concs):
		return usage(fs, fmt.Errorf("-n %d is fewer than one message per level", *total))
	case *warmup < 0:
		return usage(fs, errors.New("--warmup must not be negative"))
	}
	if *label == "" {
		if u, err := url.Parse(*target); err == nil {
			*label = u.Host
		}
	}

	acct := loadgen.Account{Token: *token, AESKey: *aesKey, AppID: *appID, OriginalID: *original}
	builder, err := loadgen.NewBuilder(*target, acct)
	if err != nil {
		return usage(fs, err)
	}
	builder.DistinctSenders = *distinct
	verifier, err := loadgen.NewVerifier(acct)
	if err != nil {
		return usage(fs, err)
	}
	maxC := 0
	for _, c := range concs {
		maxC = max(maxC, c)
	}
	runner := &loadgen.Runner{Client: loadgen.NewClient(maxC), Builder: builder, Verifier: verifier, Log: os.Stderr, ServerPID: *pid}

	if *cpuProf != "" {
		stopProfile, err := startCPUProfile(*cpuProf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "callbackload: %v\n", err)
			return 2
		}
		defer stopProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report := &loadgen.Report{Label: *label, URL: *target, Started: time.Now().UTC().Truncate(time.Second),
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	perLevel := *total / len(concs)
	for _, c := range concs {
		res, err := runner.RunLevel(ctx, loadgen.Level{Concurrency: c, Requests: perLevel, Duration: *duration, Warmup: *warmup, Stream: *sustain})
		report.Levels = append(report.Levels, res)
		if err != nil {
			fmt.Fprintf(os.Stderr, "callbackload: concurrency %d: %v\n", c, err)
			break
		}
		fmt.Fprintf(os.Stderr, "concurrency %d: %d requests, %.0f req/s, p99 %.2f ms, %d failures\n",
			c, res.Requests, res.RPS, res.P99, res.Failures+res.WarmupFailures)
	}
	report.WriteTable(os.Stdout)
	if *jsonOut != "" {
		if err := report.WriteFile(*jsonOut); err != nil {
			fmt.Fprintf(os.Stderr, "callbackload: %v\n", err)
			return 2
		}
	}
	if n := report.Failures(); n > 0 {
		fmt.Fprintf(os.Stderr, "callbackload: %d answers failed verification\n", n)
		return 1
	}
	if ctx.Err() != nil || len(report.Levels) < len(concs) {
		return 2
	}
	return 0
}

// startCPUProfile profiles the whole run into path; the returned function
// ends the profile.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "callbackload: cpu profile %s: %v\n", path, err)
		}
	}, nil
}

func compare(args []string) int {
	fs := flag.NewFlagSet("callbackload compare", flag.ContinueOnError)
	conc := fs.Int("concurrency", 64, "the level the target applies to")
	minRatio := fs.Float64("min-ratio", 0.6, "target: candidate throughput ≥ this fraction of the baseline's")
	maxP99 := fs.Duration("max-p99", 20*time.Millisecond, "target: candidate p99 below this")
	strict := fs.Bool("strict", false, "exit 3 when the target is not met")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: callbackload compare [flags] BASE.json CANDIDATE.json [BASE2.json CANDIDATE2.json …]\n\n"+
			"With several pairs (rounds), each is one run of both servers; the target is checked\non the medians over the rounds.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() < 2 || fs.NArg()%2 != 0 {
		return usage(fs, errors.New("compare takes pairs of JSON reports: baseline, then candidate"))
	}
	var rounds []loadgen.Round
	for i := 0; i < fs.NArg(); i += 2 {
		base, err := loadgen.ReadReport(fs.Arg(i))
		if err != nil {
			return usage(fs, err)
		}
		cand, err := loadgen.ReadReport(fs.Arg(i + 1))
		if err != nil {
			return usage(fs, err)
		}
		rounds = append(rounds, loadgen.Round{Base: base, Cand: cand})
	}
	target := loadgen.Target{Concurrency: *conc, MinRatio: *minRatio, MaxP99: *maxP99}
	var ok bool
	if len(rounds) == 1 {
		ok = loadgen.Compare(os.Stdout, rounds[0].Base, rounds[0].Cand, target)
	} else {
		ok = loadgen.CompareRounds(os.Stdout, rounds, target)
	}
	if !ok && *strict {
		return 3
	}
	return 0
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("-c %q: concurrency levels are positive integers, e.g. 1,16,64", s)
		}
		out = append(out, c)
	}
	return out, nil
}

func usage(fs *flag.FlagSet, err error) int {
	fmt.Fprintf(os.Stderr, "callbackload: %v\n", err)
	fs.Usage()
	return 2
}
