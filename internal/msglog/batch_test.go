package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
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

// When the writer is stuck (another writer holds the database) and its
// queue is full, Begin waits for room only until the caller's context
// ends; the rows already queued are written once the database is back.
func TestBeginGivesUpOnAFullQueueWhenCtxEnds(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	s := setup(t, d, msglog.Options{MaxBatch: 1, MaxWait: -1})
	lock, err := d.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// One row for the stuck writer, four for its queue (4 × MaxBatch).
	var queued []*msglog.Pending
	for i := range 5 {
		queued = append(queued, s.Begin(t.Context(), entry("main", fmt.Sprintf("msg:%d", i), "o1")))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The writer may not have taken the first row yet; the queue is full
	// by the second extra row at the latest.
	var refused *msglog.Pending
	for i := 5; i < 7 && refused == nil; i++ {
		p := s.Begin(ctx, entry("main", fmt.Sprintf("msg:%d", i), "o1"))
		select {
		case <-p.Done():
			refused = p
		default:
			queued = append(queued, p)
		}
	}
	if refused == nil {
		t.Fatal("the queue never filled")
	}
	if _, err := refused.Result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Begin on a full queue: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Begin waited %v past its context", d)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	for _, p := range queued {
		if _, err := p.Result(); err != nil {
			t.Fatalf("a queued row: %v", err)
		}
	}
}

// When callers announce their pushes (Expect, then Arrived just before
// Begin), the writer commits as soon as none is on its way instead of
// waiting for more; every push is still written once, and a retry in the
// same batch as its first delivery is still told it is a duplicate.
func TestAnnouncedPushesAreAllWrittenOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		{
			s := setup(t, d, msglog.Options{})
			const callers, distinct = 64, 48
			start := make(chan struct{})
			results := make(chan msglog.Result, callers)
			errs := make(chan error, callers)
			for i := range callers {
				s.Expect()
				go func() {
					<-start
					s.Arrived()
					res, err := s.Record(t.Context(), entry("main", fmt.Sprintf("msg:%d", i%distinct), fmt.Sprintf("o%d", i)))
					if err != nil {
						errs <- err
						return
					}
					results <- res
				}()
			}
			close(start)
			var duplicates int
			for range callers {
				select {
				case err := <-errs:
					t.Fatal(err)
				case res := <-results:
					if res.Duplicate {
						duplicates++
					}
				}
			}
			if duplicates != callers-distinct {
				t.Errorf("%d pushes were told they are duplicates, want %d", duplicates, callers-distinct)
			}
			msgs, err := s.List(t.Context(), msglog.Filter{Account: "main", Limit: 2 * callers})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != distinct {
				t.Errorf("%d rows logged, want %d", len(msgs), distinct)
			}
		}
	})
}
