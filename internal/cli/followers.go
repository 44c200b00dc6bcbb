package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/follower"
)

const followersUsage = `sync --account NAME [--concurrency 4] [--restart] [--take-over]
       wxgate followers status --account NAME
       wxgate followers list [--account NAME] [--subscribed true|false] [--bound true|false] [--tag ID] [--text T] [--limit 50] [--cursor C] [--json]
       wxgate followers show OPENID [--account NAME] [--json]`

func runFollowers(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate followers %s", followersUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "followers "+sub, followersUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称)")
	concurrency := fs.Int("concurrency", follower.DefaultSyncConcurrency, "sync: user/info/batchget calls in flight (并发数)")
	restart := fs.Bool("restart", false, "sync: start over instead of resuming an unfinished sync (重新开始)")
	takeOver := fs.Bool("take-over", false, "sync: take over a sync another process holds (it crashed; its lease has not expired yet) (接管同步)")
	subscribed := fs.String("subscribed", "", "list: true or false")
	bound := fs.String("bound", "", "list: true or false (是否已绑定)")
	tag := fs.Int64("tag", 0, "list: WeChat tag id (标签 ID)")
	text := fs.String("text", "", "list: part of the openid, unionid, remark or a bound external id")
	limit := fs.Int("limit", 50, "list: followers per page (at most 500)")
	cursor := fs.String("cursor", "", "list: the next_cursor of the previous page")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load(env)
	if err != nil {
		return err
	}
	if *account != "" {
		a, ok := cfg.Account(*account)
		if !ok {
			return fmt.Errorf("no account named %q in the configuration (配置中没有名为 %q 的账号)", *account, *account)
		}
		if a.Kind == config.KindMiniProgram {
			return usageErrorf("account %q is a mini program, which has no followers (小程序没有粉丝)", *account)
		}
	}
	database, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close()
	store := follower.NewStore(database, time.Now)

	switch sub {
	case "sync":
		if *account == "" {
			return usageErrorf("--account is required (请用 --account 指定账号)")
		}
		return followersSync(ctx, env, cfg, database, *account, follower.SyncOptions{Concurrency: *concurrency, Restart: *restart, TakeOver: *takeOver})
	case "status":
		if *account == "" {
			return usageErrorf("--account is required (请用 --account 指定账号)")
		}
		st, err := follower.NewSyncer(database, time.Now, nil).Status(ctx, *account)
		if err != nil {
			if err == follower.ErrNotFound {
				fmt.Fprintf(env.Stdout, "account %s was never synced (尚未同步)\n", *account)
				return nil
			}
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(st)
		}
		printSyncStatus(env.Stdout, st)
		return nil
	case "list":
		f := follower.FollowerFilter{Account: *account, Text: *text, Cursor: *cursor, Limit: *limit}
		if f.Subscribed, err = parseOptionalBool(*subscribed, "--subscribed"); err != nil {
			return err
		}
		if f.Bound, err = parseOptionalBool(*bound, "--bound"); err != nil {
			return err
		}
		if *tag != 0 {
			f.TagID = tag
		}
		list, next, err := store.Search(ctx, f)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"followers": list, "next_cursor": next})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tOPENID\tUNIONID\tSUBSCRIBED\tSINCE\tSCENE\tTAGS")
		for _, fl := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%v\n", fl.Account, fl.OpenID, orDash(fl.UnionID), fl.Subscribed,
				formatTimePtr(fl.SubscribedAt), orDash(fl.SubscribeScene), fl.TagIDs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(env.Stderr, "more: --cursor %s\n", next)
		}
		return nil
	case "show":
		if fs.NArg() != 1 {
			return usageErrorf("wxgate followers show OPENID [--account NAME]")
		}
		name, err := onlyOfficialAccount(cfg, *account)
		if err != nil {
			return err
		}
		openid := fs.Arg(0)
		f, err := store.Get(ctx, name, openid)
		if err != nil {
			if err == follower.ErrNotFound {
				return fmt.Errorf("account %s has no follower %s (没有该粉丝)", name, openid)
			}
			return err
		}
		var person *follower.Person
		if f.UnionID != "" {
			p, err := store.Person(ctx, f.UnionID)
			if err != nil {
				return err
			}
			person = &p
		}
		bindings, err := store.ListBindings(ctx, follower.BindingFilter{OpenID: openid})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"follower": f, "person": person, "bindings": bindings})
		}
		w := env.Stdout
		fmt.Fprintf(w, "account:     %s\nopenid:      %s\nunionid:     %s\nsubscribed:  %v (since %s, unsubscribed %s)\nscene:       %s %s\n",
			f.Account, f.OpenID, orDash(f.UnionID), f.Subscribed, formatTimePtr(f.SubscribedAt), formatTimePtr(f.UnsubscribedAt),
			orDash(f.SubscribeScene), f.QRSceneStr)
		fmt.Fprintf(w, "language:    %s\nremark:      %s\ntags:        %v\nprofile:     %s\n", orDash(f.Language), orDash(f.Remark), f.TagIDs,
			formatTimePtr(f.ProfileFetchedAt))
		if person == nil {
			fmt.Fprintln(w, "person:      not linked (no unionid 未关联)")
		} else {
			for _, id := range person.Identities {
				fmt.Fprintf(w, "person:      %s %s %s\n", id.Kind, id.Account, id.OpenID)
			}
		}
		for _, b := range bindings {
			fmt.Fprintf(w, "binding:     %d %s (%s on %s, %s)\n", b.ID, b.ExternalID, b.Source, b.Account, b.CreatedAt.Local().Format(time.DateTime))
		}
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate followers %s", sub, followersUsage)
}

