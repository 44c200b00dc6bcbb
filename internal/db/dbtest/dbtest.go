// Package dbtest gives tests a fresh, migrated database of each dialect.
//
// SQLite always runs. PostgreSQL runs when the server named by
// WXGATE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
// is reachable; each test gets its own database on it, dropped afterwards.
// Set WXGATE_REQUIRE_POSTGRES=1 (as CI does) to fail instead of skipping
// when the server is unreachable.
//
// Every helper is safe to use from parallel tests: nothing is shared
// between calls.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

const (
	defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	setupTimeout       = time.Minute
)

// Each runs fn as the subtests "sqlite" and "postgres", each with its own
// fresh migrated database.
func Each(t *testing.T, fn func(t *testing.T, db *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, SQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, Postgres(t))
	})
}

// SQLite returns a migrated SQLite database in a file of t's temporary
// directory, closed when t ends.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	path := filepath.Join(t.TempDir(), "wxgate.db")
	database, err := db.Open(ctx, "sqlite://"+filepath.ToSlash(path))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { database.Close() })
	if err := database.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return database
}

// Postgres returns a migrated database created for t on the test server,
// dropped when t ends. It skips t when the server is unreachable, unless
// WXGATE_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	database, err := db.Open(ctx, PostgresURL(t))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { database.Close() })
	if err := database.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return database
}

// PostgresURL creates an empty database for t on the test server and
// returns its URL, for a test that hands it to a process of its own; the
// database is dropped when t ends. It skips t like Postgres.
func PostgresURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	serverURL := os.Getenv("WXGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = defaultPostgresURL
	}
	admin, err := db.Open(ctx, serverURL)
	if err != nil {
		message := fmt.Sprintf("postgres unreachable at %s: %v", db.MaskURL(serverURL), err)
		if os.Getenv("WXGATE_REQUIRE_POSTGRES") == "1" {
			t.Fatal(message)
		}
		t.Skip(message)
	}
	t.Cleanup(func() { admin.Close() })

	name := "wxgate_test_" + randomSuffix(t)
	// The name is letters, digits and underscores: it needs no quoting.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("dbtest: creating database %s: %v", name, err)
	}
	// Registered before the caller's Close of the database so it runs after it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		// FORCE ends connections a test may have leaked.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: dropping database %s: %v", name, err)
		}
	})

	testURL, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("dbtest: parsing %s: %v", db.MaskURL(serverURL), err)
	}
	testURL.Path = "/" + name
	return testURL.String()
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("dbtest: random database name: %v", err)
	}
	return hex.EncodeToString(b)
}
