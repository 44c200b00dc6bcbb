package db_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		url       string
		wantParts []string
		notParts  []string
	}{
		{"unknown scheme names the accepted ones", "mysql://root:pw@localhost/wx", []string{`unknown database URL scheme "mysql"`, "sqlite://", "postgres://", "postgresql://"}, nil},
		{"no scheme", "data/wxgate.db", []string{"no scheme", "sqlite://"}, nil},
		{"sqlite in memory", "sqlite://:memory:", []string{"in-memory", "use a file", "WAL"}, nil},
		{"sqlite shared memory", "sqlite://file:x?mode=memory", []string{"in-memory"}, nil},
		{"sqlite without path", "sqlite://", []string{"no file path"}, nil},
		{"sqlite with parameters", "sqlite://data/x.db?_pragma=foo", []string{"take no parameters"}, nil},
		{"postgres unreachable hides the password", "postgres://wx:hunter2hunter2@127.0.0.1:1/wx?sslmode=disable&connect_timeout=5", []string{"connecting to PostgreSQL at postgres://wx:****@127.0.0.1:1/wx"}, []string{"hunter2"}},
		{"postgres invalid hides the password", "postgres://wx:hunter2hunter2@127.0.0.1:notaport/wx", []string{"not a valid PostgreSQL URL"}, []string{"hunter2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			database, err := db.Open(t.Context(), tt.url)
			if err == nil {
				database.Close()
				t.Fatal("Open succeeded, want an error")
			}
			for _, part := range tt.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
			for _, part := range tt.notParts {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q contains %q", err, part)
				}
			}
		})
	}
}

func TestOpenSQLiteRelativePathAndSettings(t *testing.T) {
	// t.Chdir: not parallel.
	t.Chdir(t.TempDir())
	database, err := db.Open(t.Context(), "sqlite://data/nested/wxgate.db")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer database.Close()
	if database.Dialect != db.SQLite || database.URL != "sqlite://data/nested/wxgate.db" {
		t.Errorf("DB = %q %q", database.Dialect, database.URL)
	}
	if _, err := os.Stat(filepath.Join("data", "nested", "wxgate.db")); err != nil {
		t.Errorf("database file not created: %v", err)
	}

	// Every connection of the pool gets the pragmas, so hold several at once.
	ctx := t.Context()
	for range 3 {
		conn, err := database.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"foreign_keys": "1",
			"busy_timeout": "10000",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", pragma, err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
			}
		}
	}
}

func TestOpenSQLiteAbsolutePath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "wxgate.db")
	database, err := db.Open(t.Context(), "sqlite://"+path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer database.Close()
	if err := database.PingContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not created at %s: %v", path, err)
	}
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"sqlite://data/wxgate.db", "sqlite://data/wxgate.db"},
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		{"postgres://wx:secret@db:5432/wx", "postgres://wx:****@db:5432/wx"},
		{"postgresql://db/wx?password=secret", "postgresql://db/wx?password=****"},
		{"postgres://wx:se%7Bcret@[bad/wx", "postgres://****"},
	}
	for _, tt := range tests {
		if got := db.MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	shanghai := time.FixedZone("CST", 8*3600)
	in := time.Date(2026, 11, 24, 18, 0, 0, 123456789, shanghai)
	got := db.Timestamp(in)
	want := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
	if got != want {
		t.Errorf("Timestamp = %v, want %v", got, want)
	}
}

func TestOpenPostgresPoolSettings(t *testing.T) {
	t.Parallel()
	serverURL := os.Getenv("WXGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	database, err := db.Open(ctx, serverURL)
	if err != nil {
		if os.Getenv("WXGATE_REQUIRE_POSTGRES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer database.Close()
	if database.Dialect != db.Postgres {
		t.Errorf("Dialect = %q", database.Dialect)
	}
	if got := database.Stats().MaxOpenConnections; got != 20 {
		t.Errorf("MaxOpenConnections = %d, want 20", got)
	}
}
