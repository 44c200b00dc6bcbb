package push_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A sent recipient whose receipt never comes ends unconfirmed after the
// receipt timeout, once, even with two sweeps at once; the message is then
// done; a receipt arriving later still upgrades it.
func TestReceiptTimeout(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		// The receipts are due in an hour: as good as lost.
		b := setup(t, d, setupOptions{work: true, simCfg: wechatsim.Config{JobFinishDelay: time.Hour},
			opts: push.Options{ReceiptTimeout: 10 * time.Minute}})
		b.ready(t)
		ctx := context.Background()
		alice, bob, carol := b.follower(t, "alice"), b.follower(t, "bob"), b.follower(t, "carol")
		res := b.send(t, visitRequest(alice, bob, carol), push.SendOptions{})
		m := b.wait(t, res.Accepted.ID, 30*time.Second, push.StatusSent)
		if m.Done {
			t.Fatalf("message done while its recipients await receipts: %+v", m)
		}

		// Not overdue yet.
		if n, err := b.svc.SweepReceipts(ctx); err != nil || n != 0 {
			t.Fatalf("early sweep = %d, %v", n, err)
		}

		b.clock.set(11 * time.Minute)
		// Two sweeps at once, as two instances might run them: each
		// recipient is marked, and announced, once.
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
		)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := b.svc.SweepReceipts(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		if total != 3 {
			t.Fatalf("sweeps marked %d, want 3", total)
		}
		if n, err := b.svc.SweepReceipts(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep = %d, %v", n, err)
		}

		m, err := b.svc.GetMessage(ctx, res.Accepted.ID, push.RecipientPage{})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Done || m.Total != 3 || m.Counts[push.StatusUnconfirmed] != 3 || len(m.Counts) != 1 {
			t.Fatalf("after the sweep: %+v", m)
		}
		byOpenID := map[string]push.Recipient{}
		for _, r := range m.Recipients {
			if r.Status != push.StatusUnconfirmed || r.Reason != push.ReasonReceiptMissing || r.DoneAt == nil || r.MsgID == 0 {
				t.Errorf("recipient = %+v", r)
			}
			byOpenID[r.OpenID] = r
		}
		if got := b.eventCount(push.EventMessageUnconfirmed); got != 3 {
			t.Errorf("%d message.unconfirmed events, want 3", got)
		}
		list, err := b.svc.ListMessages(ctx, push.ListFilter{Account: "main", Status: push.StatusUnconfirmed})
		if err != nil || len(list.Messages) != 1 || !list.Messages[0].Done {
			t.Errorf("list unconfirmed = %+v, %v", list, err)
		}

		// Late receipts: alice's says delivered, bob's blocked.
		late := func(openid, status string) {
			b.hook(t, "main", &wechat.Message{FromUserName: openid, CreateTime: b.clock.Now().Unix(), MsgType: wechat.MsgTypeEvent,
				Event: wechat.EventTemplateSendJobFinish, JobMsgID: byOpenID[openid].MsgID, Status: status})
		}
		late(alice, wechat.TemplateStatusSuccess)
		late(bob, wechat.TemplateStatusUserBlock)
		m, err = b.svc.GetMessage(ctx, res.Accepted.ID, push.RecipientPage{})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Done || m.Counts[push.StatusDelivered] != 1 || m.Counts[push.StatusBlocked] != 1 || m.Counts[push.StatusUnconfirmed] != 1 {
			t.Fatalf("after late receipts: %+v", m.Counts)
		}
		for _, r := range m.Recipients {
			if r.OpenID == bob && r.Reason != "user_block" {
				t.Errorf("bob = %+v", r)
			}
		}
		if b.eventCount(push.EventMessageDelivered) != 1 || b.eventCount(push.EventMessageFailed) != 1 {
			t.Errorf("late receipt events: delivered %d, failed %d", b.eventCount(push.EventMessageDelivered), b.eventCount(push.EventMessageFailed))
		}
		// A delivered recipient is final: the sweep leaves it alone.
		b.clock.set(time.Hour)
		if n, err := b.svc.SweepReceipts(ctx); err != nil || n != 0 {
			t.Fatalf("sweep after receipts = %d, %v", n, err)
		}
	})
}

// The sweep works through a backlog larger than one batch.
func TestReceiptTimeoutBatches(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{simCfg: wechatsim.Config{JobFinishDelay: time.Hour}})
		b.ready(t)
		ctx := context.Background()
		alice := b.follower(t, "alice")
		const n = 1203
		res := b.send(t, visitRequest(alice), push.SendOptions{})
		// More recipients, sent as the worker would mark them, without
		// calling WeChat.
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for seq := 2; seq <= n; seq++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO push_recipients (message_id, seq, account, to_kind, to_value, openid, channel, status,
    created_at, updated_at) SELECT message_id, $1, account, to_kind, to_value, openid, channel, status, created_at, updated_at
FROM push_recipients WHERE message_id = $2 AND seq = 1`, seq, res.Accepted.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		b.exec(t, `UPDATE push_recipients SET status = 'sent', msgid = id + 1000, sent_at = $1 WHERE message_id = $2`,
			db.Timestamp(b.clock.Now()), res.Accepted.ID)
		b.clock.set(push.DefaultReceiptTimeout + time.Second)
		got, err := b.svc.SweepReceipts(ctx)
		if err != nil || got != n {
			t.Fatalf("sweep = %d, %v; want %d", got, err, n)
		}
		m, err := b.svc.GetMessage(ctx, res.Accepted.ID, push.RecipientPage{Limit: -1})
		if err != nil || !m.Done || m.Counts[push.StatusUnconfirmed] != n {
			t.Fatalf("message = %+v, %v", m, err)
		}
		if got := b.eventCount(push.EventMessageUnconfirmed); got != n {
			t.Errorf("%d events, want %d", got, n)
		}
	})
}

func (b *bundle) eventCount(typ string) int {
	n := 0
	for _, e := range b.events.snapshot() {
		if e.Type == typ {
			n++
		}
	}
	return n
}
