package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const templatePath = "/cgi-bin/message/template/send"

// ready syncs the templates and adds the new_visitor alias.
func (b *bundle) ready(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []string{"main", "shop-mp"} {
		if _, err := b.svc.SyncTemplates(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "new_visitor", TemplateID: tplVisit,
		Fields:      map[string]string{"customer": "thing1", "page": "thing2", "time": "time3"},
		MiniProgram: &push.MiniProgram{AppID: mpApp, PagePath: "pages/lead?id=1"}}); err != nil {
		t.Fatal(err)
	}
}

func visitRequest(openids ...string) push.Request {
	return push.Request{Account: "main", To: push.Recipients{OpenIDs: openids}, Template: "new_visitor",
		Data: raw(map[string]string{"customer": "张三", "page": "楼盘A", "time": "2026-11-24 10:00"})}
}

func (b *bundle) send(t *testing.T, req push.Request, o push.SendOptions) *push.SendResult {
	t.Helper()
	res, err := b.svc.Send(context.Background(), req, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wait polls a message until none of its recipients is queued or sent
// (or, with want, until every recipient has a status in want).
func (b *bundle) wait(t *testing.T, id string, timeout time.Duration, want ...string) push.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := b.svc.GetMessage(context.Background(), id, push.RecipientPage{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		done := m.Done
		if len(want) > 0 {
			n := 0
			for _, s := range want {
				n += m.Counts[s]
			}
			done = n == m.Total
		}
		if done {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not done after %s: %+v", id, timeout, m.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retriedCount is the number of recipients sent in more than one attempt.
func retriedCount(m push.Message) int {
	n := 0
	for _, r := range m.Recipients {
		if r.Attempts > 1 {
			n++
		}
	}
	return n
}

// wantOneCardEach checks that each follower received exactly one message.
func (b *bundle) wantOneCardEach(t *testing.T, openids []string) {
	t.Helper()
	for _, o := range openids {
		if n := len(b.inbox(t, oaApp, o)); n != 1 {
			t.Errorf("%s has %d cards, want exactly 1", o, n)
		}
	}
}

func (b *bundle) inbox(t *testing.T, app, openid string) []wechatsim.InboxItem {
	t.Helper()
	items, err := b.sim.Inbox(app, openid)
	if err != nil {
		t.Fatal(err)
	}
	var out []wechatsim.InboxItem
	for _, it := range items {
		if it.Kind == wechatsim.ItemTemplate || it.Kind == wechatsim.ItemSubscribe || it.Kind == wechatsim.ItemCustom {
			out = append(out, it)
		}
	}
	return out
}

func TestSendTemplateToDelivery(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true})
		b.ready(t)
		ctx := context.Background()
		alice, bob, carol := b.follower(t, "alice"), b.follower(t, "bob"), b.follower(t, "carol")
		if _, err := b.sim.Act(ctx, carol, wechatsim.Action{Type: wechatsim.ActionUnsubscribe}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.Act(ctx, bob, wechatsim.Action{Type: wechatsim.ActionBlockTemplates}); err != nil {
			t.Fatal(err)
		}
		bobUnion, _ := b.sim.GetUser(oaApp, bob)

		req := visitRequest(alice, carol, alice)
		req.To.UnionIDs = []string{bobUnion.UnionID, "u-nobody"}
		req.To.ExternalIDs = []string{"S-9"}
		res := b.send(t, req, push.SendOptions{})
		want := []push.RecipientResult{
			{OpenID: alice, Status: "queued"},
			{OpenID: carol, Status: "skipped", Reason: "not_subscribed"},
			{UnionID: bobUnion.UnionID, OpenID: bob, Status: "queued"},
			{UnionID: "u-nobody", Status: "skipped", Reason: "unknown_unionid"},
			{ExternalID: "S-9", Status: "skipped", Reason: "not_bound"},
		}
		if fmt.Sprint(res.Accepted.Recipients) != fmt.Sprint(want) {
			t.Fatalf("recipients = %+v\nwant %+v", res.Accepted.Recipients, want)
		}
		var body map[string]any
		if err := json.Unmarshal(res.Body, &body); err != nil || body["id"] != res.Accepted.ID {
			t.Fatalf("body %s", res.Body)
		}

		m := b.wait(t, res.Accepted.ID, 10*time.Second)
		if m.Counts["delivered"] != 1 || m.Counts["blocked"] != 1 || m.Counts["skipped"] != 3 || m.TemplateID != tplVisit {
			t.Fatalf("message = %+v", m)
		}
		for _, r := range m.Recipients {
			switch r.OpenID {
			case alice:
				if r.Status != "delivered" || r.MsgID == 0 || r.SentAt == nil || r.DoneAt == nil || r.Attempts != 1 {
					t.Errorf("alice = %+v", r)
				}
			case bob:
				if r.Status != "blocked" || r.Reason != "user_block" {
					t.Errorf("bob = %+v", r)
				}
			}
		}
		items := b.inbox(t, oaApp, alice)
		if len(items) != 1 || items[0].Text != "客户：张三\n访问页面：楼盘A\n访问时间：2026-11-24 10:00" ||
			items[0].MiniProgram == nil || items[0].MiniProgram.PagePath != "pages/lead?id=1" || items[0].Status != "success" {
			t.Errorf("alice's inbox = %+v", items)
		}
		if n := len(b.inbox(t, oaApp, carol)); n != 0 {
			t.Errorf("carol got %d items", n)
		}
		if n := b.sim.CallCount(oaApp, templatePath); n != 2 {
			t.Errorf("%d template sends, want 2", n)
		}
		types := map[string]int{}
		for _, e := range b.events.snapshot() {
			types[e.Type]++
			// message.sent carries the row as it was just written.
			if ev, ok := e.Data.(push.RecipientEvent); ok && e.Type == "message.sent" && ev.Recipient.OpenID == alice {
				r := ev.Recipient
				if ev.MessageID != res.Accepted.ID || ev.Account != "main" || r.Status != "sent" || r.MsgID == 0 || r.SentAt == nil ||
					r.Attempts != 1 || r.Seq != 1 || r.Channel != "template" || r.QueuedAt.IsZero() {
					t.Errorf("message.sent of alice = %+v", ev)
				}
			}
		}
		if types["message.sent"] != 2 || types["message.delivered"] != 1 || types["message.failed"] != 1 {
			t.Errorf("events = %v", types)
		}

		list, err := b.svc.ListMessages(ctx, push.ListFilter{Account: "main", Status: "blocked"})
		if err != nil || len(list.Messages) != 1 || list.Messages[0].ID != res.Accepted.ID {
			t.Errorf("list = %+v, %v", list, err)
		}
		list, _ = b.svc.ListMessages(ctx, push.ListFilter{Account: "main", Status: "failed"})
		if len(list.Messages) != 0 {
			t.Errorf("failed list = %+v", list)
		}
	})
}

func (r *recordedEvents) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.list...)
}

