package dbtest_test

import (
	"os"
	"slices"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

func TestEachRunsBothDialects(t *testing.T) {
	t.Parallel()
	var ran []db.Dialect
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		ran = append(ran, database.Dialect)
		var n int
		if err := database.QueryRowContext(t.Context(), "SELECT count(*) FROM inbound_messages").Scan(&n); err != nil {
			t.Fatalf("database not migrated: %v", err)
		}
	})
	want := []db.Dialect{db.SQLite, db.Postgres}
	if !slices.Equal(ran, want) && !slices.Equal(ran, want[:1]) {
		t.Errorf("ran %q, want %q", ran, want)
	}
}

func TestPostgresDatabaseIsDropped(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("create", func(t *testing.T) {
		database := dbtest.Postgres(t)
		if err := database.QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Skip("postgres unreachable")
	}

	serverURL := os.Getenv("WXGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := db.Open(t.Context(), serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after the test", name)
	}
}

func TestPostgresSkipsWhenUnreachable(t *testing.T) {
	// t.Setenv: not parallel.
	t.Setenv("WXGATE_TEST_POSTGRES_URL", "postgres://wx:hunter2@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	t.Setenv("WXGATE_REQUIRE_POSTGRES", "")
	skipped := false
	t.Run("unreachable", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		dbtest.Postgres(t)
		t.Error("Postgres returned a database for an unreachable server")
	})
	if !skipped {
		t.Error("the test was not skipped")
	}
}
