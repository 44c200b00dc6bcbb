package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles holds one folder per dialect. Both have the same version
// numbers and file names, so a version means the same schema everywhere.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// MigrationState is one migration and whether the database has it.
type MigrationState struct {
	Version   int64
	Name      string // file name, e.g. 00001_callback.sql
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// Migrations returns the embedded migration files of a dialect.
func Migrations(dialect Dialect) (fs.FS, error) {
	var folder string
	switch dialect {
	case SQLite:
		folder = "migrations/sqlite"
	case Postgres:
		folder = "migrations/postgres"
	default:
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
	sub, err := fs.Sub(migrationFiles, folder)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", dialect, err)
	}
	return sub, nil
}

// Migrate applies every migration the database does not have yet.
func (db *DB) Migrate(ctx context.Context) error {
	provider, err := db.migrationProvider()
	if err != nil {
		return err
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrating %s database: %w", db.Dialect, err)
	}
	return nil
}

// MigrationStatus lists every known migration, oldest first, with whether
// it has been applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	provider, err := db.migrationProvider()
	if err != nil {
		return nil, err
	}
	statuses, err := provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading migration status of %s database: %w", db.Dialect, err)
	}
	states := make([]MigrationState, 0, len(statuses))
	for _, s := range statuses {
		states = append(states, MigrationState{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return states, nil
}

// migrationProvider builds a goose provider for db. It must not be closed:
// closing it would close db.
func (db *DB) migrationProvider() (*goose.Provider, error) {
	files, err := Migrations(db.Dialect)
	if err != nil {
		return nil, err
	}
	// Only our embedded files count, never Go migrations registered in
	// goose's package-level registry.
	options := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	gooseDialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gooseDialect = goose.DialectPostgres
		// Several gateway instances may start together against one
		// database; an advisory lock makes them migrate one at a time.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("creating migration lock: %w", err)
		}
		options = append(options, goose.WithSessionLocker(locker))
	}
	provider, err := goose.NewProvider(gooseDialect, db.DB, files, options...)
	if err != nil {
		return nil, fmt.Errorf("loading %s migrations: %w", db.Dialect, err)
	}
	return provider, nil
}
