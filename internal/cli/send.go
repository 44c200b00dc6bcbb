package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
)

const sendUsage = `--account NAME --to openid:o… [--to unionid:u… --to external:S-1024]
       (--template ALIAS_OR_ID --data KEY=VALUE … | --text TEXT)
       [--channel template|subscribe|mp_subscribe|custom] [--url URL] [--miniprogram APPID:PAGEPATH] [--page PAGE]
       [--idempotency-key KEY] [--truncate] [--preview] [--wait 30s] [--json]`

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runSend queues a message in the gateway's database: the running gateway
// (serve or demo) sends it. It is POST /api/v1/messages without HTTP.
func runSend(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "send", sendUsage)
	var cf configFlags
	cf.register(fs)
	var to, data multiFlag
	account := fs.String("account", "", "account name (账号名称)")
	fs.Var(&to, "to", "recipient, repeatable: openid:…, unionid:… or external:… (接收者)")
	template := fs.String("template", "", "template alias or template_id (模板别名或 ID)")
	fs.Var(&data, "data", "template data KEY=VALUE, repeatable; KEY is an alias field or a keyword (模板数据)")
	channel := fs.String("channel", "", "template | subscribe | mp_subscribe | custom (default: from the template, custom with --text)")
	text := fs.String("text", "", "a customer-service text message (客服消息文本)")
	image := fs.String("image", "", "a customer-service image from a local file, uploaded once (客服消息图片文件)")
	url := fs.String("url", "", "page opened by the message")
	mini := fs.String("miniprogram", "", "mini program opened by the message, APPID:PAGEPATH")
	page := fs.String("page", "", "page of a subscription message")
	key := fs.String("idempotency-key", "", "the same key sends once (幂等键)")
	truncate := fs.Bool("truncate", false, "shorten values that are too long instead of refusing them")
	preview := fs.Bool("preview", false, "print the card as the follower will see it, send nothing (预览)")
	wait := fs.Duration("wait", 0, "wait up to this long for every recipient's final status (needs a running gateway)")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定账号)")
	}
	req := push.Request{Account: *account, Channel: *channel, Template: *template, Text: *text, URL: *url, Page: *page,
		Data: map[string]json.RawMessage{}}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "truncate" {
			req.Truncate = truncate
		}
	})
	for _, d := range data {
		k, v, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			return usageErrorf("--data %q: use KEY=VALUE (格式为 KEY=VALUE)", d)
		}
		b, _ := json.Marshal(v)
		req.Data[k] = b
	}
	if len(req.Data) == 0 {
		req.Data = nil
	}
	if *mini != "" {
		appid, path, _ := strings.Cut(*mini, ":")
		req.MiniProgram = &push.MiniProgram{AppID: appid, PagePath: path}
	}
	for _, r := range to {
		kind, value, ok := strings.Cut(r, ":")
		if !ok || value == "" {
			return usageErrorf("--to %q: use openid:…, unionid:… or external:… (接收者格式错误)", r)
		}
		switch kind {
		case "openid":
			req.To.OpenIDs = append(req.To.OpenIDs, value)
		case "unionid":
			req.To.UnionIDs = append(req.To.UnionIDs, value)
		case "external", "external_id":
			req.To.ExternalIDs = append(req.To.ExternalIDs, value)
		default:
			return usageErrorf("--to %q: the kind must be openid, unionid or external (接收者类型错误)", r)
		}
	}

	if *image != "" {
		abs, err := filepath.Abs(*image)
		if err != nil {
			return err
		}
		req.Custom, _ = json.Marshal(map[string]any{"msgtype": "image", "image": map[string]string{"file": abs}})
	}
	cfg, database, tokens, err := cf.openWithTokens(ctx, env)
	if err != nil {
		return err
	}
	defer database.Close()
	// Insert-only: the gateway's workers send the jobs.
	jobs, err := queue.New(ctx, database, queue.Options{Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer jobs.Stop(context.WithoutCancel(ctx))
	svc, err := push.New(push.Options{DB: database, Accounts: cfg.Accounts, Jobs: jobs, Logger: discardLogger(),
		Resolver: follower.NewStore(database, time.Now), Windows: msglog.NewWindows(database),
		Files: media.New(media.Options{DB: database, Clients: tokens})})
	if err != nil {
		return err
	}

	if *preview {
		p, err := svc.Preview(ctx, push.PreviewRequest{Account: req.Account, Channel: req.Channel, Template: req.Template,
			Data: req.Data, Truncate: req.Truncate})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(p)
		}
		fmt.Fprintf(env.Stdout, "%s\n%s\n", p.Title, p.Text)
		if len(p.Truncated) > 0 {
			fmt.Fprintf(env.Stderr, "truncated (已截断): %s\n", strings.Join(p.Truncated, ", "))
		}
		return nil
	}
	if len(to) == 0 {
		return usageErrorf("--to is required (请用 --to 指定接收者)")
	}
	res, err := svc.Send(ctx, req, push.SendOptions{IdempotencyKey: *key})
	if err != nil {
		return err
	}
	if *wait > 0 {
		return waitForMessage(ctx, env, svc, res, *wait, *asJSON)
	}
	if *asJSON {
		_, err := fmt.Fprintf(env.Stdout, "%s\n", res.Body)
		return err
	}
	printRecipients(env, res.Accepted.ID, toRecipients(res.Accepted.Recipients))
	if res.Replayed {
		fmt.Fprintf(env.Stderr, "idempotency key %q was used before: this is the first answer, nothing was sent again (重复请求，未再次发送)\n", *key)
	} else {
		fmt.Fprintf(env.Stderr, "queued; the running gateway sends it (已排队，由运行中的网关发送). Status: wxgate send --wait, or GET /api/v1/messages/%s\n", res.Accepted.ID)
	}
	return nil
}