// followersSync runs a full sync with progress on stderr: a bar with rate
// and ETA on a terminal, a line every few seconds otherwise.
func followersSync(ctx context.Context, env Env, cfg config.Config, database *db.DB, account string, opts follower.SyncOptions) error {
	a, _ := cfg.Account(account)
	if a.AppSecret == "" {
		return fmt.Errorf("account %q has no app_secret, so its followers cannot be fetched (账号 %q 未配置 AppSecret)", account, account)
	}
	tokens, err := newTokenRegistry(cfg, database, discardLogger(), time.Now, nil)
	if err != nil {
		return err
	}
	client, ok := tokens.Client(account)
	if !ok {
		return fmt.Errorf("account %q has no API client", account)
	}
	progress := newSyncProgress(env.Stderr)
	opts.Progress = progress.update
	st, err := follower.NewSyncer(database, time.Now, discardLogger()).Run(ctx, account, client, opts)
	progress.done()
	if err != nil {
		var running *follower.SyncRunningError
		if errors.As(err, &running) && !opts.TakeOver {
			fmt.Fprintf(env.Stderr, "if that process crashed, its lease expires at %s and the same command resumes the sync then; "+
				"--take-over takes it over now (若该进程已崩溃，可加 --take-over 立即接管)\n", running.Until.Local().Format(time.DateTime))
		}
		if st.Run > 0 {
			fmt.Fprintf(env.Stderr, "sync stopped at %d/%d followers; run the same command again to resume (再次运行即可继续)\n", st.Profiled, st.Total)
		}
		return err
	}
	printSyncStatus(env.Stdout, st)
	return nil
}

func printSyncStatus(w io.Writer, st follower.SyncStatus) {
	took := "-"
	if st.FinishedAt != nil {
		took = st.FinishedAt.Sub(st.StartedAt).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "account %s, sync %d: %s (resumed %d times)\n", st.Account, st.Run, st.Status, st.Resumes)
	fmt.Fprintf(w, "  followers listed %d of %d in %d pages, profiles saved %d, marked unsubscribed %d\n",
		st.Listed, st.Total, st.Pages, st.Profiled, st.Unsubscribed)
	fmt.Fprintf(w, "  WeChat calls: user/get %d, user/info/batchget %d; started %s, took %s\n",
		st.ListCalls, st.BatchCalls, st.StartedAt.Local().Format(time.DateTime), took)
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", st.LastError)
	}
}

// syncProgress shows a sync's progress.
type syncProgress struct {
	w   io.Writer
	tty bool

	mu       sync.Mutex
	bar      *progressbar.ProgressBar
	base     int64 // profiles saved before this process started
	started  bool
	start    time.Time
	lastLine time.Time
}

func newSyncProgress(w io.Writer) *syncProgress {
	p := &syncProgress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *syncProgress) update(st follower.SyncStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		// The first report is where the run starts from.
		p.started, p.start, p.base = true, time.Now(), st.Profiled
		if st.Resumed {
			fmt.Fprintf(p.w, "resuming sync %d of %s at %d followers (继续上次同步)\n", st.Run, st.Account, p.base)
		}
	}
	if p.tty && p.bar == nil && st.Total > 0 {
		p.bar = progressbar.NewOptions64(max(st.Total-p.base, 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("followers "+st.Account),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("followers"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
		)
	}
	done := st.Profiled - p.base
	if p.bar != nil {
		if total := st.Total - p.base; total > 0 {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		return
	}
	if st.Total == 0 || (time.Since(p.lastLine) < 2*time.Second && st.Status != follower.SyncCompleted) {
		return
	}
	p.lastLine = time.Now()
	rate := float64(done) / max(time.Since(p.start).Seconds(), 0.001)
	eta := "-"
	if left := st.Total - st.Profiled; rate > 0 && left > 0 {
		eta = time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 0.0
	if st.Total > 0 {
		pct = 100 * float64(st.Profiled) / float64(st.Total)
	}
	page := st.Pages + 1
	if st.Status == follower.SyncCompleted {
		page = st.Pages
	}
	fmt.Fprintf(p.w, "sync %s: %d/%d followers (%.1f%%), page %d, %.0f/s, ETA %s\n", st.Account, st.Profiled, st.Total, pct, page, rate, eta)
}

func (p *syncProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}

func parseOptionalBool(v, name string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, usageErrorf("%s must be true or false (须为 true 或 false)", name)
	}
	return &b, nil
}

// onlyOfficialAccount is name, or the one official account configured.
func onlyOfficialAccount(cfg config.Config, name string) (string, error) {
	if name != "" {
		return name, nil
	}
	var found []string
	for _, a := range cfg.Accounts {
		if a.Kind != config.KindMiniProgram {
			found = append(found, a.Name)
		}
	}
	if len(found) != 1 {
		return "", usageErrorf("--account is required: official accounts are %s (请用 --account 指定账号)", strings.Join(found, ", "))
	}
	return found[0], nil
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
