package push_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
)

// A draft marks every value a send would refuse at once, and renders the
// card with what was typed; other refusals are errors as in Preview.
func TestDraftListsEveryProblem(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{})
	b.ready(t)
	ctx := context.Background()
	long := strings.Repeat("长", 25)

	p, problems, err := b.svc.Draft(ctx, push.PreviewRequest{Account: "main", Template: "new_visitor",
		Data: raw(map[string]string{"customer": long, "time": "tomorrow"})})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, fp := range problems {
		got[fp.Field] = fp.Err.Code + "/" + fp.Keyword
	}
	want := map[string]string{"data.customer": "invalid_value/thing1", "data.page": "missing_field/thing2", "data.time": "invalid_value/time3"}
	if len(got) != len(want) {
		t.Fatalf("problems = %v, want %v", got, want)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("problem of %s = %q, want %q", f, got[f], w)
		}
	}
	if p.Title != "新客户访问提醒" || len(p.Lines) != 3 || p.Lines[0].Value != long || p.Lines[2].Value != "tomorrow" {
		t.Errorf("draft card = %+v", p)
	}

	// A good draft is the preview, with no problems.
	good := push.PreviewRequest{Account: "main", Template: "new_visitor",
		Data: raw(map[string]string{"customer": "张三", "page": "楼盘A", "time": "10:00"})}
	dp, problems, err := b.svc.Draft(ctx, good)
	pp, perr := b.svc.Preview(ctx, good)
	if err != nil || perr != nil || len(problems) != 0 || dp.Text != pp.Text {
		t.Errorf("draft %+v %v %v, preview %+v %v", dp, problems, err, pp, perr)
	}

	_, _, err = b.svc.Draft(ctx, push.PreviewRequest{Account: "main", Template: "nope"})
	pushErr(t, err, "template_not_found", "template")
	_, _, err = b.svc.Draft(ctx, push.PreviewRequest{Account: "main", Template: "new_visitor",
		Data: raw(map[string]string{"phone": "1"})})
	pushErr(t, err, "unknown_field", "data.phone")
}

// The console's idempotency scope of an admin never replays an API key's
// message with the same key.
func TestConsoleScopeIsApart(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{})
		b.ready(t)
		alice := b.follower(t, "alice")
		api := b.send(t, visitRequest(alice), push.SendOptions{IdempotencyKey: "k-1", APIKeyID: 1})
		console := b.send(t, visitRequest(alice), push.SendOptions{IdempotencyKey: "k-1", APIKeyID: push.ConsoleScope(1)})
		if console.Replayed || console.Accepted.ID == api.Accepted.ID {
			t.Errorf("the console's key replayed the API key's message: %+v", console)
		}
		again := b.send(t, visitRequest(alice), push.SendOptions{IdempotencyKey: "k-1", APIKeyID: push.ConsoleScope(1)})
		if !again.Replayed || again.Accepted.ID != console.Accepted.ID {
			t.Errorf("a second console submit was not replayed: %+v", again)
		}
	})
}

// A composer asks for an alias's field names, in the template's order.
func TestInputFields(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{})
	b.ready(t)
	ctx := context.Background()
	tpl, al, fields, err := b.svc.InputFields(ctx, "main", "new_visitor")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fields {
		got = append(got, f.Field+"="+f.Keyword.Key+":"+f.Keyword.Label)
	}
	if al == nil || tpl.TemplateID != tplVisit || strings.Join(got, ",") != "customer=thing1:客户,page=thing2:访问页面,time=time3:访问时间" {
		t.Errorf("fields of new_visitor = %v (alias %v, template %s)", got, al, tpl.TemplateID)
	}
	_, al, fields, err = b.svc.InputFields(ctx, "main", tplVisit)
	if err != nil || al != nil || len(fields) != 3 || fields[0].Field != "thing1" {
		t.Errorf("fields of the template = %+v, %v", fields, err)
	}
	_, _, _, err = b.svc.InputFields(ctx, "main", "nope")
	pushErr(t, err, "template_not_found", "template")
}
