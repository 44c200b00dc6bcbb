package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

func raw(m map[string]string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		b, _ := json.Marshal(v)
		out[k] = b
	}
	return out
}

// pushErr asserts err is a *problem.Error with code and a message naming field.
func pushErr(t *testing.T, err error, code, field string) {
	t.Helper()
	var perr *problem.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %v, want a push error %s", err, code)
	}
	if perr.Code != code || perr.Field != field {
		t.Fatalf("error %s on %s (%s), want %s on %s", perr.Code, perr.Field, perr.Message, code, field)
	}
	if !strings.Contains(perr.Message, field) || !strings.ContainsFunc(perr.Message, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
		t.Errorf("message %q should name %s and have Chinese too", perr.Message, field)
	}
}

func TestSyncTemplatesAndAliases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d, setupOptions{})
		ctx := context.Background()
		res, err := b.svc.SyncTemplates(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		if res.Synced != 3 || len(res.Added) != 3 || len(res.Removed) != 0 {
			t.Errorf("sync = %+v", res)
		}
		list, err := b.svc.Templates(ctx, "main")
		if err != nil || len(list) != 3 {
			t.Fatalf("templates %+v %v", list, err)
		}
		var visit push.Template
		for _, tpl := range list {
			if tpl.TemplateID == tplVisit {
				visit = tpl
			}
		}
		if visit.Kind != push.KindTemplate || visit.Title != "新客户访问提醒" || len(visit.Keywords) != 3 ||
			visit.Keywords[2] != (push.Keyword{Key: "time3", Type: "time", Label: "访问时间"}) {
			t.Errorf("visit template = %+v", visit)
		}
		if _, err := b.svc.SyncTemplates(ctx, "shop-mp"); err != nil {
			t.Fatal(err)
		}
		mp, _ := b.svc.Templates(ctx, "shop-mp")
		if len(mp) != 1 || mp[0].Kind != push.KindSubscribe || mp[0].TemplateID != tplMPSub {
			t.Errorf("mini program templates = %+v", mp)
		}

		// A template deleted at WeChat is marked removed by the next sync.
		c, _ := b.tokens.Client("main")
		if err := c.DeleteTemplate(ctx, tplWeather); err != nil {
			t.Fatal(err)
		}
		res, err = b.svc.SyncTemplates(ctx, "main")
		if err != nil || len(res.Removed) != 1 || res.Removed[0] != tplWeather || len(res.Added) != 0 {
			t.Fatalf("second sync = %+v, %v", res, err)
		}
		w, _ := b.svc.Template(ctx, "main", tplWeather)
		if w.RemovedAt == nil {
			t.Error("removed template not marked")
		}

		// Aliases.
		al, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "new_visitor", TemplateID: tplVisit,
			Fields: map[string]string{"customer": "thing1", "page": "thing2", "time": "time3"}, Truncate: true,
			MiniProgram: &push.MiniProgram{AppID: mpApp, PagePath: "pages/lead"}})
		if err != nil {
			t.Fatal(err)
		}
		if al.Fields["customer"] != "thing1" || al.MiniProgram == nil || al.MiniProgram.PagePath != "pages/lead" || !al.Truncate {
			t.Errorf("alias = %+v", al)
		}
		_, err = b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "bad", TemplateID: tplVisit, Fields: map[string]string{"x": "thing9"}})
		pushErr(t, err, "unknown_keyword", "fields.x")
		_, err = b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "bad", TemplateID: tplVisit, Fields: map[string]string{"a": "thing1", "b": "thing1"}})
		var perr *problem.Error
		if !errors.As(err, &perr) || perr.Code != "duplicate_keyword" {
			t.Errorf("duplicate mapping: %v", err)
		}
		_, err = b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "2bad", TemplateID: tplVisit})
		pushErr(t, err, "invalid_alias", "alias")
		_, err = b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "fb", TemplateID: tplVisit, Fallback: "new_visitor"})
		pushErr(t, err, "fallback_not_allowed", "fallback")
		if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "notice", TemplateID: tplOASub, Fallback: "new_visitor",
			Fields: map[string]string{"customer": "thing1", "time": "time2"}}); err != nil {
			t.Fatal(err)
		}
		aliases, _ := b.svc.Aliases(ctx, "main")
		if len(aliases) != 2 {
			t.Errorf("aliases = %+v", aliases)
		}
		if err := b.svc.DeleteAlias(ctx, "main", "notice"); err != nil {
			t.Fatal(err)
		}
		pushErr(t, b.svc.DeleteAlias(ctx, "main", "notice"), "alias_not_found", "alias")
	})
}

