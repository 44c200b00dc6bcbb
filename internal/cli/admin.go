package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/wxgate/wxgate/internal/auth"
)

const adminUsage = `create --username NAME [--password-stdin]
       wxgate admin passwd --username NAME [--password-stdin]
       wxgate admin list
       wxgate admin delete --username NAME`

// runAdmin manages the admin console's users. A password comes from
// stdin (--password-stdin), from a prompt on a terminal, or, for create
// without either, is generated and printed once.
func runAdmin(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("wxgate admin %s", adminUsage)
	}
	sub := args[0]
	fs := newFlagSet(env, "admin "+sub, adminUsage)
	var cf configFlags
	cf.register(fs)
	username := fs.String("username", "", "the admin user's name (管理员用户名)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin (从标准输入读取密码)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if sub != "list" && *username == "" {
		return usageErrorf("--username is required (请用 --username 指定管理员)")
	}
	_, database, err := cf.open(ctx, env, false)
	if err != nil {
		return err
	}
	defer database.Close()
	store := auth.NewAdminStore(database, time.Now)

	switch sub {
	case "create":
		password, generated, err := readPassword(env, *fromStdin, true)
		if err != nil {
			return err
		}
		u, err := store.CreateUser(ctx, *username, password)
		if err != nil {
			return err
		}
		if generated {
			fmt.Fprintln(env.Stdout, password)
			fmt.Fprintf(env.Stderr, "created admin user %q with the password above — shown once (密码只显示这一次)\n", u.Username)
			return nil
		}
		fmt.Fprintf(env.Stderr, "created admin user %q (已创建管理员)\n", u.Username)
		return nil
	case "passwd":
		password, _, err := readPassword(env, *fromStdin, false)
		if err != nil {
			return err
		}
		if err := store.SetPassword(ctx, *username, password); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "password of %q changed; its sessions are signed out (密码已修改，原有会话已退出)\n", *username)
		return nil
	case "list":
		users, err := store.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSERNAME\tCREATED\tPASSWORD CHANGED")
		for _, u := range users {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", u.ID, u.Username, u.CreatedAt.Format(time.RFC3339), u.UpdatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "delete":
		if err := store.DeleteUser(ctx, *username); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "deleted admin user %q (已删除管理员)\n", *username)
		return nil
	}
	return usageErrorf("unknown admin command %q: wxgate admin %s", sub, adminUsage)
}

// readPassword returns the password to set and whether it was generated.
func readPassword(env Env, fromStdin, mayGenerate bool) (string, bool, error) {
	if fromStdin {
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", false, fmt.Errorf("reading the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, "password (密码): ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", false, fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(env.Stderr, "again (再输一次): ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", false, fmt.Errorf("reading the password: %w", err)
		}
		if string(first) != string(second) {
			return "", false, errors.New("the two passwords differ — 两次输入的密码不一致")
		}
		return string(first), false, nil
	}
	if !mayGenerate {
		return "", false, usageErrorf("give the new password with --password-stdin, or run on a terminal (请用 --password-stdin 提供新密码)")
	}
	return rand.Text(), true, nil
}