func TestIdempotencyKeyReplay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true})
		b.ready(t)
		alice := b.follower(t, "alice")
		first := b.send(t, visitRequest(alice), push.SendOptions{IdempotencyKey: "order-8812-shipped", APIKeyID: 7})
		b.wait(t, first.Accepted.ID, 10*time.Second)

		// Concurrent and later replays get the first answer, byte for byte.
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				again, err := b.svc.Send(context.Background(), visitRequest(alice), push.SendOptions{IdempotencyKey: "order-8812-shipped", APIKeyID: 7})
				if err != nil {
					t.Error(err)
					return
				}
				if !again.Replayed || string(again.Body) != string(first.Body) {
					t.Errorf("replay = %s (replayed %v), want %s", again.Body, again.Replayed, first.Body)
				}
			})
		}
		wg.Wait()
		if n := b.sim.CallCount(oaApp, templatePath); n != 1 {
			t.Errorf("%d sends, want 1", n)
		}
		if n := len(b.inbox(t, oaApp, alice)); n != 1 {
			t.Errorf("%d inbox items, want 1", n)
		}
		// Another body with the same key is refused; another API key's
		// same key is another message.
		other := visitRequest(alice)
		other.Data = raw(map[string]string{"customer": "李四", "page": "楼盘B", "time": "11:00"})
		_, err := b.svc.Send(context.Background(), other, push.SendOptions{IdempotencyKey: "order-8812-shipped", APIKeyID: 7})
		pushErr(t, err, "idempotency_key_reused", "Idempotency-Key")
		res := b.send(t, visitRequest(alice), push.SendOptions{IdempotencyKey: "order-8812-shipped", APIKeyID: 8})
		if res.Replayed || res.Accepted.ID == first.Accepted.ID {
			t.Errorf("another key's request was replayed: %+v", res)
		}
	})
}

