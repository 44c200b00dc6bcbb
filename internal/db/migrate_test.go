package db_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

func migrationNames(t *testing.T, dialect db.Dialect) []string {
	t.Helper()
	files, err := db.Migrations(dialect)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrationFoldersMatch(t *testing.T) {
	t.Parallel()
	sqlite := migrationNames(t, db.SQLite)
	postgres := migrationNames(t, db.Postgres)
	if len(sqlite) == 0 {
		t.Fatal("no migrations embedded")
	}
	if !slices.Equal(sqlite, postgres) {
		t.Errorf("migration files differ between dialects:\n sqlite:   %q\n postgres: %q", sqlite, postgres)
	}
}

func TestMigrationsUnknownDialect(t *testing.T) {
	t.Parallel()
	if _, err := db.Migrations("mysql"); err == nil {
		t.Error("Migrations(mysql) succeeded")
	}
}

func TestMigrationStatusBeforeAndAfterMigrate(t *testing.T) {
	t.Parallel()
	database, err := db.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "wxgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close()

	states, err := database.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	if len(states) == 0 || states[0].Version != 1 || states[0].Name != "00001_callback.sql" || states[0].Applied || !states[0].AppliedAt.IsZero() {
		t.Fatalf("before Migrate: %+v", states)
	}

	if err := database.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	states, err = database.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for _, s := range states {
		if !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("after Migrate: %+v", s)
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		// dbtest already migrated: a second run finds nothing to do.
		if err := database.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		states, err := database.MigrationStatus(t.Context())
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		var names []string
		for _, s := range states {
			names = append(names, s.Name)
			if !s.Applied {
				t.Errorf("%s not applied", s.Name)
			}
		}
		if want := migrationNames(t, database.Dialect); !slices.Equal(names, want) {
			t.Errorf("status lists %q, want %q", names, want)
		}

		for _, table := range []string{"inbound_messages", "followers", "reply_rules"} {
			var n int
			if err := database.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})
}
