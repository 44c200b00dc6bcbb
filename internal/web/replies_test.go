package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Rules added in the console answer the test box as the callback would;
// a disabled rule no longer answers; a bad regex is refused with the form
// kept.
func TestAutoRepliesTestBoxAddDisableDelete(t *testing.T) {
	b := signedIn(t, "zh-CN")
	word := "价格" + strings.ReplaceAll(t.Name(), "/", "")[:4]
	page := b.get("/admin/replies?account=demo").page(t, http.StatusOK)
	if !strings.Contains(page, `data-test="reply-test"`) {
		t.Fatalf("no test box:\n%s", page)
	}

	bad := b.post("/admin/replies", url.Values{"account": {"demo"}, "match": {"keyword"}, "mode": {"regex"}, "pattern": {"(unclosed"}, "content": {"x"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "(unclosed") || !strings.Contains(bad.body, "invalid reply rule") && !strings.Contains(bad.body, "form-error") {
		t.Fatalf("a bad regex: %d\n%s", bad.status, bad.body)
	}
	if r := b.postRaw("/admin/replies", url.Values{"account": {"demo"}, "match": {"keyword"}, "mode": {"contains"}, "pattern": {word}, "content": {"x"}}); r.status != http.StatusForbidden {
		t.Fatalf("without CSRF token: %d", r.status)
	}
	r := b.post("/admin/replies", url.Values{"account": {"demo"}, "match": {"keyword"}, "mode": {"contains"}, "pattern": {word},
		"content": {"<b>报价</b>请联系销售"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	test := b.get("/admin/replies?account=demo&test="+url.QueryEscape("请问"+word+"多少")).page(t, http.StatusOK)
	m := regexp.MustCompile(`data-test="reply-answer" data-rule="(\d+)"`).FindStringSubmatch(test)
	if m == nil || !strings.Contains(test, "&lt;b&gt;报价&lt;/b&gt;请联系销售") {
		t.Fatalf("the test box does not show the new rule's answer (escaped):\n%s", test)
	}
	id := m[1]
	// {content} in a reply is filled with what the follower wrote.
	echo := b.get("/admin/replies?account=demo&test="+url.QueryEscape("随便说点")).page(t, http.StatusOK)
	bubble := regexp.MustCompile(`<div class="bubble">([^<]*)</div>`).FindStringSubmatch(echo)
	if bubble == nil || !strings.Contains(bubble[1], "随便说点") || strings.Contains(bubble[1], "{content}") {
		t.Errorf("the demo's text rule echoes the message; the test box shows %q", bubble)
	}
	if r := b.post("/admin/replies/"+id+"/disable", url.Values{"account": {"demo"}}); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", r.status)
	}
	after := b.get("/admin/replies?account=demo&test="+url.QueryEscape("请问"+word+"多少")).page(t, http.StatusOK)
	if strings.Contains(after, `data-rule="`+id+`" `) && strings.Contains(after, `data-test="reply-answer" data-rule="`+id+`"`) {
		t.Fatal("a disabled rule still answers")
	}
	if r := b.post("/admin/replies/"+id+"/delete", url.Values{"account": {"demo"}}); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", r.status)
	}
	if r := b.post("/admin/replies/"+id+"/delete", url.Values{"account": {"demo"}}); r.status != http.StatusNotFound {
		t.Fatalf("delete again: %d", r.status)
	}
	audit := b.get("/admin/audit").page(t, http.StatusOK)
	for _, a := range []string{"reply.add", "reply.disable", "reply.delete"} {
		if !strings.Contains(audit, a) {
			t.Errorf("%s is not in the audit log", a)
		}
	}
}