func TestPreviewAndValidation(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d, setupOptions{})
	ctx := context.Background()
	if _, err := b.svc.SyncTemplates(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "new_visitor", TemplateID: tplVisit,
		Fields: map[string]string{"customer": "thing1", "page": "thing2", "time": "time3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.PutAlias(ctx, push.Alias{Account: "main", Alias: "new_visitor_cut", TemplateID: tplVisit,
		Fields: map[string]string{"customer": "thing1", "page": "thing2", "time": "time3"}, Truncate: true}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("长", 25)

	p, err := b.svc.Preview(ctx, push.PreviewRequest{Account: "main", Template: "new_visitor",
		Data: raw(map[string]string{"customer": "张三", "page": "楼盘A 3室", "time": "2026-11-24 10:00"})})
	if err != nil {
		t.Fatal(err)
	}
	if p.Title != "新客户访问提醒" || p.Text != "客户：张三\n访问页面：楼盘A 3室\n访问时间：2026-11-24 10:00" || len(p.Lines) != 3 || p.Lines[0].Label != "客户" {
		t.Errorf("preview = %+v", p)
	}
	// Keywords work as well as the alias's field names; raw template ids too.
	if _, err := b.svc.Preview(ctx, push.PreviewRequest{Account: "main", Template: tplVisit,
		Data: raw(map[string]string{"thing1": "张三", "thing2": "楼盘A", "time3": "10:00"})}); err != nil {
		t.Error(err)
	}
	p, err = b.svc.Preview(ctx, push.PreviewRequest{Account: "main", Template: "new_visitor_cut",
		Data: raw(map[string]string{"customer": long, "page": "楼盘A", "time": "10:00"})})
	if err != nil || len(p.Truncated) != 1 || p.Data["thing1"] != strings.Repeat("长", 19)+"…" {
		t.Errorf("truncated preview = %+v, %v", p, err)
	}

	cases := []struct {
		name        string
		req         push.PreviewRequest
		code, field string
	}{
		{"too long", push.PreviewRequest{Account: "main", Template: "new_visitor",
			Data: raw(map[string]string{"customer": long, "page": "A", "time": "10:00"})}, "invalid_value", "data.customer"},
		{"bad time", push.PreviewRequest{Account: "main", Template: "new_visitor",
			Data: raw(map[string]string{"customer": "张三", "page": "A", "time": "tomorrow"})}, "invalid_value", "data.time"},
		{"newline", push.PreviewRequest{Account: "main", Template: tplVisit,
			Data: raw(map[string]string{"thing1": "a\nb", "thing2": "A", "time3": "10:00"})}, "invalid_value", "data.thing1"},
		{"missing", push.PreviewRequest{Account: "main", Template: "new_visitor",
			Data: raw(map[string]string{"customer": "张三", "time": "10:00"})}, "missing_field", "data.page"},
		{"unknown", push.PreviewRequest{Account: "main", Template: "new_visitor",
			Data: raw(map[string]string{"customer": "张三", "page": "A", "time": "10:00", "phone": "1"})}, "unknown_field", "data.phone"},
		{"first", push.PreviewRequest{Account: "main", Template: tplVisit,
			Data: raw(map[string]string{"first": "您好", "thing1": "a", "thing2": "A", "time3": "10:00"})}, "dropped_keyword", "data.first"},
		{"color", push.PreviewRequest{Account: "main", Template: tplVisit, Data: map[string]json.RawMessage{
			"thing1": json.RawMessage(`{"value":"a","color":"#173177"}`), "thing2": json.RawMessage(`"A"`), "time3": json.RawMessage(`"10:00"`)}},
			"color_not_supported", "data.thing1.color"},
		{"phrase", push.PreviewRequest{Account: "main", Template: tplWeather,
			Data: raw(map[string]string{"thing1": "广州", "phrase2": "sunny", "character_string3": "18-25", "date4": "2026年11月24日"})},
			"invalid_value", "data.phrase2"},
		{"no such alias", push.PreviewRequest{Account: "main", Template: "nope", Data: raw(map[string]string{})}, "template_not_found", "template"},
		{"no account", push.PreviewRequest{Account: "nope", Template: "new_visitor"}, "account_not_found", "account"},
		{"wrong channel", push.PreviewRequest{Account: "main", Channel: "subscribe", Template: "new_visitor",
			Data: raw(map[string]string{"customer": "张三", "page": "A", "time": "10:00"})}, "channel_mismatch", "channel"},
		{"mp channel on OA", push.PreviewRequest{Account: "main", Channel: "mp_subscribe", Template: "new_visitor"},
			"channel_not_supported", "channel"},
	}
	for _, c := range cases {
		_, err := b.svc.Preview(ctx, c.req)
		t.Run(c.name, func(t *testing.T) { pushErr(t, err, c.code, c.field) })
	}
}
