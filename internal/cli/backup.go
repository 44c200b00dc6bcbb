package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/wxgate/wxgate/internal/db"
)

// runBackup is `wxgate backup --to FILE`: an online copy of the SQLite
// database (the gateway may keep running).
func runBackup(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "backup", "[--config FILE] [--database-url URL] --to FILE [--force]")
	var cf configFlags
	cf.register(fs)
	to := fs.String("to", "", "the file to write the copy to (required)")
	force := fs.Bool("force", false, "replace the file if it exists")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return usageErrorf("--to FILE is required, e.g. wxgate backup --to /backup/wxgate-2026-12-07.db — 请用 --to 指定备份文件")
	}
	cfg, err := cf.loadUnvalidated(env)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite://") {
		return db.ErrBackupNotSQLite
	}
	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer database.Close()
	size, err := database.BackupSQLite(ctx, *to, *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "backup of %s written to %s (%d bytes, integrity ok) — 备份完成\n", database.URL, *to, size)
	return nil
}
