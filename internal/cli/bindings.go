package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/webhook"
)

const bindingsUsage = `list [--external-id ID] [--openid O] [--unionid U] [--account NAME] [--history] [--limit 50] [--json]
       wxgate bindings delete ID | --external-id ID [--account NAME]
       wxgate bindings qrcode --account NAME --external-id ID [--expires-in 10m] [--png FILE] [--json]`

func runBindings(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate bindings %s", bindingsUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "bindings "+sub, bindingsUsage)
	var cf configFlags
	cf.register(fs)
	externalID := fs.String("external-id", "", "the business's user id (业务用户 ID)")
	openid := fs.String("openid", "", "list: bindings of this openid's person")
	unionid := fs.String("unionid", "", "list: bindings of this unionid's person")
	account := fs.String("account", "", "account name (账号名称)")
	history := fs.Bool("history", false, "list: include replaced and deleted bindings (含历史)")
	limit := fs.Int("limit", 50, "list: at most this many (≤ 500)")
	expiresIn := fs.Duration("expires-in", follower.DefaultQRCodeExpiry, "qrcode: lifetime of the code (30s..720h)")
	pngFile := fs.String("png", "", "qrcode: write the QR code image to this file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, database, err := cf.open(ctx, env, true)
	if err != nil {
		return err
	}
	defer database.Close()

	// Deletions publish binding.deleted: the running gateway's workers
	// deliver the webhooks this process queues.
	store := follower.NewStore(database, time.Now)
	newBinder := func() (*follower.Binder, func(), error) {
		jobs, err := queue.New(ctx, database, queue.Options{Logger: discardLogger()})
		if err != nil {
			return nil, nil, err
		}
		tokens, err := newTokenRegistry(cfg, database, discardLogger(), time.Now, nil)
		if err != nil {
			_ = jobs.Stop(context.WithoutCancel(ctx))
			return nil, nil, err
		}
		b := follower.NewBinder(follower.BinderOptions{Store: store, Accounts: cfg.Accounts, Clients: tokens,
			Events: webhook.NewPublisher(webhook.NewStore(database, time.Now), jobs), Logger: discardLogger()})
		return b, func() { _ = jobs.Stop(context.WithoutCancel(ctx)) }, nil
	}

	switch sub {
	case "list":
		list, err := store.ListBindings(ctx, follower.BindingFilter{ExternalID: *externalID, OpenID: *openid, UnionID: *unionid,
			Account: *account, History: *history, Limit: *limit})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"bindings": list})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEXTERNAL ID\tACCOUNT\tOPENID\tUNIONID\tSOURCE\tCREATED\tENDED")
		for _, b := range list {
			ended := "-"
			if b.EndedAt != nil {
				ended = b.EndedAt.Local().Format(time.DateTime) + " " + b.EndReason
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.ExternalID, b.Account, b.OpenID, orDash(b.UnionID), b.Source,
				b.CreatedAt.Local().Format(time.DateTime), ended)
		}
		return tw.Flush()

	case "delete":
		var ids []int64
		switch {
		case fs.NArg() == 1 && *externalID == "":
			id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
			if err != nil {
				return usageErrorf("binding id must be a number, got %q (绑定 ID 必须是数字)", fs.Arg(0))
			}
			ids = append(ids, id)
		case fs.NArg() == 0 && *externalID != "":
			list, err := store.ListBindings(ctx, follower.BindingFilter{ExternalID: *externalID, Account: *account, Limit: 500})
			if err != nil {
				return err
			}
			if len(list) == 0 {
				return fmt.Errorf("%s is not bound (未绑定)", *externalID)
			}
			for _, b := range list {
				ids = append(ids, b.ID)
			}
		default:
			return usageErrorf("wxgate bindings delete ID | --external-id ID")
		}
		binder, stop, err := newBinder()
		if err != nil {
			return err
		}
		defer stop()
		for _, id := range ids {
			b, err := binder.DeleteBinding(ctx, id)
			if err != nil {
				if err == follower.ErrBindingNotFound {
					return fmt.Errorf("no binding %d (绑定不存在)", id)
				}
				return err
			}
			fmt.Fprintf(env.Stdout, "binding %d of %s to %s deleted (已解绑)\n", b.ID, b.ExternalID, b.OpenID)
		}
		return nil

	case "qrcode":
		if *account == "" || *externalID == "" {
			return usageErrorf("--account and --external-id are required (请指定 --account 与 --external-id)")
		}
		binder, stop, err := newBinder()
		if err != nil {
			return err
		}
		defer stop()
		qr, err := binder.CreateQRCode(ctx, follower.QRCodeRequest{Account: *account, ExternalID: *externalID, ExpiresIn: *expiresIn})
		if err != nil {
			return err
		}
		if *pngFile != "" {
			if err := qrcode.WriteFile(qr.URL, qrcode.Medium, 320, *pngFile); err != nil {
				return fmt.Errorf("writing %s: %w", *pngFile, err)
			}
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(qr)
		}
		fmt.Fprintf(env.Stdout, "ticket:     %s\nurl:        %s\nimage:      %s\nexpires at: %s\npoll token: %s\n",
			qr.Ticket, qr.URL, qr.ImageURL, qr.ExpiresAt.Local().Format(time.DateTime), qr.PollToken)
		if *pngFile != "" {
			fmt.Fprintf(env.Stderr, "QR code written to %s (二维码已保存)\n", *pngFile)
		} else if f, ok := env.Stdout.(*os.File); ok && f == os.Stdout {
			if q, err := qrcode.New(qr.URL, qrcode.Low); err == nil {
				fmt.Fprint(env.Stdout, q.ToSmallString(false))
			}
		}
		return nil
	}
	return usageErrorf("unknown subcommand %q; wxgate bindings %s", sub, bindingsUsage)
}
