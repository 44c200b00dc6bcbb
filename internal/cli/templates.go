package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
)

const templatesUsage = `sync --account NAME
       wxgate templates list --account NAME [--json]
       wxgate templates alias --account NAME --name ALIAS --template TEMPLATE_ID [--field REQUEST_FIELD=KEYWORD …]
                             [--default KEYWORD=VALUE …] [--truncate] [--url URL] [--miniprogram APPID:PAGEPATH] [--page PAGE] [--fallback ALIAS]
       wxgate templates unalias --account NAME --name ALIAS`

func runTemplates(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate templates %s", templatesUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "templates "+sub, templatesUsage)
	var cf configFlags
	cf.register(fs)
	var fields, defaults multiFlag
	account := fs.String("account", "", "account name (账号名称)")
	name := fs.String("name", "", "alias name, e.g. new_visitor (别名)")
	template := fs.String("template", "", "template_id the alias names")
	fs.Var(&fields, "field", "REQUEST_FIELD=KEYWORD, repeatable (请求字段=模板关键词)")
	fs.Var(&defaults, "default", "KEYWORD=VALUE used when a request has none, repeatable")
	truncate := fs.Bool("truncate", false, "shorten values that are too long instead of refusing them")
	url := fs.String("url", "", "page opened by the message when the request gives none")
	mini := fs.String("miniprogram", "", "mini program opened when the request gives none, APPID:PAGEPATH")
	page := fs.String("page", "", "page of a subscription message when the request gives none")
	fallback := fs.String("fallback", "", "template-message alias sent to recipients without a subscription grant")
	description := fs.String("description", "", "what the alias is for")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定账号)")
	}
	cfg, database, err := cf.open(ctx, env, true)
	if err != nil {
		return err
	}
	defer database.Close()
	opts := push.Options{DB: database, Accounts: cfg.Accounts, Logger: discardLogger(),
		Resolver: follower.NewStore(database, time.Now), Windows: msglog.NewWindows(database)}
	if sub == "sync" {
		tokens, err := newTokenRegistry(cfg, database, discardLogger(), time.Now, nil)
		if err != nil {
			return err
		}
		opts.Clients = tokens
	}
	svc, err := push.New(opts)
	if err != nil {
		return err
	}

	switch sub {
	case "sync":
		res, err := svc.SyncTemplates(ctx, *account)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%d templates synced (已同步), %d new, %d removed\n", res.Synced, len(res.Added), len(res.Removed))
		return nil
	case "list":
		list, err := svc.Templates(ctx, *account)
		if err != nil {
			return err
		}
		aliases, err := svc.Aliases(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"templates": list, "aliases": aliases})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TEMPLATE_ID\tKIND\tTITLE\tKEYWORDS")
		for _, t := range list {
			var kws []string
			for _, k := range t.Keywords {
				if !k.Dropped {
					kws = append(kws, k.Key)
				}
			}
			title := t.Title
			if t.RemovedAt != nil {
				title += " (removed 已删除)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.TemplateID, t.Kind, title, strings.Join(kws, ","))
		}
		tw.Flush()
		if len(aliases) > 0 {
			fmt.Fprintln(env.Stdout)
			tw = tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALIAS\tTEMPLATE_ID\tFIELDS\tTRUNCATE\tFALLBACK")
			for _, a := range aliases {
				var fs []string
				for f, k := range a.Fields {
					fs = append(fs, f+"="+k)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", a.Alias, a.TemplateID, strings.Join(slices.Sorted(slices.Values(fs)), ","), a.Truncate, orDash(a.Fallback))
			}
			tw.Flush()
		}
		return nil
	case "alias":
		a := push.Alias{Account: *account, Alias: *name, TemplateID: *template, Fields: map[string]string{}, Defaults: map[string]string{},
			Truncate: *truncate, URL: *url, Page: *page, Fallback: *fallback, Description: *description}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return usageErrorf("--field %q: use REQUEST_FIELD=KEYWORD", f)
			}
			a.Fields[k] = v
		}
		for _, d := range defaults {
			k, v, ok := strings.Cut(d, "=")
			if !ok {
				return usageErrorf("--default %q: use KEYWORD=VALUE", d)
			}
			a.Defaults[k] = v
		}
		if *mini != "" {
			appid, path, _ := strings.Cut(*mini, ":")
			a.MiniProgram = &push.MiniProgram{AppID: appid, PagePath: path}
		}
		saved, err := svc.PutAlias(ctx, a)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "alias %s → %s saved (别名已保存)\n", saved.Alias, saved.TemplateID)
		return nil
	case "unalias":
		if err := svc.DeleteAlias(ctx, *account, *name); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "alias %s deleted (别名已删除)\n", *name)
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate templates %s", sub, templatesUsage)
}
