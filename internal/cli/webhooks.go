package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/webhook"
)

const webhooksUsage = `add --url URL [--events binding.completed,binding.deleted] [--account NAME] [--description TEXT] [--secret S]
       wxgate webhooks list [--json]
       wxgate webhooks delete ID
       wxgate webhooks deliveries ID [--limit 50] [--json]`

func runWebhooks(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate webhooks %s", webhooksUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "webhooks "+sub, webhooksUsage)
	var cf configFlags
	cf.register(fs)
	url := fs.String("url", "", "add: the endpoint's http(s) URL")
	events := fs.String("events", "*", "add: comma-separated event types, * for all (事件类型)")
	account := fs.String("account", "", "add: only this account's events")
	description := fs.String("description", "", "add: what the endpoint is for")
	secret := fs.String("secret", "", "add: the signing secret (generated when empty; at least 16 characters)")
	limit := fs.Int("limit", 50, "deliveries: at most this many")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, database, err := cf.open(ctx, env, false)
	if err != nil {
		return err
	}
	defer database.Close()
	store := webhook.NewStore(database, time.Now)
	id := func() (int64, error) {
		if fs.NArg() != 1 {
			return 0, usageErrorf("wxgate webhooks %s ID", sub)
		}
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return 0, usageErrorf("webhook id must be a number, got %q", fs.Arg(0))
		}
		return n, nil
	}

	switch sub {
	case "add":
		if *account != "" {
			if _, ok := cfg.Account(*account); !ok {
				return fmt.Errorf("no account named %q in the configuration (配置中没有名为 %q 的账号)", *account, *account)
			}
		}
		var list []string
		for _, e := range strings.Split(*events, ",") {
			if e = strings.TrimSpace(e); e != "" {
				list = append(list, e)
			}
		}
		ep, err := store.Create(ctx, webhook.EndpointInput{URL: *url, Events: list, Account: *account, Description: *description, Secret: *secret})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(ep)
		}
		fmt.Fprintf(env.Stdout, "webhook %d → %s (%s)\nsecret: %s\n", ep.ID, ep.URL, strings.Join(ep.Events, ","), ep.Secret)
		fmt.Fprintln(env.Stderr, "the secret is shown once: verify X-Wxgate-Signature with it (密钥只显示这一次)")
		return nil
	case "list":
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"webhooks": list})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tURL\tEVENTS\tACCOUNT\tSECRET\tCREATED")
		for _, ep := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ep.ID, ep.URL, strings.Join(ep.Events, ","), orDash(ep.Account), ep.SecretHint,
				ep.CreatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "delete":
		n, err := id()
		if err != nil {
			return err
		}
		if err := store.Delete(ctx, n); err != nil {
			if err == webhook.ErrNotFound {
				return fmt.Errorf("no webhook %d", n)
			}
			return err
		}
		fmt.Fprintf(env.Stdout, "webhook %d deleted; its pending deliveries are cancelled\n", n)
		return nil
	case "deliveries":
		n, err := id()
		if err != nil {
			return err
		}
		list, err := store.Deliveries(ctx, n, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"deliveries": list})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEVENT\tSTATUS\tATTEMPTS\tLAST HTTP\tLAST ERROR\tCREATED")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.EventType, d.Status, d.Attempts, d.LastStatus, orDash(d.LastError),
				d.CreatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	}
	return usageErrorf("unknown subcommand %q; wxgate webhooks %s", sub, webhooksUsage)
}