// Concurrent first requests with one key: one message.
func TestIdempotencyKeyRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{})
		b.ready(t)
		alice := b.follower(t, "alice")
		ids := make(chan string, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				res, err := b.svc.Send(context.Background(), visitRequest(alice), push.SendOptions{IdempotencyKey: "k1"})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- res.Accepted.ID
			})
		}
		wg.Wait()
		close(ids)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		var n int
		_ = d.QueryRow(`SELECT count(*) FROM push_recipients`).Scan(&n)
		if len(seen) != 1 || n != 1 {
			t.Errorf("%d message ids, %d recipient rows; want 1 and 1", len(seen), n)
		}
	})
}

// -1 and timeouts on 30 % of the calls: every follower gets exactly one
// card.
func TestFaultsDeliverExactlyOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true, opts: push.Options{CallTimeout: 300 * time.Millisecond},
			simCfg: wechatsim.Config{FaultSeed: 42}})
		b.ready(t)
		var openids []string
		for i := range 30 {
			openids = append(openids, b.follower(t, fmt.Sprintf("f%d", i)))
		}
		if _, err := b.sim.SetFault(wechatsim.Fault{Path: templatePath, ErrCode: -1, Rate: 0.3}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.SetFault(wechatsim.Fault{Path: templatePath, Timeout: true, Rate: 0.3}); err != nil {
			t.Fatal(err)
		}
		res := b.send(t, visitRequest(openids...), push.SendOptions{})
		m := b.wait(t, res.Accepted.ID, 60*time.Second, "delivered")
		if m.Counts["delivered"] != 30 {
			t.Fatalf("counts = %v", m.Counts)
		}
		retried := retriedCount(m)
		if retried == 0 {
			t.Error("no recipient needed a retry: the faults did not hit")
		}
		b.wantOneCardEach(t, openids)
		t.Logf("%d template calls for 30 recipients, %d retried", b.sim.CallCount(oaApp, templatePath), retried)
	})
}

// 40001 on every token: the client refreshes once (compare-and-refresh),
// and the sends go through.
func TestTokenInvalidatedRefreshesOnce(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{work: true})
	b.ready(t)
	var openids []string
	for i := range 10 {
		openids = append(openids, b.follower(t, fmt.Sprintf("f%d", i)))
	}
	before := b.sim.CallCount(oaApp, "/cgi-bin/stable_token")
	if _, err := b.sim.SetFault(wechatsim.Fault{AppID: oaApp, InvalidateTokens: true}); err != nil {
		t.Fatal(err)
	}
	res := b.send(t, visitRequest(openids...), push.SendOptions{})
	m := b.wait(t, res.Accepted.ID, 20*time.Second, "delivered")
	if m.Counts["delivered"] != 10 {
		t.Fatalf("counts = %v", m.Counts)
	}
	if n := b.sim.CallCount(oaApp, "/cgi-bin/stable_token") - before; n != 1 {
		t.Errorf("%d token fetches after the invalidation, want 1", n)
	}
}

