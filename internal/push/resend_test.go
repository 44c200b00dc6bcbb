package push_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A recipient that failed (WeChat refused the call) is sent again on
// request once the cause is gone, and the dashboard's stats follow it.
func TestResendFailedRecipientAndStats(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true})
		b.ready(t)
		ctx := context.Background()
		alice, bob := b.follower(t, "alice"), b.follower(t, "bob")
		since := b.clock.Now().Add(-time.Hour).Truncate(time.Hour)
		buckets := db.Buckets{Since: since, Step: time.Hour, Count: 3}

		// WeChat refuses every card (40003, not retried): both fail.
		if _, err := b.sim.SetFault(wechatsim.Fault{Path: templatePath, ErrCode: 40003, Rate: 1}); err != nil {
			t.Fatal(err)
		}
		res := b.send(t, visitRequest(alice, bob), push.SendOptions{})
		m := b.wait(t, res.Accepted.ID, 10*time.Second)
		if m.Counts["failed"] != 2 {
			t.Fatalf("counts %v, want 2 failed", m.Counts)
		}
		st, err := b.svc.Stats(ctx, "main", buckets)
		if err != nil {
			t.Fatal(err)
		}
		if st.Recipients != 2 || st.ByStatus["failed"] != 2 || len(st.Failures) != 1 ||
			st.Failures[0] != (push.FailureCount{Status: "failed", Reason: "invalid_openid", ErrCode: 40003, Count: 2}) {
			t.Fatalf("stats %+v", st)
		}
		if st.PerStep[1] != 2 || st.PerStep[0] != 0 {
			t.Fatalf("per hour %v, want both recipients in the current hour", st.PerStep)
		}

		for who, want := range map[string]int{alice: 1, "o-nobody": 0} {
			list, err := b.svc.ListMessages(ctx, push.ListFilter{Account: "main", Recipient: who, Status: "failed"})
			if err != nil || len(list.Messages) != want {
				t.Fatalf("messages to %s: %+v, %v; want %d", who, list.Messages, err, want)
			}
		}

		// The accounts page shows them as the account's last API errors.
		errs, err := b.svc.RecentErrors(ctx, "main", 5)
		if err != nil || len(errs) != 2 || errs[0].ErrCode != 40003 || errs[0].MessageID != res.Accepted.ID || errs[0].ErrMsg == "" {
			t.Fatalf("recent errors = %+v, %v", errs, err)
		}

		b.sim.ClearFaults()
		r, err := b.svc.Resend(ctx, res.Accepted.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "queued" || r.ErrCode != 0 || r.DoneAt != nil || r.OpenID != alice {
			t.Fatalf("resent recipient %+v", r)
		}
		m = b.waitRecipient(t, res.Accepted.ID, 0, "delivered")
		if m.Recipients[0].Status != "delivered" || m.Recipients[1].Status != "failed" {
			t.Fatalf("recipients %+v", m.Recipients)
		}
		if items := b.inbox(t, oaApp, alice); len(items) != 1 {
			t.Fatalf("alice's inbox has %d cards, want 1", len(items))
		}

		// The follower's timeline has the one message, delivered.
		ds, err := b.svc.DeliveriesTo(ctx, "main", alice, 10)
		if err != nil || len(ds) != 1 || ds[0].MessageID != res.Accepted.ID || ds[0].Status != "delivered" || ds[0].Template != "new_visitor" {
			t.Fatalf("deliveries to alice: %+v, %v", ds, err)
		}

		// Only a failed recipient is sent again.
		var pe *problem.Error
		if _, err := b.svc.Resend(ctx, res.Accepted.ID, 1); !errors.As(err, &pe) || pe.Code != "not_resendable" || pe.Status() != 409 {
			t.Fatalf("resend of a delivered recipient: %v", err)
		}
		if _, err := b.svc.Resend(ctx, res.Accepted.ID, 9); !errors.As(err, &pe) || pe.Code != "recipient_not_found" {
			t.Fatalf("resend of seq 9: %v", err)
		}
		if _, err := b.svc.Resend(ctx, "msg_nope", 1); !errors.Is(err, push.ErrMessageNotFound) {
			t.Fatalf("resend in an unknown message: %v", err)
		}
		st, err = b.svc.Stats(ctx, "main", buckets)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByStatus["delivered"] != 1 || st.ByStatus["failed"] != 1 || st.Recipients != 2 {
			t.Fatalf("stats after the resend %+v", st)
		}
	})
}

// waitRecipient polls until the recipient at index i has the status.
func (b *bundle) waitRecipient(t *testing.T, id string, i int, status string) push.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, err := b.svc.GetMessage(context.Background(), id, push.RecipientPage{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if m.Recipients[i].Status == status {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("recipient %d of %s is %s, not %s", i, id, m.Recipients[i].Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
