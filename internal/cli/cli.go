// Package cli implements the wxgate command line: one file per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Env is what a command may touch of the outside world; tests pass buffers.
type Env struct {
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Environ []string
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

// commands is filled by the init functions of the files of this package, one
// per subcommand, so adding a command touches only its own file.
var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error whose message already says what to type; Run prints
// it without a stack of wrapping.
var errUsage = errors.New("usage")

// Run executes the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(env.Stdout)
		return 0
	}
	name := args[0]
	// "config check" and "followers sync" are two words; the command decides.
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "wxgate: unknown command %q (未知命令). Run 'wxgate help'.\n", name)
		return 2
	}
	if err := c.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.Stderr, "wxgate %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "wxgate — a self-hosted gateway for WeChat Official Accounts and Mini Programs")
	fmt.Fprintln(w, "wxgate — 微信公众号 / 小程序 自托管网关")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: wxgate <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'wxgate <command> -h' for the flags of a command.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(env Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("wxgate "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: wxgate %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// lookupEnv reads one variable from env.Environ.
func lookupEnv(env Env, key string) string {
	prefix := key + "="
	for _, kv := range env.Environ {
		if strings.HasPrefix(kv, prefix) {
			return kv[len(prefix):]
		}
	}
	return ""
}
