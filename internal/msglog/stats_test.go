package msglog_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
)

func TestStatsCountKindsRepliesRetriesAndHours(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{})
		ctx := t.Context()
		since := t0.Add(-24 * time.Hour)
		record := func(key, msgType, event string, at time.Time, status msglog.Status) {
			t.Helper()
			e := entry("main", key, "o1")
			e.MsgType, e.Event, e.ReceivedAt, e.Status = msgType, event, at, status
			if _, err := s.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		record("old", "text", "", since.Add(-time.Minute), msglog.StatusReplied) // before the window
		record("t1", "text", "", since.Add(30*time.Minute), msglog.StatusReplied)
		record("t2", "text", "", since.Add(90*time.Minute), msglog.StatusEmpty)
		record("s1", "event", "subscribe", since.Add(90*time.Minute), msglog.StatusReplied)
		record("i1", "image", "", t0.Add(-time.Minute), msglog.StatusEmpty)
		other := entry("other", "x", "o2")
		other.ReceivedAt = t0.Add(-time.Hour)
		if _, err := s.Record(ctx, other); err != nil {
			t.Fatal(err)
		}
		// WeChat retries t1 twice after it was logged, and s1 three times at
		// once (the retries may share one batch).
		record("t1", "text", "", since.Add(30*time.Minute), msglog.StatusReplied)
		record("t1", "text", "", since.Add(30*time.Minute), msglog.StatusReplied)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { record("s1", "event", "subscribe", since.Add(90*time.Minute), msglog.StatusReplied) })
		}
		wg.Wait()

		st, err := s.Stats(ctx, "main", db.Buckets{Since: since, Step: time.Hour, Count: 24})
		if err != nil {
			t.Fatal(err)
		}
		if st.Received != 4 || st.Replied != 2 || st.Duplicates != 5 {
			t.Fatalf("received %d, replied %d, duplicates %d; want 4, 2, 5", st.Received, st.Replied, st.Duplicates)
		}
		want := []msglog.TypeCount{{"text", 2}, {"event:subscribe", 1}, {"image", 1}}
		if len(st.ByType) != len(want) {
			t.Fatalf("by type %v, want %v", st.ByType, want)
		}
		for i := range want {
			if st.ByType[i] != want[i] {
				t.Fatalf("by type %v, want %v", st.ByType, want)
			}
		}
		if len(st.PerStep) != 24 || st.PerStep[0] != 1 || st.PerStep[1] != 2 || st.PerStep[23] != 1 {
			t.Fatalf("per hour %v, want 1 in hour 0, 2 in hour 1, 1 in hour 23", st.PerStep)
		}
		var sum int64
		for _, n := range st.PerStep {
			sum += n
		}
		if sum != st.Received {
			t.Fatalf("per hour sums to %d, received %d", sum, st.Received)
		}
	})
}
