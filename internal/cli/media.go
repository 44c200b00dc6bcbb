package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/media"
)

const mediaUsage = `upload --account NAME --type image|voice|video|thumb [--permanent] [--title T] FILE
       wxgate media list --account NAME [--json]
       wxgate media delete --account NAME MEDIA_ID
       wxgate media fetch --account NAME MEDIA_ID --out FILE   (a file a follower sent)`

// runMedia is `wxgate media …`: files uploaded to WeChat (临时素材 and
// 永久素材), checked against WeChat's limits first.
func runMedia(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate media %s", mediaUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "media "+sub, mediaUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称), required")
	typ := fs.String("type", "", "upload: image, voice, video or thumb (素材类型); guessed from the file when empty")
	permanent := fs.Bool("permanent", false, "upload: permanent material (永久素材) instead of temporary (3 days)")
	title := fs.String("title", "", "upload: a permanent video's title (永久视频必填)")
	intro := fs.String("introduction", "", "upload: a permanent video's description")
	out := fs.String("out", "", "fetch: write the file here")
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
	lib := media.New(media.Options{DB: database, Clients: tokens, MaxDownload: cfg.Media.DownloadMaxBytes})
	if _, ok := cfg.Account(*account); !ok {
		return fmt.Errorf("no account %q in the configuration (配置中没有账号 %q)", *account, *account)
	}
	arg := func(what string) (string, error) {
		if fs.NArg() != 1 {
			return "", usageErrorf("give the %s: wxgate media %s", what, mediaUsage)
		}
		return fs.Arg(0), nil
	}

	switch sub {
	case "upload":
		path, err := arg("file")
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w (无法读取文件)", path, err)
		}
		if *typ == "" {
			*typ = guessMediaType(data)
		}
		it, err := lib.Upload(ctx, media.Upload{Account: *account, Type: *typ, Permanent: *permanent, Name: filepath.Base(path),
			Data: data, Title: *title, Introduction: *intro})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(it)
		}
		verb := "uploaded (已上传)"
		if it.Reused {
			verb = "already at WeChat, not uploaded again (相同文件已上传过)"
		}
		fmt.Fprintf(env.Stdout, "%s %s %s: media_id %s\n", it.Storage, it.Type, verb, it.MediaID)
		if it.ExpiresAt != nil {
			fmt.Fprintf(env.Stdout, "expires %s (临时素材 3 天后过期)\n", it.ExpiresAt.Local().Format(time.DateTime))
		}
		if it.URL != "" {
			fmt.Fprintf(env.Stdout, "url %s\n", it.URL)
		}
		return nil
	case "list":
		items, err := lib.List(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"account": *account, "media": items})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEDIA_ID\tSTORAGE\tTYPE\tNAME\tSIZE\tEXPIRES")
		for _, it := range items {
			expires := "-"
			if it.ExpiresAt != nil {
				expires = it.ExpiresAt.Local().Format(time.DateTime)
				if it.ExpiresAt.Before(time.Now()) {
					expires += " (expired 已过期)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", it.MediaID, it.Storage, it.Type, it.Name, it.Size, expires)
		}
		return tw.Flush()
	case "delete":
		id, err := arg("media_id")
		if err != nil {
			return err
		}
		if err := lib.Delete(ctx, *account, id); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "media %s deleted (素材已删除)\n", id)
		return nil
	case "fetch":
		id, err := arg("media_id")
		if err != nil {
			return err
		}
		if *out == "" {
			return usageErrorf("--out is required (请用 --out 指定保存的文件)")
		}
		d, err := lib.Fetch(ctx, *account, id)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, d.Data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", *out, err)
		}
		fmt.Fprintf(env.Stdout, "%d bytes (%s) written to %s (已保存)\n", d.Size, d.ContentType, *out)
		return nil
	}
	return usageErrorf("unknown subcommand %q: wxgate media %s", sub, mediaUsage)
}

// guessMediaType picks the type a file's format belongs to.
func guessMediaType(data []byte) string {
	switch media.Format(data) {
	case "amr", "mp3":
		return "voice"
	case "mp4":
		return "video"
	case "jpg", "png", "gif", "bmp":
		return "image"
	}
	return ""
}
