package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
)

const tagsUsage = `list --account NAME [--json]
       wxgate tags create --account NAME --name 名称
       wxgate tags rename --account NAME ID --name 名称
       wxgate tags delete --account NAME ID
       wxgate tags add --account NAME ID OPENID… | --file FILE   (tag followers; - reads standard input)
       wxgate tags remove --account NAME ID OPENID… | --file FILE (untag followers)`

// runTags is `wxgate tags …`: the account's user tags (用户标签) at WeChat,
// and tagging followers, kept in step with the follower store.
func runTags(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate tags %s", tagsUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "tags "+sub, tagsUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称), required")
	name := fs.String("name", "", "create, rename: the tag's name (标签名)")
	file := fs.String("file", "", "add, remove: read openids from this file, one per line (- for standard input)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定公众号)")
	}
	_, database, tokens, err := cf.openWithTokens(ctx, env)
	if err != nil {
		return err
	}
	defer database.Close()
	tags := follower.NewTags(follower.NewStore(database, time.Now), tokens)
	tagID := func() (int64, error) {
		if fs.NArg() < 1 {
			return 0, usageErrorf("give the tag id (请提供标签 ID): wxgate tags %s", tagsUsage)
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return 0, usageErrorf("the tag id must be a number, got %q (标签 ID 必须是数字)", fs.Arg(0))
		}
		return id, nil
	}

	switch sub {
	case "list":
		list, err := tags.List(ctx, *account)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(map[string]any{"account": *account, "tags": list})
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tFOLLOWERS")
		for _, t := range list {
			fmt.Fprintf(tw, "%d\t%s\t%d\n", t.ID, t.Name, t.Count)
		}
		return tw.Flush()
	case "create":
		t, err := tags.Create(ctx, *account, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "tag %d %q created (标签已创建)\n", t.ID, t.Name)
		return nil
	case "rename":
		id, err := tagID()
		if err != nil {
			return err
		}
		t, err := tags.Rename(ctx, *account, id, *name)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "tag %d renamed %q (标签已改名)\n", t.ID, t.Name)
		return nil
	case "delete":
		id, err := tagID()
		if err != nil {
			return err
		}
		if err := tags.Delete(ctx, *account, id); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "tag %d deleted, also from the followers (标签已删除)\n", id)
		return nil
	case "add", "remove":
		id, err := tagID()
		if err != nil {
			return err
		}
		openids := fs.Args()[1:]
		if *file != "" {
			more, err := readLines(env, *file)
			if err != nil {
				return err
			}
			openids = append(openids, more...)
		}
		var res follower.TagChange
		if sub == "add" {
			res, err = tags.Change(ctx, *account, id, openids, nil)
		} else {
			res, err = tags.Change(ctx, *account, id, nil, openids)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "tag %d: %d tagged, %d untagged (完成)\n", id, res.Tagged, res.Untagged)
		return nil
	}
	return usageErrorf("unknown tags command %q: wxgate tags %s", sub, tagsUsage)
}

// readLines reads the non-empty lines of a file, or of standard input for
// "-".
func readLines(env Env, path string) ([]string, error) {
	var sc *bufio.Scanner
	if path == "-" {
		sc = bufio.NewScanner(env.Stdin)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc = bufio.NewScanner(f)
	}
	var out []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