// 45009: the sends wait for the quota reset at Beijing midnight, then go.
// waitQuota polls until want recipients of the message are queued waiting
// on the daily quota (errcode 45009) and the others have left the queue.
func (b *bundle) waitQuota(t *testing.T, id string, want int, timeout time.Duration) push.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := b.svc.GetMessage(context.Background(), id, push.RecipientPage{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		waiting := 0
		for _, r := range m.Recipients {
			if r.Status == "queued" && r.ErrCode == wechat.CodeDailyQuota {
				waiting++
			}
		}
		if waiting == want && m.Counts["queued"] == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v, %d waiting on the quota, want %d", timeout, m.Counts, waiting, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDailyQuotaSnoozesUntilReset(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	apps := simApps()
	apps[0].Quotas = map[string]int{templatePath: 2}
	b := setup(t, d, setupOptions{work: true, apps: apps})
	// The shared clock is 3 seconds before midnight in Beijing.
	b.clock.set(b.clock.untilBeijingMidnight() - 3*time.Second)
	b.ready(t)
	var openids []string
	for i := range 4 {
		openids = append(openids, b.follower(t, fmt.Sprintf("f%d", i)))
	}
	res := b.send(t, visitRequest(openids...), push.SendOptions{})
	// Before the reset (the shared clock reaches midnight in 3 s): two
	// sent, two waiting on the quota.
	m := b.waitQuota(t, res.Accepted.ID, 2, 2500*time.Millisecond)
	if m.Counts["queued"] != 2 {
		t.Fatalf("before the reset: %v", m.Counts)
	}
	m = b.wait(t, res.Accepted.ID, 15*time.Second, "delivered")
	if m.Counts["delivered"] != 4 {
		t.Fatalf("after the reset: %v", m.Counts)
	}
	for _, o := range openids {
		if n := len(b.inbox(t, oaApp, o)); n != 1 {
			t.Errorf("%s has %d cards", o, n)
		}
	}
}

// Permanent errors fail at once with WeChat's errcode.
func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	reg := prometheus.NewRegistry()
	b := setup(t, d, setupOptions{work: true, opts: push.Options{Metrics: push.NewMetrics(reg)}})
	b.ready(t)
	alice := b.follower(t, "alice")
	// A raw template id unknown to WeChat: 40037.
	req := push.Request{Account: "main", To: push.Recipients{OpenIDs: []string{alice, "o-not-a-user"}},
		Template: "Tm-Unknown-000000000000000000000000000001", Data: raw(map[string]string{"thing1": "x"})}
	res := b.send(t, req, push.SendOptions{})
	m := b.wait(t, res.Accepted.ID, 10*time.Second)
	for _, r := range m.Recipients {
		if r.Status != "failed" || r.Attempts != 1 {
			t.Errorf("recipient = %+v", r)
		}
	}
	codes := map[int]bool{m.Recipients[0].ErrCode: true, m.Recipients[1].ErrCode: true}
	if !codes[40037] && !codes[40003] {
		t.Errorf("errcodes = %v", codes)
	}
	if m.Recipients[0].Reason != "invalid_template" || m.Recipients[1].ErrCode != 40003 || m.Recipients[1].Reason != "invalid_openid" {
		t.Errorf("recipients = %+v", m.Recipients)
	}
	// /metrics counts both calls by errcode and both failures by reason;
	// the series of other outcomes exist at zero. A failure is counted just
	// after its row commits, so the counters may trail the stored state the
	// wait above returned on by a moment.
	var calls, failed map[string]float64
	countsRight := func() bool {
		calls, failed = pushCounters(t, reg)
		return failed["invalid_openid"] == 1 && failed["invalid_template"] == 1 && failed["not_subscribed"] == 0 && len(failed) >= 5 &&
			calls["error 40037"] == 1 && calls["error 40003"] == 1 && calls["ok 0"] == 0 && len(calls) == 3
	}
	for deadline := time.Now().Add(5 * time.Second); !countsRight() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !countsRight() {
		t.Errorf("failures counted %v; calls counted %v", failed, calls)
	}
}

// pushCounters reads the template channel's wxgate_push_calls_total (by
// "result errcode") and wxgate_push_failed_total (by reason) for account main.
func pushCounters(t *testing.T, reg *prometheus.Registry) (calls, failed map[string]float64) {
	t.Helper()
	calls, failed = map[string]float64{}, map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["account"] != "main" || labels["channel"] != "template" {
				continue
			}
			switch f.GetName() {
			case "wxgate_push_calls_total":
				calls[labels["result"]+" "+labels["errcode"]] = m.GetCounter().GetValue()
			case "wxgate_push_failed_total":
				failed[labels["reason"]] = m.GetCounter().GetValue()
			}
		}
	}
	return calls, failed
}
