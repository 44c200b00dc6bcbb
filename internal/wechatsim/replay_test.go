package wechatsim

import (
	"testing"
	"time"
)

// A client_msg_id older than the window is not honoured even when the
// periodic sweep has not removed it yet.
func TestTemplateReplayWindowBetweenSweeps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.user(t, testOA, true)
	tok := b.token(t, testOA, testOASecret)
	send := func(clientMsgID string) int64 {
		t.Helper()
		body := templateBody(u.OpenID, tmplVisitor, map[string]string{"thing1": "王五", "time2": "2026-01-15 10:00"})
		body["client_msg_id"] = clientMsgID
		a := b.post(t, "/cgi-bin/message/template/send", tq(tok), body)
		wantErrcode(t, a, 0)
		return a.int("msgid")
	}
	first := send("a") // sweeps at t0
	b.clock.Advance(9*time.Minute + 30*time.Second)
	send("b") // sweeps at t0+9m30: "a" is younger than 10 minutes and stays
	if again := send("a"); again != first {
		t.Fatalf("replay within the window: msgid %d, want %d", again, first)
	}
	b.clock.Advance(40 * time.Second) // t0+10m10, 40 s after the last sweep: no sweep
	if third := send("a"); third == first {
		t.Fatal("client_msg_id honoured after 10 minutes because the sweep had not run")
	}
	if n := countKind(inbox(t, b, u.OpenID), ItemTemplate); n != 3 {
		t.Fatalf("%d template cards, want 3 (a, b, a after the window)", n)
	}
}
