// Package cli implements the wxgate command line: one file per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

// commandTable lists every subcommand, in the order `wxgate help` shows
// them; each one's code is in its own file.
func commandTable() []command {
	return []command{
		{name: "serve", summary: "run the gateway (运行网关)", run: runServe},
		{name: "demo", summary: "gateway + WeChat simulator + SQLite, no account needed (一键体验)", run: runDemo},
		{name: "sim", summary: "run the WeChat simulator on its own (微信模拟器)", run: runSim},
		{name: "migrate", summary: "apply database migrations; --status lists them (数据库迁移)", run: runMigrate},
		{name: "migrate-data", summary: "copy every row and pending job from SQLite to an empty PostgreSQL (迁移到 PostgreSQL)", run: runMigrateData},
		{name: "backup", summary: "online copy of the SQLite database to a file (在线备份 SQLite)", run: runBackup},
		{name: "send", summary: "send a template, subscription or customer-service message (发送消息)", run: runSend},
		{name: "followers", summary: "sync | status | list | show followers (粉丝同步与查询)", run: runFollowers},
		{name: "menu", summary: "apply | show | diff | delete: the custom menu from a YAML file (自定义菜单)", run: runMenu},
		{name: "tags", summary: "list | create | rename | delete | add | remove: user tags of an account (用户标签)", run: runTags},
		{name: "media", summary: "upload | list | delete | fetch: images, voices and videos at WeChat (素材)", run: runMedia},
		{name: "mass", summary: "send | preview | list | show | quota | delete: mass sends to a tag or to all (群发)", run: runMass},
		{name: "bindings", summary: "list | delete | qrcode: external ids bound to followers (绑定)", run: runBindings},
		{name: "templates", summary: "sync | list templates, set | delete aliases (模板与别名)", run: runTemplates},
		{name: "schedules", summary: "list | create | pause | resume | run | next | runs: scheduled pushes (定时推送)", run: runSchedules},
		{name: "replies", summary: "list | add | delete | enable | disable auto-reply rules (自动回复)", run: runReplies},
		{name: "webhooks", summary: "add | list | delete | deliveries: event endpoints (Webhook)", run: runWebhooks},
		{name: "apikey", summary: "create | list | revoke API keys (API 密钥)", run: runAPIKey},
		{name: "admin", summary: "create | passwd | list | delete admin console users (管理员)", run: runAdmin},
		{name: "token", summary: "print an account's access_token from the broker (获取 access_token)", run: runToken},
		{name: "config", summary: "config check: validate and print the config, secrets masked (检查配置)", run: runConfig},
		{name: "version", summary: "print the version (版本)", run: runVersion},
	}
}

// lookupCommand finds a subcommand by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commandTable() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

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
	c, ok := lookupCommand(name)
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
	for _, c := range commandTable() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
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
