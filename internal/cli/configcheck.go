package cli

import (
	"context"
	"fmt"
)

func runConfig(_ context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageErrorf("wxgate config check [--config FILE]")
	}
	fs := newFlagSet(env, "config check", "[--config FILE]")
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := cf.loadUnvalidated(env)
	if err != nil {
		return err
	}
	out, err := cfg.MaskedYAML()
	if err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	fmt.Fprintf(env.Stdout, "# effective configuration (secrets masked) — 生效配置（密钥已隐藏）\n%s", out)
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration is invalid (配置有误):\n%w", err)
	}
	fmt.Fprintln(env.Stderr, "configuration OK (配置有效)")
	return nil
}
