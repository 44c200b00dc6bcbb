package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wxgate/wxgate/internal/menu"
)

const menuUsage = `apply --account NAME [--dry-run] FILE   (check the file against WeChat's rules, then upload it)
       wxgate menu show --account NAME            (WeChat's current menu, as a menu file)
       wxgate menu diff --account NAME FILE       (what apply would change)
       wxgate menu match --account NAME OPENID    (the menu that follower sees)
       wxgate menu delete --account NAME`

// runMenu is `wxgate menu …`: the custom menu (自定义菜单) from a file.
func runMenu(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate menu %s", menuUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "menu "+sub, menuUsage)
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称), required")
	dryRun := fs.Bool("dry-run", false, "apply: check the file only, upload nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定公众号)")
	}
	readFile := func() (menu.Menu, error) {
		if fs.NArg() != 1 {
			return menu.Menu{}, usageErrorf("give the menu file (请提供菜单文件): wxgate menu %s", menuUsage)
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return menu.Menu{}, err
		}
		return menu.Parse(data)
	}
	var file menu.Menu
	if sub == "apply" || sub == "diff" {
		var err error
		if file, err = readFile(); err != nil {
			return err
		}
		if probs := menu.Check(file); len(probs) > 0 {
			return &menu.ErrInvalid{Problems: probs}
		}
		if *dryRun {
			fmt.Fprintf(env.Stdout, "%s keeps WeChat's menu rules (菜单检查通过)\n", fs.Arg(0))
			return nil
		}
	}
	_, database, tokens, err := cf.openWithTokens(ctx, env)
	if err != nil {
		return err
	}
	defer database.Close()
	c, ok := tokens.Client(*account)
	if !ok {
		return fmt.Errorf("no official account %q with an app_secret is configured (未配置该公众号或缺少 app_secret)", *account)
	}

	switch sub {
	case "apply":
		if err := menu.Apply(ctx, c, file); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "menu of %s applied: %d buttons, %d conditional menus (菜单已更新；微信客户端约 5 分钟内刷新)\n",
			*account, len(file.Buttons), len(file.Conditional))
		return nil
	case "match":
		if fs.NArg() != 1 {
			return usageErrorf("give the follower's openid (请提供粉丝 openid): wxgate menu %s", menuUsage)
		}
		buttons, err := menu.Match(ctx, c, fs.Arg(0))
		if err != nil {
			return err
		}
		out, err := yaml.Marshal(menu.Menu{Buttons: buttons})
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(out)
		return err
	case "show":
		m, err := menu.Current(ctx, c)
		if err != nil {
			return err
		}
		if len(m.Buttons) == 0 {
			fmt.Fprintf(env.Stdout, "# %s has no menu (未设置菜单)\n", *account)
			return nil
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(out)
		return err
	case "diff":
		d, err := menu.Compare(ctx, c, file)
		if err != nil {
			return err
		}
		if len(d) == 0 {
			fmt.Fprintln(env.Stdout, "no difference: WeChat has this menu (无差异)")
			return nil
		}
		fmt.Fprintln(env.Stdout, strings.Join(d, "\n"))
		return nil
	case "delete":
		if err := menu.Delete(ctx, c); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "menu of %s deleted (菜单已删除)\n", *account)
		return nil
	}
	return usageErrorf("unknown menu command %q: wxgate menu %s", sub, menuUsage)
}
