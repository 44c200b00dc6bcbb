package msglog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func setup(t *testing.T, d *db.DB, opts msglog.Options) *msglog.Store {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	s := msglog.NewStore(d, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func entry(account, key, openid string) msglog.Entry {
	return msglog.Entry{
		Account:    account,
		DedupKey:   key,
		OpenID:     openid,
		MsgType:    "text",
		MsgID:      6054768590064713728,
		Fields:     []byte(`{"Content":"hi","MsgId":6054768590064713728}`),
		RawXML:     []byte("<xml><Content><![CDATA[hi]]></Content></xml>"),
		ReceivedAt: t0,
		Status:     msglog.StatusReplied,
		ReplyBody:  []byte("<xml>reply " + key + "</xml>"),
	}
}

func TestRecordAndDuplicate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{})
		ctx := t.Context()

		first, err := s.Record(ctx, entry("main", "msg:1", "o1"))
		if err != nil {
			t.Fatal(err)
		}
		if first.Duplicate || first.ID == 0 || first.Status != msglog.StatusReplied {
			t.Fatalf("first = %+v", first)
		}

		retry := entry("main", "msg:1", "o1")
		retry.ReplyBody = []byte("<xml>a different reply</xml>")
		second, err := s.Record(ctx, retry)
		if err != nil {
			t.Fatal(err)
		}
		if !second.Duplicate || second.ID != first.ID || string(second.ReplyBody) != "<xml>reply msg:1</xml>" {
			t.Fatalf("retry = %+v, want the first delivery's row and reply", second)
		}

		// The same key in another account is another push.
		other, err := s.Record(ctx, entry("shop", "msg:1", "o1"))
		if err != nil || other.Duplicate {
			t.Fatalf("other account = %+v, %v", other, err)
		}

		m, err := s.Get(ctx, "main", "msg:1")
		if err != nil {
			t.Fatal(err)
		}
		if m.MsgID != 6054768590064713728 || m.OpenID != "o1" || m.MsgType != "text" || !m.ReceivedAt.Equal(t0) ||
			m.ReplyStatus != msglog.StatusReplied || m.HandledAt == nil {
			t.Errorf("stored = %+v", m)
		}
		var fields map[string]any
		if err := json.Unmarshal(m.Fields, &fields); err != nil || fields["Content"] != "hi" {
			t.Errorf("fields = %s (%v)", m.Fields, err)
		}
		if n, _ := s.Count(ctx, ""); n != 2 {
			t.Errorf("count = %d, want 2", n)
		}
	})
}

func TestRecordEventWithoutMsgID(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{})
		e := entry("main", "evt:o1:123:abc", "o1")
		e.MsgType, e.Event, e.MsgID, e.Status, e.ReplyBody = "event", "subscribe", 0, msglog.StatusEmpty, nil
		if _, err := s.Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		m, err := s.Get(t.Context(), "main", e.DedupKey)
		if err != nil {
			t.Fatal(err)
		}
		if m.MsgID != 0 || m.Event != "subscribe" || m.ReplyStatus != msglog.StatusEmpty || m.ReplyBody != "" {
			t.Errorf("stored = %+v", m)
		}
	})
}

// Concurrent callers share transactions; each still gets its own answer,
// and deliveries of one push in the same batch count once.
func TestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{MaxBatch: 16, MaxWait: 2 * time.Millisecond})
		const pushes, deliveries = 100, 3
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			news    = map[string]int{}
			ids     = map[string]map[int64]bool{}
			replies = map[string]map[string]bool{}
		)
		for i := range pushes {
			key := fmt.Sprintf("msg:%d", i)
			ids[key] = map[int64]bool{}
			replies[key] = map[string]bool{}
		}
		for i := range pushes {
			key := fmt.Sprintf("msg:%d", i)
			for j := range deliveries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e := entry("main", key, fmt.Sprintf("o%d", i%7))
					e.ReplyBody = []byte(fmt.Sprintf("reply %d", j))
					res, err := s.Record(context.Background(), e)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if !res.Duplicate {
						news[key]++
					}
					ids[key][res.ID] = true
					replies[key][string(res.ReplyBody)] = true
				}()
			}
		}
		wg.Wait()
		for key := range ids {
			if news[key] != 1 || len(ids[key]) != 1 || len(replies[key]) != 1 {
				t.Errorf("%s: %d new, ids %v, replies %v; want one row and one reply for every delivery", key, news[key], ids[key], replies[key])
			}
		}
		if n, _ := s.Count(t.Context(), "main"); n != pushes {
			t.Errorf("count = %d, want %d", n, pushes)
		}
	})
}

