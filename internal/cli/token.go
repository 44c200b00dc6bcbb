package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

func runToken(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "token", "--account NAME [--json] [--config FILE]")
	var cf configFlags
	cf.register(fs)
	account := fs.String("account", "", "account name (账号名称)")
	asJSON := fs.Bool("json", false, "print {access_token, expires_at, expires_in} as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *account == "" {
		return usageErrorf("--account is required (请用 --account 指定账号)")
	}
	cfg, err := cf.load(env)
	if err != nil {
		return err
	}
	a, ok := cfg.Account(*account)
	if !ok {
		return fmt.Errorf("no account named %q in the configuration (配置中没有名为 %q 的账号)", *account, *account)
	}
	if a.AppSecret == "" {
		return fmt.Errorf("account %q has no app_secret, so no token can be fetched (账号 %q 未配置 AppSecret)", a.Name, a.Name)
	}
	database, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer database.Close()
	// The broker shares the database with running gateways: it reuses their
	// token, and only calls WeChat under the same lease they respect.
	tokens, err := newTokenRegistry(cfg, database, discardLogger(), time.Now, nil)
	if err != nil {
		return err
	}
	tok, err := tokens.Token(ctx, a.Name)
	if err != nil {
		return err
	}
	expiresIn := int64(time.Until(tok.ExpiresAt).Seconds())
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(map[string]any{
			"access_token": tok.Value, "expires_at": tok.ExpiresAt.Format(time.RFC3339), "expires_in": expiresIn,
		})
	}
	fmt.Fprintln(env.Stdout, tok.Value)
	fmt.Fprintf(env.Stderr, "expires at %s (in %ds)\n", tok.ExpiresAt.Local().Format(time.DateTime), expiresIn)
	return nil
}
