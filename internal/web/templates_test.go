package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Sync from WeChat, then make, edit and delete an alias; bad input comes
// back with the reason and saves nothing.
func TestTemplatesSyncAndAliases(t *testing.T) {
	b := signedIn(t, "zh-CN")
	var templateID string
	if err := b.env.DB.QueryRowContext(context.Background(),
		`SELECT template_id FROM push_aliases WHERE account = 'demo' AND alias = 'new_visitor'`).Scan(&templateID); err != nil {
		t.Fatal(err)
	}
	page := b.get("/admin/templates?account=demo").page(t, http.StatusOK)
	if !strings.Contains(page, `data-template="`+templateID+`"`) || !strings.Contains(page, `data-alias="new_visitor"`) {
		t.Fatalf("the templates page lacks the demo's template or alias:\n%s", page)
	}
	synced := b.post("/admin/templates/sync", url.Values{"account": {"demo"}})
	if synced.status != http.StatusOK || !strings.Contains(synced.body, `data-test="templates-synced"`) {
		t.Fatalf("sync: %d\n%s", synced.status, synced.body)
	}
	if r := b.postRaw("/admin/templates/sync", url.Values{"account": {"demo"}}); r.status != http.StatusForbidden {
		t.Fatalf("sync without CSRF token: %d", r.status)
	}

	form := url.Values{"account": {"demo"}, "alias": {"console_lead"}, "template_id": {templateID},
		"fields": {"who = thing1"}, "description": {"来自后台 <测试>"}}
	bad := cloneValues(form)
	bad.Set("alias", "1-not-a-name")
	if r := b.post("/admin/templates/aliases", bad); r.status != http.StatusBadRequest || !strings.Contains(r.body, "别名须以字母开头") || !strings.Contains(r.body, "who = thing1") {
		t.Fatalf("a bad alias name: %d", r.status)
	}
	bad = cloneValues(form)
	bad.Set("fields", "who = nokeyword9")
	if r := b.post("/admin/templates/aliases", bad); r.status != http.StatusBadRequest {
		t.Fatalf("a field mapped to no keyword: %d\n%s", r.status, r.body)
	}
	if strings.Contains(b.get("/admin/templates?account=demo").body, `data-alias="console_lead"`) {
		t.Fatal("a refused alias was saved")
	}
	if r := b.post("/admin/templates/aliases", form); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	page = b.get("/admin/templates?account=demo&edit=console_lead").page(t, http.StatusOK)
	if !strings.Contains(page, `data-alias="console_lead"`) || !strings.Contains(page, "来自后台 &lt;测试&gt;") || !strings.Contains(page, "who = thing1") {
		t.Fatalf("the saved alias:\n%s", page)
	}
	// The alias works for a send preview through the API at once.
	apiCall(t, b.env, http.MethodPost, "/api/v1/templates/preview", map[string]any{
		"account": "demo", "template": "console_lead", "data": map[string]string{"who": "吴九", "thing2": "楼盘K", "time3": "2026-12-06 14:00"}})
	if r := b.post("/admin/templates/aliases/console_lead/delete", url.Values{"account": {"demo"}}); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.status)
	}
	if r := b.post("/admin/templates/aliases/console_lead/delete", url.Values{"account": {"demo"}}); r.status != http.StatusNotFound {
		t.Fatalf("delete again: %d", r.status)
	}
	audit := b.get("/admin/audit").page(t, http.StatusOK)
	for _, a := range []string{"templates.sync", "alias.save", "alias.delete"} {
		if !strings.Contains(audit, a) {
			t.Errorf("%s is not in the audit log", a)
		}
	}
}
