package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TableCopy is what CopySQLiteToPostgres did with one table.
type TableCopy struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// notCopied are the tables whose rows do not move: migration bookkeeping
// (each side has its own), SQLite's own, River's (the queue copies its
// pending jobs itself), and leases, which name processes of the old
// deployment.
func notCopied(table string) bool {
	return table == "goose_db_version" || table == "leases" || strings.HasPrefix(table, "sqlite_") || strings.HasPrefix(table, "river_")
}

// copyBatch is the number of rows per INSERT; PostgreSQL takes at most
// 65 535 parameters a statement.
const copyBatch = 500

// CopySQLiteToPostgres copies every wxgate table of from (SQLite) into
// tx, a transaction on to (PostgreSQL), converting SQLite's values to the
// target columns' types, then moves the identity sequences past the
// copied ids. Both databases must be migrated to the same version and the
// target's tables must be empty: nothing is merged.
func CopySQLiteToPostgres(ctx context.Context, from, to *DB, tx *sql.Tx) ([]TableCopy, error) {
	if from.Dialect != SQLite || to.Dialect != Postgres {
		return nil, fmt.Errorf("copy data: from SQLite to PostgreSQL only (got %s → %s)", from.Dialect, to.Dialect)
	}
	if err := sameVersion(ctx, from, to); err != nil {
		return nil, err
	}
	// One read transaction: every table from the same snapshot.
	src, err := from.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("copy data: reading the source: %w", err)
	}
	defer src.Rollback()
	tables, err := sqliteTables(ctx, src)
	if err != nil {
		return nil, err
	}
	if tables, err = parentsFirst(ctx, tx, tables); err != nil {
		return nil, err
	}
	var done []TableCopy
	for _, table := range tables {
		if notCopied(table) {
			continue
		}
		cols, err := postgresColumns(ctx, tx, table)
		if err != nil {
			return nil, err
		}
		if len(cols) == 0 {
			return nil, fmt.Errorf("copy data: table %s is missing in PostgreSQL", table)
		}
		var existing int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&existing); err != nil {
			return nil, fmt.Errorf("copy data: %s: %w", table, err)
		}
		if existing > 0 {
			return nil, fmt.Errorf("copy data: table %s of the target already has %d rows; migrate-data copies into an empty database only — 目标数据库的 %s 表已有数据，只能迁移到空数据库", table, existing, table)
		}
		n, err := copyTable(ctx, src, tx, table, cols)
		if err != nil {
			return nil, err
		}
		done = append(done, TableCopy{Table: table, Rows: n})
	}
	return done, nil
}

func sameVersion(ctx context.Context, a, b *DB) error {
	va, err := latestApplied(ctx, a)
	if err != nil {
		return err
	}
	vb, err := latestApplied(ctx, b)
	if err != nil {
		return err
	}
	if va != vb {
		return fmt.Errorf("copy data: the source is at migration %d and the target at %d; migrate both with the same wxgate first", va, vb)
	}
	return nil
}

func latestApplied(ctx context.Context, d *DB) (int64, error) {
	states, err := d.MigrationStatus(ctx)
	if err != nil {
		return 0, err
	}
	var v int64
	for _, s := range states {
		if !s.Applied {
			return 0, fmt.Errorf("copy data: the %s database lacks migration %d; run wxgate migrate on it first", d.Dialect, s.Version)
		}
		v = max(v, s.Version)
	}
	return v, nil
}

func sqliteTables(ctx context.Context, d *sql.Tx) ([]string, error) {
	rows, err := d.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("copy data: listing tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// parentsFirst orders tables so that each comes after the tables its
// foreign keys reference (in the target's schema), so that every row
// inserted finds its parent.
func parentsFirst(ctx context.Context, tx *sql.Tx, tables []string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
		FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, fmt.Errorf("copy data: reading foreign keys: %w", err)
	}
	parents := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			rows.Close()
			return nil, err
		}
		parents[child] = append(parents[child], parent)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	placed := map[string]bool{}
	var place func(t string, depth int)
	place = func(t string, depth int) {
		if placed[t] || depth > len(tables) {
			return
		}
		for _, p := range parents[t] {
			if p != t {
				place(p, depth+1)
			}
		}
		if !placed[t] && slices.Contains(tables, t) {
			placed[t] = true
			out = append(out, t)
		}
	}
	for _, t := range tables {
		place(t, 0)
	}
	return out, nil
}

type pgColumn struct {
	name, dataType string
	identity       bool // an identity or serial column, whose sequence moves on
}

func postgresColumns(ctx context.Context, tx *sql.Tx, table string) ([]pgColumn, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type, is_identity = 'YES' OR COALESCE(column_default, '') LIKE 'nextval(%'
		FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, fmt.Errorf("copy data: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var cols []pgColumn
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.dataType, &c.identity); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func copyTable(ctx context.Context, from, tx *sql.Tx, table string, cols []pgColumn) (int64, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	list := strings.Join(names, ", ")
	rows, err := from.QueryContext(ctx, `SELECT `+list+` FROM `+table+` ORDER BY rowid`)
	if err != nil {
		return 0, fmt.Errorf("copy data: reading %s: %w", table, err)
	}
	defer rows.Close()
	var (
		batch []any
		n     int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var sb strings.Builder
		sb.WriteString(`INSERT INTO ` + table + ` (` + list + `) VALUES `)
		for r := 0; r < len(batch)/len(cols); r++ {
			if r > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('(')
			for c := range cols {
				if c > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("$" + strconv.Itoa(r*len(cols)+c+1))
			}
			sb.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, sb.String(), batch...); err != nil {
			return fmt.Errorf("copy data: writing %s: %w", table, err)
		}
		batch = batch[:0]
		return nil
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("copy data: reading %s: %w", table, err)
		}
		for i, c := range cols {
			v, err := convertValue(vals[i], c.dataType)
			if err != nil {
				return 0, fmt.Errorf("copy data: %s.%s row %d: %w", table, c.name, n+1, err)
			}
			batch = append(batch, v)
		}
		n++
		if len(batch) >= copyBatch*len(cols) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("copy data: reading %s: %w", table, err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	for _, c := range cols {
		if !c.identity {
			continue
		}
		// The next id continues after the copied ones (setval with
		// is_called false when the table is empty: the next id is 1).
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(max(`+c.name+`), 0) + 1, false) FROM `+table,
			table, c.name); err != nil {
			return 0, fmt.Errorf("copy data: moving the sequence of %s.%s: %w", table, c.name, err)
		}
	}
	return n, nil
}

// sqliteTimeLayouts are the ways a time is written in wxgate's SQLite
// files (the driver's sqlite format, RFC 3339 from older rows).
var sqliteTimeLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

// convertValue turns a value read from SQLite into one for a PostgreSQL
// column of the data type given.
func convertValue(v any, dataType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch dataType {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case string:
			return strconv.ParseBool(x)
		}
	case "timestamp with time zone", "timestamp without time zone":
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			for _, layout := range sqliteTimeLayouts {
				if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
					return t.UTC(), nil
				}
			}
			return nil, fmt.Errorf("%q is not a time", x)
		}
	case "jsonb", "json", "text", "character varying":
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
		return v, nil
	case "bytea":
		if x, ok := v.(string); ok {
			return []byte(x), nil
		}
		return v, nil
	case "integer", "bigint", "smallint", "double precision", "real", "numeric":
		return v, nil
	}
	if slices.Contains([]string{"USER-DEFINED", "ARRAY"}, dataType) {
		return nil, fmt.Errorf("column type %s is not copied", dataType)
	}
	return v, nil
}
