package db

import (
	"strconv"
	"strings"
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
