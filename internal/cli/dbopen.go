package cli

import (
	"context"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
)

// openMigrated opens the configured database and applies migrations, for the
// commands that work on the database without running the server.
func openMigrated(ctx context.Context, cfg config.Config) (*db.DB, error) {
	database, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := database.Migrate(ctx); err != nil {
		database.Close()
		return nil, err
	}
	return database, nil
}
