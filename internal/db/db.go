// Package db opens wxgate's database, SQLite or PostgreSQL chosen by the
// URL, and migrates its schema.
//
// Queries are written once for both dialects: $1, $2 … placeholders (both
// drivers accept them; in SQLite a repeated $1 is the same parameter),
// INSERT … ON CONFLICT … DO NOTHING / DO UPDATE and RETURNING. Times are
// stored and read back in UTC; pass them through Timestamp so both
// dialects keep the same precision. BOOLEAN columns scan into bool on both.
// JSON columns are TEXT on SQLite and JSONB on PostgreSQL: write them as
// string, and compare their content, not their text, since PostgreSQL
// normalises spacing and key order.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the SQL dialect of a database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database and the dialect it speaks.
type DB struct {
	*sql.DB
	Dialect Dialect
	// URL is the database URL with its password masked, for display.
	URL string
	// rawURL is the URL with its password, for OpenListenerPool; never shown.
	rawURL string
	// gate admits one writer at a time on SQLite (sqlitegate.go), and path
	// is the SQLite file; nil and empty on PostgreSQL.
	gate *writeGate
	path string
}

const acceptedURLs = "sqlite://relative/path.db, sqlite:///absolute/path.db or postgres://user:password@host:5432/dbname (postgresql:// also works)"

// Pool settings.
//
// PostgreSQL keeps as many idle connections as it may open: with fewer,
// every burst of work (50 push workers, each with a few short queries)
// closed connections beyond the idle limit and opened new ones a moment
// later, and a PostgreSQL connection costs a backend process to start.
// That churn held sends to under half their rate (docs/benchmarks.md, "Push
// throughput"). A quiet gateway gives them back after
// postgresConnMaxIdleTime.
const (
	postgresMaxOpenConns    = 20
	postgresMaxIdleConns    = postgresMaxOpenConns
	postgresConnMaxIdleTime = 5 * time.Minute
	postgresConnMaxLifetime = 30 * time.Minute
	postgresPingTimeout     = 10 * time.Second

	// SQLite in WAL mode lets readers run beside the single writer; writers
	// queue on the file's write gate (sqlitegate.go).
	sqliteMaxOpenConns = 8
)

// sqliteParams are set on every SQLite connection.
//   - busy_timeout: wait up to 10 s for the write lock instead of failing at once.
//   - journal_mode WAL: readers do not block the writer nor the writer them.
//   - foreign_keys: SQLite leaves them off unless asked.
//   - synchronous NORMAL: safe with WAL, much faster than FULL.
//   - _txlock=immediate: transactions take the write lock at BEGIN, so
//     writers queue on busy_timeout instead of failing with SQLITE_BUSY when a
//     read lock cannot be upgraded.
//   - _time_format=sqlite, _timezone=UTC: times are written as
//     "2006-01-02 15:04:05.999999999+00:00", which sorts as text in time
//     order, and read back in UTC. (The driver's default writes
//     time.Time.String(), which neither sorts nor compares.)
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" +
	"&_txlock=immediate&_time_format=sqlite&_timezone=UTC"

// Open opens and pings the database at rawURL. It does not migrate; call
// Migrate for that.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fmt.Errorf("database URL has no scheme: use %s", acceptedURLs)
	}
	switch scheme {
	case "sqlite":
		return openSQLite(ctx, rawURL, rest)
	case "postgres", "postgresql":
		return openPostgres(ctx, rawURL)
	default:
		return nil, fmt.Errorf("unknown database URL scheme %q: use %s", scheme, acceptedURLs)
	}
}

func openSQLite(ctx context.Context, rawURL, path string) (*DB, error) {
	switch {
	case path == "":
		return nil, fmt.Errorf("database URL %q has no file path: use %s", rawURL, acceptedURLs)
	case strings.Contains(path, ":memory:") || strings.Contains(path, "mode=memory"):
		return nil, fmt.Errorf("database URL %q: an in-memory SQLite database is not supported, use a file such as sqlite://data/wxgate.db (WAL mode and several connections need one)", rawURL)
	case strings.ContainsAny(path, "?#"):
		return nil, fmt.Errorf("database URL %q: sqlite:// URLs take no parameters; wxgate sets the connection options itself", rawURL)
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("creating the directory of the SQLite database: %w", err)
	}
	sqlDB, gate, err := openSQLitePool(path, sqliteMaxOpenConns)
	if err != nil {
		return nil, err
	}

	// journal_mode(WAL) fails silently on file systems without shared
	// memory; without WAL, readers would block the writer.
	var journalMode string
	if err := sqlDB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journalMode); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("opening SQLite database %s: %w", path, err)
	}
	if !strings.EqualFold(journalMode, "wal") {
		sqlDB.Close()
		return nil, fmt.Errorf("opening SQLite database %s: journal mode is %q, not WAL; put the file on a local file system", path, journalMode)
	}
	return &DB{DB: sqlDB, Dialect: SQLite, URL: rawURL, gate: gate, path: path}, nil
}

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	masked := MaskURL(rawURL)
	config, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx redacts the password in its message.
		return nil, fmt.Errorf("database URL %s is not a valid PostgreSQL URL (are special characters in the password %%-encoded?): %w", masked, err)
	}
	sqlDB := stdlib.OpenDB(*config, stdlib.OptionAfterConnect(scanTimesInUTC))
	sqlDB.SetMaxOpenConns(postgresMaxOpenConns)
	sqlDB.SetMaxIdleConns(postgresMaxIdleConns)
	sqlDB.SetConnMaxIdleTime(postgresConnMaxIdleTime)
	sqlDB.SetConnMaxLifetime(postgresConnMaxLifetime)

	pingCtx, cancel := context.WithTimeout(ctx, postgresPingTimeout)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL at %s: %w", masked, err)
	}
	return &DB{DB: sqlDB, Dialect: Postgres, URL: masked, rawURL: rawURL}, nil
}

// scanTimesInUTC makes TIMESTAMPTZ values come back in UTC, as they do
// from SQLite, instead of in the server process's local time zone.
func scanTimesInUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

// MaskURL hides the password of a database URL, in the user part or in a
// password= parameter.
func MaskURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		scheme, _, _ := strings.Cut(rawURL, "://")
		return scheme + "://****"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	query := u.Query()
	if query.Has("password") {
		query.Set("password", "****")
		u.RawQuery = query.Encode()
	}
	// url.URL.String percent-encodes the asterisks.
	return strings.ReplaceAll(u.String(), "%2A%2A%2A%2A", "****")
}

// Timestamp returns t in UTC, truncated to the microsecond that PostgreSQL
// keeps, so a time written and read back is equal on both dialects.
func Timestamp(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// OpenListenerPool opens a pgx pool of one connection on d, a PostgreSQL
// database, for LISTEN: database/sql cannot listen, and River wakes its
// workers on a job insert through a notification instead of at its next
// poll.
func (d *DB) OpenListenerPool(ctx context.Context) (*pgxpool.Pool, error) {
	if d.Dialect != Postgres {
		return nil, fmt.Errorf("a LISTEN pool on a %s database", d.Dialect)
	}
	cfg, err := pgxpool.ParseConfig(d.rawURL)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %w", d.URL, err)
	}
	cfg.MinConns = 0
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a LISTEN connection to %s: %w", d.URL, err)
	}
	return pool, nil
}