func waitForMessage(ctx context.Context, env Env, svc *push.Service, res *push.SendResult, wait time.Duration, asJSON bool) error {
	deadline := time.Now().Add(wait)
	for {
		m, err := svc.GetMessage(ctx, res.Accepted.ID, push.RecipientPage{})
		if err != nil {
			return err
		}
		if m.Done || time.Now().After(deadline) {
			if asJSON {
				return json.NewEncoder(env.Stdout).Encode(m)
			}
			printRecipients(env, m.ID, m.Recipients)
			if !m.Done {
				return fmt.Errorf("message %s is not finished after %s (is the gateway running?) — 消息尚未完成（网关是否在运行？）", m.ID, wait)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func toRecipients(list []push.RecipientResult) []push.Recipient {
	out := make([]push.Recipient, len(list))
	for i, r := range list {
		out[i] = push.Recipient{Seq: i + 1, ExternalID: r.ExternalID, UnionID: r.UnionID, OpenID: r.OpenID, Status: r.Status,
			Reason: r.Reason, Channel: r.Channel}
	}
	return out
}

func printRecipients(env Env, id string, list []push.Recipient) {
	fmt.Fprintf(env.Stdout, "message %s\n", id)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TO\tOPENID\tSTATUS\tDETAIL")
	for _, r := range list {
		who := r.OpenID
		switch {
		case r.ExternalID != "":
			who = "external:" + r.ExternalID
		case r.UnionID != "":
			who = "unionid:" + r.UnionID
		}
		detail := r.Reason
		if r.MsgID != 0 {
			detail = strings.TrimSpace(fmt.Sprintf("msgid %d %s", r.MsgID, detail))
		}
		if r.ErrCode != 0 {
			detail = strings.TrimSpace(fmt.Sprintf("%s errcode %d %s", detail, r.ErrCode, r.ErrMsg))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", who, orDash(r.OpenID), r.Status, detail)
	}
	tw.Flush()
}
