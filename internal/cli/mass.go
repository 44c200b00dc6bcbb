package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/mass"
	"github.com/wxgate/wxgate/internal/media"
)

const massUsage = `send --account NAME (--tag ID | --all) MESSAGE [--client-msg-id ID]
       wxgate mass preview --account NAME --openid OPENID MESSAGE
       wxgate mass list --account NAME [--json]
       wxgate mass show --account NAME ID
       wxgate mass quota --account NAME
       wxgate mass delete --account NAME ID [--article N]
  MESSAGE is one of: --text 文本 | --image FILE | --voice FILE | --media-id ID --type image|voice|video|news | --card CARD_ID`

// runMass is `wxgate mass …`: mass sends (群发) with the month's quota
// counted first.
func runMass(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate mass %s", massUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "mass "+sub, massUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称), required")
	tag := fs.Int64("tag", -1, "send: the tag's followers (标签 ID)")
	all := fs.Bool("all", false, "send: every follower (全部粉丝)")
	text := fs.String("text", "", "a text message (文本)")
	image := fs.String("image", "", "an image file, uploaded first (图片文件)")
	voice := fs.String("voice", "", "a voice file, uploaded first (语音文件)")
	mediaID := fs.String("media-id", "", "a media_id already at WeChat, with --type")
	typ := fs.String("type", "", "with --media-id: image, voice, video or news")
	card := fs.String("card", "", "a card id (卡券)")
	clientMsgID := fs.String("client-msg-id", "", "send: the send's id; the same id again sends nothing new")
	openid := fs.String("openid", "", "preview: the follower who previews (预览粉丝)")
	article := fs.Int("article", 0, "delete: the article's number; 0 deletes all")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定公众号)")
	}
	cfg, database, tokens, err := cf.openWithTokens(ctx, env)
	if err != nil {
		return err
	}
	defer database.Close()
	lib := media.New(media.Options{DB: database, Clients: tokens})
	svc := mass.New(mass.Options{DB: database, Accounts: cfg.Accounts, Clients: tokens, Files: lib})
	message := func() (mass.Message, error) {
		var ms []mass.Message
		if *text != "" {
			ms = append(ms, mass.Message{Type: mass.TypeText, Text: *text})
		}
		if *image != "" {
			ms = append(ms, mass.Message{Type: mass.TypeImage, File: *image})
		}
		if *voice != "" {
			ms = append(ms, mass.Message{Type: mass.TypeVoice, File: *voice})
		}
		if *mediaID != "" {
			ms = append(ms, mass.Message{Type: *typ, MediaID: *mediaID})
		}
		if *card != "" {
			ms = append(ms, mass.Message{Type: mass.TypeCard, CardID: *card})
		}
		if len(ms) != 1 {
			return mass.Message{}, usageErrorf("give exactly one message: --text, --image, --voice, --media-id with --type, or --card (请指定一种消息内容)")
		}
		return ms[0], nil
	}
	id := func() (int64, error) {
		if fs.NArg() != 1 {
			return 0, usageErrorf("give the mass send's id: wxgate mass %s", massUsage)
		}
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return 0, usageErrorf("the id must be a number, got %q (群发 ID 必须是数字)", fs.Arg(0))
		}
		return n, nil
	}
	show := func(m mass.Send) error {
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(m)
		}
		to := "all followers (全部粉丝)"
		if m.To.TagID != nil {
			to = fmt.Sprintf("tag %d (标签)", *m.To.TagID)
		}
		fmt.Fprintf(env.Stdout, "mass send %d: %s to %s, status %s\n", m.ID, m.Message.Type, to, m.Status)
		if m.MsgID != 0 {
			fmt.Fprintf(env.Stdout, "msg_id %d, client_msg_id %s\n", m.MsgID, m.ClientMsgID)
		}
		if m.FinishedAt != nil {
			fmt.Fprintf(env.Stdout, "WeChat: %s — total %d, after filtering %d, sent %d, errors %d (总数/过滤后/成功/失败)\n",
				m.WeChatStatus, m.TotalCount, m.FilterCount, m.SentCount, m.ErrorCount)
		}
		if m.Error != "" {
			fmt.Fprintf(env.Stdout, "error: %s\n", m.Error)
		}
		return nil
	}

	switch sub {
	case "send":
		msg, err := message()
		if err != nil {
			return err
		}
		to := mass.Audience{All: *all}
		if *tag >= 0 {
			to.TagID = tag
		}
		q, err := svc.Quota(ctx, *account)
		if err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(env.Stdout, "quota %s: %d of %d used before this send (本月已群发 %d/%d 次)\n", q.Month, q.Used, q.Limit, q.Used, q.Limit)
		}
		m, err := svc.Send(ctx, mass.SendRequest{Account: *account, To: to, Message: msg, ClientMsgID: *clientMsgID})
		if err != nil {
			return err
		}
		if m.Reused && !*asJSON {
			fmt.Fprintln(env.Stdout, "this client_msg_id was sent before; nothing new was sent (相同 client_msg_id 已发送过)")
		}
		return show(m)
	case "preview":
		msg, err := message()
		if err != nil {
			return err
		}
		msgID, err := svc.Preview(ctx, *account, *openid, msg)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "preview sent to %s, msg_id %d (预览已发送)\n", *openid, msgID)
		return nil
	case "list":
		list, err := svc.List(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"account": *account, "sends": list})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tTO\tSTATUS\tSENT\tERRORS\tCREATED")
		for _, m := range list {
			to := "all"
			if m.To.TagID != nil {
				to = "tag " + strconv.FormatInt(*m.To.TagID, 10)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", m.ID, m.Message.Type, to, m.Status, m.SentCount, m.ErrorCount,
				m.CreatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "show":
		n, err := id()
		if err != nil {
			return err
		}
		m, err := svc.Get(ctx, *account, n)
		if err != nil {
			return err
		}
		return show(m)
	case "quota":
		q, err := svc.Quota(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(q)
		}
		fmt.Fprintf(env.Stdout, "%s: %d of %d mass sends used, %d left; resets %s (本月已群发 %d/%d 次)\n",
			q.Month, q.Used, q.Limit, q.Remaining, q.ResetsAt.Local().Format(time.DateOnly), q.Used, q.Limit)
		return nil
	case "delete":
		n, err := id()
		if err != nil {
			return err
		}
		m, err := svc.Delete(ctx, *account, n, *article)
		if err != nil {
			return err
		}
		return show(m)
	}
	return usageErrorf("unknown subcommand %q: wxgate mass %s", sub, massUsage)
}