// A row the database refuses fails alone, not the batch it was in.
func TestBadRowFailsAlone(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{MaxBatch: 8, MaxWait: 20 * time.Millisecond})
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := entry("main", fmt.Sprintf("msg:%d", i), "o1")
				if i == 3 {
					e.Fields = []byte("{not json")
				}
				_, errs[i] = s.Record(context.Background(), e)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i == 3) != (err != nil) {
				t.Errorf("row %d: err = %v", i, err)
			}
		}
		if n, _ := s.Count(t.Context(), "main"); n != 5 {
			t.Errorf("count = %d, want 5", n)
		}
	})
}

func TestSetOutcome(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		later := t0.Add(3 * time.Second)
		s := setup(t, d, msglog.Options{Now: func() time.Time { return later }})
		ctx := t.Context()
		if _, err := s.Record(ctx, entry("main", "msg:9", "o1")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetOutcome(ctx, "main", "msg:9", msglog.StatusDeferred, nil); err != nil {
			t.Fatal(err)
		}
		m, err := s.Get(ctx, "main", "msg:9")
		if err != nil {
			t.Fatal(err)
		}
		if m.ReplyStatus != msglog.StatusDeferred || m.ReplyBody != "" || m.HandledAt == nil || !m.HandledAt.Equal(later) {
			t.Errorf("after SetOutcome: %+v", m)
		}
		// A retry now gets the deferred outcome: no reply.
		res, err := s.Record(ctx, entry("main", "msg:9", "o1"))
		if err != nil || !res.Duplicate || res.Status != msglog.StatusDeferred || len(res.ReplyBody) != 0 {
			t.Errorf("retry = %+v, %v", res, err)
		}
		if err := s.SetOutcome(ctx, "main", "nope", msglog.StatusEmpty, nil); !errors.Is(err, msglog.ErrNotFound) {
			t.Errorf("unknown key: err = %v", err)
		}
		if err := s.SetOutcome(ctx, "main", "msg:9", "bogus", nil); err == nil {
			t.Error("unknown status accepted")
		}
	})
}

func TestListAndRetention(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := setup(t, d, msglog.Options{})
		ctx := t.Context()
		for i := range 6 {
			e := entry("main", fmt.Sprintf("msg:%d", i), []string{"alice", "bob"}[i%2])
			e.ReceivedAt = t0.Add(time.Duration(i) * time.Hour)
			if _, err := s.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		alice, err := s.ListByOpenID(ctx, "main", "alice", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(alice) != 2 || alice[0].DedupKey != "msg:4" || alice[1].DedupKey != "msg:2" {
			t.Errorf("alice newest two = %v", keys(alice))
		}
		page2, err := s.List(ctx, msglog.Filter{Account: "main", BeforeID: alice[1].ID, OpenID: "alice"})
		if err != nil || len(page2) != 1 || page2[0].DedupKey != "msg:0" {
			t.Errorf("next page = %v, %v", keys(page2), err)
		}

		n, err := s.DeleteOlderThan(ctx, t0.Add(150*time.Minute))
		if err != nil || n != 3 {
			t.Fatalf("deleted %d, %v; want 3", n, err)
		}
		all, _ := s.List(ctx, msglog.Filter{Account: "main"})
		if got := keys(all); fmt.Sprint(got) != "[msg:5 msg:4 msg:3]" {
			t.Errorf("kept %v", got)
		}
	})
}

func TestCloseFlushesAndRefuses(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	s := msglog.NewStore(d, msglog.Options{MaxWait: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Record(context.Background(), entry("main", fmt.Sprintf("msg:%d", i), "o")); err != nil && !errors.Is(err, msglog.ErrClosed) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s.Close()
	if _, err := s.Record(t.Context(), entry("main", "late", "o")); !errors.Is(err, msglog.ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
	var n int
	if err := d.QueryRowContext(t.Context(), `SELECT count(*) FROM inbound_messages`).Scan(&n); err != nil || n != 20 {
		t.Errorf("rows = %d, %v; want 20", n, err)
	}
}

func keys(ms []msglog.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.DedupKey)
	}
	return out
}
