package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/queue"
)

func runMigrate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "migrate", "[--config FILE] [--database-url URL] [--status]")
	var cf configFlags
	cf.register(fs)
	status := fs.Bool("status", false, "list migrations and whether they are applied, change nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.loadUnvalidated(env)
	if err != nil {
		return err
	}
	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer database.Close()
	if !*status {
		if err := database.Migrate(ctx); err != nil {
			return err
		}
		// The job queue's own tables (River) are versioned by River.
		if err := queue.Migrate(ctx, database, discardLogger()); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "database %s is up to date (数据库已是最新)\n", database.URL)
	}
	states, err := database.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, s := range states {
		applied := "pending"
		if s.Applied {
			applied = s.AppliedAt.Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\n", s.Version, s.Name, applied)
	}
	return tw.Flush()
}
