package msglog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
)

// One request at a time, each right after the previous answer, is written
// without waiting for company: the writer may try a short wait once in a
// while, never the whole MaxWait.
func TestLoneRequestsDoNotWait(t *testing.T) {
	t.Parallel()
	const maxWait = time.Second
	s := setup(t, dbtest.SQLite(t), msglog.Options{MaxWait: maxWait})
	for i := range 40 {
		start := time.Now()
		if _, err := s.Record(t.Context(), entry("main", fmt.Sprintf("msg:%d", i), "o1")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= maxWait/2 {
			t.Fatalf("request %d took %v; a lone request must not wait MaxWait (%v)", i, d, maxWait)
		}
	}
}
