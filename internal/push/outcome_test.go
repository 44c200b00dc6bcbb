package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const mpSubscribePath = "/cgi-bin/message/subscribe/send"

// mpBuyer creates a mini program user who accepted the shipping
// notification once, at WeChat and in wxgate.
func (b *bundle) mpBuyer(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	u, err := b.sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: mpApp, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sim.Act(ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{tplMPSub}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.ReportGrants(ctx, push.GrantReport{Account: "shop-mp", OpenID: u.OpenID, Results: map[string]string{tplMPSub: "accept"}}); err != nil {
		t.Fatal(err)
	}
	return u.OpenID
}

func shippedRequest(openid string) push.Request {
	return push.Request{Account: "shop-mp", To: push.Recipients{OpenIDs: []string{openid}}, Template: tplMPSub,
		Data: raw(map[string]string{"character_string1": "8812", "thing2": "咖啡豆"})}
}

// WeChat has no anti-replay for subscription messages, so a call that may
// have reached it is never repeated: an answer lost after the message was
// delivered leaves one message and the recipient failed as
// outcome_unknown; so does a call that hung unanswered. A -1 (WeChat said
// it did nothing) is retried and delivered. Meanwhile template messages,
// which carry client_msg_id, are retried through lost answers and still
// arrive once.
func TestNoSecondCallWithoutAntiReplay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{work: true, opts: push.Options{CallTimeout: 300 * time.Millisecond}})
		b.ready(t)

		cases := []struct {
			name       string
			fault      wechatsim.Fault
			status     string
			reason     string
			calls      int
			inboxCount int
		}{
			{"answer lost after delivery", wechatsim.Fault{Path: mpSubscribePath, LoseAnswer: true, Times: 1}, push.StatusFailed, push.ReasonOutcomeUnknown, 1, 1},
			{"no answer at all", wechatsim.Fault{Path: mpSubscribePath, Timeout: true, Times: 1}, push.StatusFailed, push.ReasonOutcomeUnknown, 1, 0},
			{"system busy", wechatsim.Fault{Path: mpSubscribePath, ErrCode: -1, Times: 1}, push.StatusSent, "", 2, 1},
		}
		for _, c := range cases {
			buyer := b.mpBuyer(t, c.name)
			if _, err := b.sim.SetFault(c.fault); err != nil {
				t.Fatal(err)
			}
			before := b.sim.CallCount(mpApp, mpSubscribePath)
			res := b.send(t, shippedRequest(buyer), push.SendOptions{})
			m := b.wait(t, res.Accepted.ID, 20*time.Second, push.StatusSent, push.StatusDelivered, push.StatusFailed)
			r := m.Recipients[0]
			if got := r.Status; got != c.status && (c.status != push.StatusSent || got != push.StatusDelivered) {
				t.Errorf("%s: status %s (%s: %s), want %s", c.name, got, r.Reason, r.ErrMsg, c.status)
			}
			if r.Reason != c.reason {
				t.Errorf("%s: reason %q (%s), want %q", c.name, r.Reason, r.ErrMsg, c.reason)
			}
			if n := b.sim.CallCount(mpApp, mpSubscribePath) - before; n != c.calls {
				t.Errorf("%s: %d calls to subscribe/send, want %d", c.name, n, c.calls)
			}
			if n := len(b.inbox(t, mpApp, buyer)); n != c.inboxCount {
				t.Errorf("%s: %d messages in the inbox, want %d", c.name, n, c.inboxCount)
			}
		}

		// Template messages: lost answers on 40% of the calls; client_msg_id
		// makes every retry safe.
		var openids []string
		for i := range 20 {
			openids = append(openids, b.follower(t, "lost-"+string(rune('a'+i))))
		}
		if _, err := b.sim.SetFault(wechatsim.Fault{Path: templatePath, LoseAnswer: true, Rate: 0.4}); err != nil {
			t.Fatal(err)
		}
		res := b.send(t, visitRequest(openids...), push.SendOptions{})
		m := b.wait(t, res.Accepted.ID, 60*time.Second, push.StatusSent, push.StatusDelivered)
		if retriedCount(m) == 0 {
			t.Error("no template send lost its answer: the fault did not hit")
		}
		b.wantOneCardEach(t, openids)
	})
}

// A gateway killed during a subscription-message call: on restart the
// recipient is found in flight and failed as outcome_unknown, without a
// second call to WeChat.
func TestInterruptedCallIsNotRepeated(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	first := setup(t, d, setupOptions{})
	first.ready(t)
	buyer := first.mpBuyer(t, "interrupted")
	res := first.send(t, shippedRequest(buyer), push.SendOptions{})
	// What the worker commits just before its call, as a killed process
	// leaves it.
	first.exec(t, `UPDATE push_recipients SET in_flight_at = updated_at WHERE message_id = $1`, res.Accepted.ID)

	restarted := setup(t, d, setupOptions{work: true})
	m := restarted.wait(t, res.Accepted.ID, 20*time.Second, push.StatusFailed)
	if r := m.Recipients[0]; r.Reason != push.ReasonOutcomeUnknown {
		t.Errorf("recipient = %+v", r)
	}
	if n := restarted.sim.CallCount(mpApp, mpSubscribePath) + first.sim.CallCount(mpApp, mpSubscribePath); n != 0 {
		t.Errorf("%d calls to subscribe/send after the restart, want 0", n)
	}
}
