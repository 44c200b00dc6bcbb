package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/schedule"
)

const schedulesUsage = `list [--account NAME] [--json]
       wxgate schedules get ID
       wxgate schedules create --file schedule.json      (the body of POST /api/v1/schedules; - reads stdin)
       wxgate schedules update ID --file schedule.json   (replaces the whole schedule)
       wxgate schedules delete ID
       wxgate schedules pause ID | resume ID
       wxgate schedules run ID                           (queued now; the running gateway sends it)
       wxgate schedules next ID [--n 5]
       wxgate schedules runs ID [--run RUN_ID] [--limit 20] [--json]
       wxgate schedules attr --account NAME --openid OPENID [city=北京 location=101010100 …] [--unset NAME] [--replace]`

// runSchedules manages schedules in the gateway's database; it is
// /api/v1/schedules without HTTP.
func runSchedules(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate schedules %s", schedulesUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "schedules "+sub, schedulesUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称)")
	file := fs.String("file", "", "create/update: the schedule as JSON, - for stdin")
	n := fs.Int("n", 5, "next: how many due times")
	runID := fs.Int64("run", 0, "runs: show this run with its recipients")
	limit := fs.Int("limit", 20, "runs: at most this many")
	openid := fs.String("openid", "", "attr: the follower")
	var unset multiFlag
	fs.Var(&unset, "unset", "attr: remove this attribute, repeatable")
	replace := fs.Bool("replace", false, "attr: replace all attributes instead of merging")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, database, err := cf.open(ctx, env, true)
	if err != nil {
		return err
	}
	defer database.Close()
	// Insert-only: the gateway's workers run the jobs.
	jobs, err := queue.New(ctx, database, queue.Options{Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer jobs.Stop(context.WithoutCancel(ctx))
	svc := schedule.New(schedule.Options{DB: database, Accounts: cfg.Accounts, Jobs: jobs, Logger: discardLogger()})

	id := func() (int64, error) {
		if len(positional) != 1 {
			return 0, usageErrorf("wxgate schedules %s ID", sub)
		}
		v, err := strconv.ParseInt(positional[0], 10, 64)
		if err != nil || v <= 0 {
			return 0, usageErrorf("schedule id must be a number, got %q (定时任务 ID 必须是数字)", positional[0])
		}
		return v, nil
	}
	printJSON := func(v any) error {
		enc := json.NewEncoder(env.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}

	switch sub {
	case "list":
		list, err := svc.List(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tACCOUNT\tCRON\tTIMEZONE\tSTATE\tNEXT RUN")
		for _, sc := range list {
			state, next := "enabled", "-"
			if !sc.Enabled {
				state = "paused"
			}
			if sc.NextRunAt != nil {
				next = sc.NextRunAt.Format("2006-01-02 15:04 MST")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", sc.ID, sc.Name, sc.Account, sc.Cron, sc.TimeZone, state, next)
		}
		return tw.Flush()
	case "get":
		v, err := id()
		if err != nil {
			return err
		}
		sc, err := svc.Get(ctx, v)
		if err != nil {
			return err
		}
		return printJSON(sc)
	case "create", "update":
		var in schedule.Input
		if err := readScheduleFile(env, *file, &in); err != nil {
			return err
		}
		var sc schedule.Schedule
		if sub == "create" {
			if len(positional) != 0 {
				return usageErrorf("wxgate schedules create --file FILE")
			}
			sc, err = svc.Create(ctx, in)
		} else {
			var v int64
			if v, err = id(); err != nil {
				return err
			}
			sc, err = svc.Update(ctx, v, in)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(sc)
		}
		fmt.Fprintf(env.Stdout, "schedule %d %q saved (已保存); next run (下次运行): %s\n", sc.ID, sc.Name, nextRun(sc))
		return nil
	case "delete":
		v, err := id()
		if err != nil {
			return err
		}
		if err := svc.Delete(ctx, v); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "schedule %d deleted with its run history (已删除)\n", v)
		return nil
	case "pause", "resume":
		v, err := id()
		if err != nil {
			return err
		}
		sc, err := svc.SetEnabled(ctx, v, sub == "resume")
		if err != nil {
			return err
		}
		if sub == "pause" {
			fmt.Fprintf(env.Stdout, "schedule %d %q paused (已暂停)\n", sc.ID, sc.Name)
		} else {
			fmt.Fprintf(env.Stdout, "schedule %d %q resumed (已恢复); next run (下次运行): %s\n", sc.ID, sc.Name, nextRun(sc))
		}
		return nil
	case "run":
		v, err := id()
		if err != nil {
			return err
		}
		run, err := svc.RunNow(ctx, v)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(run)
		}
		fmt.Fprintf(env.Stdout, "run %d of schedule %d queued (已排队); the running gateway sends it. Follow it: wxgate schedules runs %d --run %d\n",
			run.ID, v, v, run.ID)
		return nil
	case "next":
		v, err := id()
		if err != nil {
			return err
		}
		times, err := svc.NextTimes(ctx, v, *n)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(times)
		}
		for _, t := range times {
			fmt.Fprintln(env.Stdout, t.Format("2006-01-02 15:04 Mon MST (-07:00)"))
		}
		return nil
	case "runs":
		v, err := id()
		if err != nil {
			return err
		}
		if *runID != 0 {
			d, err := svc.GetRunPage(ctx, v, *runID, 0, 0)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(d)
			}
			printRuns(env, []schedule.Run{d.Run})
			fmt.Fprintln(env.Stdout)
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TO\tSTATUS\tDETAIL")
			for _, r := range d.Recipients {
				who := r.OpenID
				if r.ExternalID != "" {
					who = "external:" + r.ExternalID + " " + r.OpenID
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.TrimSpace(who), r.Status, r.Reason)
			}
			return tw.Flush()
		}
		runs, err := svc.Runs(ctx, v, schedule.RunFilter{Limit: *limit})
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(runs)
		}
		printRuns(env, runs)
		return nil
	case "attr":
		if *openid == "" {
			return usageErrorf("--openid is required (请用 --openid 指定粉丝)")
		}
		set := map[string]*string{}
		for _, kv := range positional {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageErrorf("%q: use NAME=VALUE, e.g. city=北京 (格式为 NAME=VALUE)", kv)
			}
			set[k] = &v
		}
		for _, k := range unset {
			set[k] = nil
		}
		var attrs map[string]string
		if len(set) == 0 && !*replace {
			attrs, err = svc.Attributes(ctx, *account, *openid)
		} else {
			attrs, err = svc.SetAttributes(ctx, *account, *openid, set, !*replace)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(attrs)
		}
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(env.Stdout, "%s=%s\n", k, attrs[k])
		}
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate schedules %s", sub, schedulesUsage)
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments ("runs 3 --run 7") and returns the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func readScheduleFile(env Env, path string, into *schedule.Input) error {
	if path == "" {
		return usageErrorf("--file is required: the schedule as JSON, as POST /api/v1/schedules takes it (请用 --file 指定 JSON 文件)")
	}
	var data []byte
	var err error
	if path == "-" {
		stdin := env.Stdin
		if stdin == nil {
			stdin = os.Stdin
		}
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s is not a schedule in JSON: %w (JSON 格式错误)", path, err)
	}
	return nil
}

func nextRun(sc schedule.Schedule) string {
	if sc.NextRunAt == nil {
		return "- (paused 已暂停)"
	}
	return sc.NextRunAt.Format("2006-01-02 15:04 MST")
}

func printRuns(env Env, runs []schedule.Run) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tKIND\tDUE\tSTATUS\tRECIPIENTS\tSENT\tDELIVERED\tSKIPPED\tFAILED\tPENDING\tREASON")
	for _, r := range runs {
		c := r.Counts
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Kind, r.DueAt.Format(time.DateTime+" MST"), r.Status,
			c.Recipients, c.Sent, c.Delivered, c.Skipped, c.Failed, c.Pending, orDash(r.Reason))
	}
	tw.Flush()
}
