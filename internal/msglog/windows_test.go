package msglog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
)

// The customer-service window, as WeChat keeps it: open for 48 hours after
// a follower's message and for a minute after a follow, scan or click; only
// the account's own log counts, and a long history before the window does
// not hide a push inside it.
func TestOpenWindows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := t0.Add(72 * time.Hour)
		s := setup(t, d, msglog.Options{})
		n := 0
		push := func(account, openid, msgType, event string, at time.Time) {
			t.Helper()
			n++
			e := entry(account, fmt.Sprintf("k%d", n), openid)
			e.MsgType, e.Event, e.ReceivedAt = msgType, event, at
			if _, err := s.Record(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		// In arrival order, as ids grow.
		for i := range 50 {
			push("main", "o-regular", "text", "", t0.Add(time.Duration(i)*time.Minute))
		}
		push("main", "o-old", "text", "", now.Add(-49*time.Hour))
		push("other", "o-elsewhere", "text", "", now.Add(-time.Hour))
		push("main", "o-regular", "text", "", now.Add(-47*time.Hour))
		push("main", "o-followed-late", "event", "subscribe", now.Add(-2*time.Minute))
		push("main", "o-unsubscribed", "event", "unsubscribe", now.Add(-10*time.Second))
		push("main", "o-clicked", "event", "CLICK", now.Add(-30*time.Second))
		push("main", "o-wrote", "image", "", now.Add(-time.Minute))

		w := msglog.NewWindows(d)
		all := []string{"o-regular", "o-old", "o-elsewhere", "o-followed-late", "o-unsubscribed", "o-clicked", "o-wrote", "o-stranger"}
		open, err := w.OpenWindows(t.Context(), "main", all, now)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"o-regular": true, "o-clicked": true, "o-wrote": true}
		for _, o := range all {
			if open[o] != want[o] {
				t.Errorf("%s: window open = %v, want %v", o, open[o], want[o])
			}
		}
		// Once everything is older than the window, nothing is open.
		open, err = w.OpenWindows(t.Context(), "main", all, now.Add(49*time.Hour))
		if err != nil || len(open) != 0 {
			t.Fatalf("two days later: %v, %v; want no open window", open, err)
		}
		// An account with no pushes at all.
		if open, err = w.OpenWindows(t.Context(), "quiet", all, now); err != nil || len(open) != 0 {
			t.Fatalf("an account without pushes: %v, %v", open, err)
		}
	})
}
