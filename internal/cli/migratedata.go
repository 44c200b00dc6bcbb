package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/queue"
)

// runMigrateData is `wxgate migrate-data --to postgres://…`: every row of
// the configured SQLite database and every job not yet finished, copied in
// one transaction into an empty PostgreSQL database.
func runMigrateData(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "migrate-data", "[--config FILE] [--database-url sqlite://…] --to postgres://…")
	var cf configFlags
	cf.register(fs)
	to := fs.String("to", "", "the PostgreSQL database to copy into (required, empty or freshly migrated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*to, "postgres://") && !strings.HasPrefix(*to, "postgresql://") {
		return usageErrorf("--to postgres://user:password@host/db is required — 请用 --to 指定目标 PostgreSQL 数据库")
	}
	cfg, err := cf.loadUnvalidated(env)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite://") {
		return fmt.Errorf("migrate-data copies from a SQLite database; database_url is %s — 源数据库必须是 SQLite", db.MaskURL(cfg.DatabaseURL))
	}
	source, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer source.Close()
	if err := queue.Migrate(ctx, source, discardLogger()); err != nil {
		return err
	}
	target, err := db.Open(ctx, *to)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := target.Migrate(ctx); err != nil {
		return err
	}
	// New migrates River's tables too; the client only inserts.
	jobs, err := queue.New(ctx, target, queue.Options{Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer jobs.Stop(context.WithoutCancel(ctx))
	var queued int
	if err := target.QueryRowContext(ctx, `SELECT count(*) FROM river_job`).Scan(&queued); err != nil {
		return fmt.Errorf("migrate-data: %w", err)
	}
	if queued > 0 {
		return fmt.Errorf("migrate-data: the target already has %d jobs; copy into an empty database only — 目标数据库已有任务数据，只能迁移到空数据库", queued)
	}

	tx, err := target.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate-data: %w", err)
	}
	defer tx.Rollback()
	tables, err := db.CopySQLiteToPostgres(ctx, source, target, tx)
	if err != nil {
		return err
	}
	pending, err := queue.CopyPendingJobs(ctx, source, jobs, tx)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate-data: committing: %w", err)
	}

	// Counted again on both sides once committed.
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSQLITE\tPOSTGRESQL")
	var total int64
	for _, t := range tables {
		var a, b int64
		if err := source.QueryRowContext(ctx, `SELECT count(*) FROM `+t.Table).Scan(&a); err != nil {
			return err
		}
		if err := target.QueryRowContext(ctx, `SELECT count(*) FROM `+t.Table).Scan(&b); err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("migrate-data: %s has %d rows in SQLite and %d in PostgreSQL (was the gateway still running? stop it and copy into a fresh database)", t.Table, a, b)
		}
		total += b
		if b > 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Table, a, b)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "copied %d rows of %d tables and %d pending jobs to %s — 迁移完成\n", total, len(tables), pending, target.URL)
	fmt.Fprintf(env.Stdout, "next: set database_url (WXGATE_DATABASE_URL) to the PostgreSQL URL and start the instances — 下一步：把 database_url 改为该 PostgreSQL 地址后启动各实例\n")
	return nil
}
