// Command callbackprof runs the gateway as `wxgate serve` runs it — the
// server package with one safe-mode account on SQLite, log level warn, the
// same garbage collector target — with Go's profilers attached, for the
// callback benchmark's "where does the time go" question. Drive it with
// callbackload; on SIGINT or SIGTERM it stops gracefully and writes the
// profiles.
//
//	callbackprof --listen 127.0.0.1:0 --token T --aes-key K --app-id wx… \
//	    --data DIR --cpuprofile cpu.pprof [--mutexprofile mutex.pprof --blockprofile block.pprof]
//	    [--trace run.trace --trace-after 10s --trace-for 2s]
//	go tool pprof -top cpu.pprof
//	go tool trace run.trace
//
// It prints "callbackprof listening on http://ADDR"; the account is "bench",
// at /wx/bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/server/servertest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	token := flag.String("token", "", "the account's Token (required)")
	aesKey := flag.String("aes-key", "", "the account's EncodingAESKey (required)")
	appID := flag.String("app-id", "", "the account's AppID (required)")
	original := flag.String("original-id", "gh_bench0000001", "the account's original id")
	data := flag.String("data", "", "directory for the SQLite database (required; use a fresh one)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole serving time here")
	mutexProfile := flag.String("mutexprofile", "", "write a mutex contention profile here")
	blockProfile := flag.String("blockprofile", "", "write a blocking profile here")
	tracePath := flag.String("trace", "", "write an execution trace (runtime/trace) of a window of the load here")
	traceAfter := flag.Duration("trace-after", 10*time.Second, "start the trace this long after listening (past the warm-up)")
	traceFor := flag.Duration("trace-for", 2*time.Second, "length of the traced window (a trace grows by megabytes a second)")
	flag.Parse()
	if *token == "" || *aesKey == "" || *appID == "" || *data == "" {
		log.Fatal("callbackprof: --token, --aes-key, --app-id and --data are required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := config.Default()
	cfg.Listen = *listen
	cfg.DatabaseURL = "sqlite://" + filepath.Join(*data, "wxgate.db")
	cfg.LogLevel = "warn"
	cfg.Accounts = []config.Account{{
		Name: "bench", Kind: config.KindOfficialAccount, AppID: *appID, Token: *token,
		EncodingAESKey: *aesKey, MessageMode: config.ModeSafe, OriginalID: *original,
		APIBaseURLs: config.DefaultAPIBaseURLs(),
	}}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		log.Fatal(err)
	}
	defer database.Close()
	if err := database.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	// The callback side of the gateway, as `wxgate serve` builds it,
	// without the queue and the API.
	srv, err := servertest.New(servertest.Options{Config: cfg, DB: database, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Fatal(err)
	}

	// The garbage collector's target of `wxgate serve` (400 unless GOGC is
	// set), so the profile shows the collector's share as it runs there.
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
	if *mutexProfile != "" {
		runtime.SetMutexProfileFraction(5)
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer f.Close()
	}
	if *tracePath != "" {
		go traceWindow(ctx, *tracePath, *traceAfter, *traceFor)
	}
	fmt.Printf("callbackprof listening on http://%s\n", ln.Addr())
	serveErr := srv.Serve(ctx, ln)
	pprof.StopCPUProfile()
	writeProfile("mutex", *mutexProfile)
	writeProfile("block", *blockProfile)
	if serveErr != nil {
		log.Fatal(serveErr)
	}
}

// traceWindow records an execution trace of [after, after+length) from
// now: scheduling, garbage collection and system calls of every goroutine,
// for the pauses a CPU profile does not show (the tail of the latency).
func traceWindow(ctx context.Context, path string, after, length time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(after):
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		log.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(length):
	}
	trace.Stop()
}

func writeProfile(name, path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		log.Fatal(err)
	}
}
