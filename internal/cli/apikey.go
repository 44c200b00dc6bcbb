package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/proxy"
)

const apikeyUsage = `create --name NAME --scopes send,read,token,proxy,admin [--allow-path cgi-bin/user/,…]
       wxgate apikey list
       wxgate apikey revoke ID`

func runAPIKey(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate apikey %s", apikeyUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "apikey "+sub, apikeyUsage)
	var cf configFlags
	cf.register(fs)
	name := fs.String("name", "", "a name that says who uses the key (用途)")
	scopes := fs.String("scopes", "", "comma-separated: send, read, token, proxy, admin (admin = all)")
	allowPaths := fs.String("allow-path", "", "proxy scope only: comma-separated WeChat API path prefixes the key may call, e.g. cgi-bin/user/ (default: all)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	_, database, err := cf.open(ctx, env, false)
	if err != nil {
		return err
	}
	defer database.Close()
	store := auth.NewStore(database, time.Now)

	switch sub {
	case "create":
		if *name == "" {
			return usageErrorf("--name is required (请用 --name 说明密钥用途)")
		}
		list, err := auth.ParseScopes(*scopes)
		if err != nil {
			return err
		}
		plaintext, key, err := store.Create(ctx, *name, list)
		if err != nil {
			return err
		}
		if *allowPaths != "" {
			if err := proxy.NewStore(database).SetAllowedPaths(ctx, key.ID, strings.Split(*allowPaths, ",")); err != nil {
				return err
			}
		}
		fmt.Fprintln(env.Stdout, plaintext)
		fmt.Fprintf(env.Stderr, "created API key %d %q with scopes %s — shown once, store it now (密钥只显示这一次)\n", key.ID, key.Name, joinScopes(key.Scopes))
		return nil
	case "list":
		keys, err := store.List(ctx)
		if err != nil {
			return err
		}
		paths := proxy.NewStore(database)
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPES\tPROXY PATHS\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			allowed, err := paths.AllowedPaths(ctx, k.ID)
			if err != nil {
				return fmt.Errorf("reading the proxy paths of key %d: %w", k.ID, err)
			}
			shown := "-"
			if len(allowed) > 0 {
				shown = strings.Join(allowed, ",")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, joinScopes(k.Scopes), shown,
				k.CreatedAt.Local().Format(time.DateTime), formatOptionalTime(k.LastUsedAt), formatOptionalTime(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageErrorf("wxgate apikey revoke ID")
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return usageErrorf("key id must be a number, got %q (密钥 ID 必须是数字)", fs.Arg(0))
		}
		if err := store.Revoke(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "API key %d revoked (已吊销)\n", id)
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate apikey %s", sub, apikeyUsage)
}

func joinScopes(scopes []auth.Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

func formatOptionalTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
