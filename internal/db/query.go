package db

import (
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// Params collects the parameters of a query assembled from optional parts
// (filters, a paging position, IN lists) and numbers their placeholders.
type Params struct {
	args []any
}

// NewParams starts with the fixed parameters of a query, $1 … $len(fixed).
func NewParams(fixed ...any) *Params {
	return &Params{args: append([]any(nil), fixed...)}
}

// Add appends v and returns its placeholder ($n).
func (p *Params) Add(v any) string {
	p.args = append(p.args, v)
	return "$" + strconv.Itoa(len(p.args))
}

// In appends each value and returns their placeholders for an IN (…) list.
func (p *Params) In(values []string) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Add(v))
	}
	return b.String()
}

// Args are the parameters in placeholder order, for QueryContext.
func (p *Params) Args() []any { return p.args }

// PageLimit is the number of rows a page holds: def when limit is not
// positive, at most max.
func PageLimit(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}

// MaxInList is how many values one IN (…) list holds; longer lists are
// queried in parts (InChunks) to stay within the drivers' parameter limits.
const MaxInList = 500

// InChunks calls fn with consecutive parts of values, each of at most
// MaxInList, and stops at the first error.
func InChunks[T any](values []T, fn func(part []T) error) error {
	for start := 0; start < len(values); start += MaxInList {
		if err := fn(values[start:min(start+MaxInList, len(values))]); err != nil {
			return err
		}
	}
	return nil
}

// Buckets cuts the time from Since on into Count steps of Step, for
// counting rows per hour or per day in SQL (BucketOf) and reading the
// counts back (Scan).
type Buckets struct {
	Since time.Time
	Step  time.Duration
	Count int
}

// BucketOf is an SQL expression for the bucket number of a timestamp
// column (0 for the step starting at Since), in d's dialect. The query
// keeps rows before Since out (column >= Since): SQL's integer division
// rounds toward zero, so they would land in step 0. Rows after the last
// step give numbers ≥ Count, which Scan ignores.
func (b Buckets) BucketOf(d *DB, column string) string {
	unix := "CAST(EXTRACT(EPOCH FROM " + column + ") AS BIGINT)"
	if d.Dialect == SQLite {
		// julianday reads the stored "YYYY-MM-DD HH:MM:SS.fff+00:00"
		// text; 2440587.5 is the Julian day of the Unix epoch. The
		// rounding keeps a whole second from falling a hair short.
		unix = "CAST(ROUND((julianday(" + column + ") - 2440587.5) * 86400000) AS BIGINT) / 1000"
	}
	step := int64(b.Step / time.Second)
	if step < 1 {
		step = 1
	}
	// Only integers are spliced in: no user input reaches the SQL text.
	return "((" + unix + " - " + strconv.FormatInt(b.Since.Unix(), 10) + ") / " + strconv.FormatInt(step, 10) + ")"
}

// Start is the time step i starts at.
func (b Buckets) Start(i int) time.Time { return b.Since.Add(time.Duration(i) * b.Step) }

// Scan reads rows of (bucket number, count) into Count counts.
func (b Buckets) Scan(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	out := make([]int64, b.Count)
	for rows.Next() {
		var (
			i int64
			n int64
		)
		if err := rows.Scan(&i, &n); err != nil {
			return nil, err
		}
		if i >= 0 && i < int64(b.Count) {
			out[i] += n
		}
	}
	return out, rows.Err()
}
