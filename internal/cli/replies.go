package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/reply"
)

const repliesUsage = `list    --account NAME [--json]
       wxgate replies add     --account NAME --match keyword|msg_type|subscribe|click|default
                              [--mode exact|contains|regex --pattern P] [--msg-type T] [--event-key K]
                              [--position N] (--text "…" | --none)
       wxgate replies delete  ID
       wxgate replies enable  ID
       wxgate replies disable ID
A running gateway picks up changes within a few seconds. Rules from the config file are
replaced at every start; rules added here are kept.`

func runReplies(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate replies %s", repliesUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "replies "+sub, repliesUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称)")
	asJSON := fs.Bool("json", false, "print JSON")
	match := fs.String("match", "", "keyword, msg_type, subscribe, click or default")
	mode := fs.String("mode", "", "for keyword rules: exact (default), contains or regex")
	pattern := fs.String("pattern", "", "for keyword rules: the keyword or regular expression")
	msgType := fs.String("msg-type", "", "for msg_type rules: text, image, voice, video, shortvideo, location or link")
	eventKey := fs.String("event-key", "", "for click rules: the menu button key")
	position := fs.Int("position", -1, "order among the account's rules (default: last)")
	text := fs.String("text", "", "reply with this text")
	none := fs.Bool("none", false, "answer \"success\" (no reply)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	_, database, err := cf.open(ctx, env, false)
	if err != nil {
		return err
	}
	defer database.Close()
	store := reply.NewStore(database, time.Now)

	switch sub {
	case "list":
		if *account == "" {
			return usageErrorf("--account is required (请用 --account 指定账号)")
		}
		rules, err := store.List(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			return enc.Encode(rules)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOS\tMATCH\tCONDITION\tREPLY\tENABLED\tSOURCE")
		for _, r := range rules {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%v\t%s\n", r.ID, r.Position, r.Match, ruleCondition(r), replySummary(r.Reply), r.Enabled, r.Source)
		}
		return tw.Flush()
	case "add":
		if *account == "" || *match == "" {
			return usageErrorf("--account and --match are required (需要 --account 和 --match)")
		}
		if (*text == "") == !*none {
			return usageErrorf("give exactly one of --text or --none (请指定 --text 或 --none 之一)")
		}
		content := config.ReplyContent{Type: "text", Content: *text}
		if *none {
			content = config.ReplyContent{Type: "none"}
		}
		r := reply.Rule{Account: *account, Position: *position, Match: *match, Mode: *mode, Pattern: *pattern,
			MsgType: *msgType, EventKey: *eventKey, Reply: content, Enabled: true, Source: reply.SourceCLI}
		if r.Position < 0 {
			existing, err := store.List(ctx, *account)
			if err != nil {
				return err
			}
			r.Position = len(existing)
		}
		added, err := store.Add(ctx, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "added rule %d (已添加规则 %d)\n", added.ID, added.ID)
		return nil
	case "delete", "enable", "disable":
		if fs.NArg() != 1 {
			return usageErrorf("wxgate replies %s ID", sub)
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return usageErrorf("rule id must be a number, got %q (规则 ID 必须是数字)", fs.Arg(0))
		}
		switch sub {
		case "delete":
			err = store.Delete(ctx, id)
		default:
			err = store.SetEnabled(ctx, id, sub == "enable")
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "rule %d: %sd\n", id, sub)
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate replies %s", sub, repliesUsage)
}

func ruleCondition(r reply.Rule) string {
	switch r.Match {
	case "keyword":
		m := r.Mode
		if m == "" {
			m = "exact"
		}
		return m + " " + strconv.Quote(r.Pattern)
	case "msg_type":
		return r.MsgType
	case "click":
		return r.EventKey
	}
	return "-"
}

func replySummary(c config.ReplyContent) string {
	switch c.Type {
	case "text":
		s := strings.ReplaceAll(c.Content, "\n", " ")
		if r := []rune(s); len(r) > 40 {
			s = string(r[:40]) + "…"
		}
		return "text: " + s
	case "news":
		return fmt.Sprintf("news: %d article(s)", len(c.Articles))
	case "none":
		return "none (success)"
	}
	return c.Type + ": " + c.MediaID
}
