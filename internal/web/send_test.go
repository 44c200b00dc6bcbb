package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
)

var (
	pickBox     = regexp.MustCompile(`name="pick" value="([^"]+)"`)
	idemField   = regexp.MustCompile(`name="idem" value="([^"]+)"`)
	progressURL = regexp.MustCompile(`^/admin/send/([A-Za-z0-9_-]+)$`)
)

// composer opens the composer for the demo's new_visitor alias and returns
// the page, a follower to send to and the form's idempotency key.
func composer(t *testing.T, b *browser) (page, openid, idem string) {
	t.Helper()
	page = b.get("/admin/send?account=demo&channel=template&template=new_visitor").page(t, http.StatusOK)
	picks := pickBox.FindStringSubmatch(page)
	idems := idemField.FindStringSubmatch(page)
	if picks == nil || idems == nil {
		t.Fatalf("composer without followers to pick or idempotency key:\n%s", page)
	}
	return page, picks[1], idems[1]
}

func TestComposerGeneratesTheTemplatesFields(t *testing.T) {
	for _, lang := range []string{"en", "zh-CN"} {
		b := signedIn(t, lang)
		page, _, _ := composer(t, b)
		for _, want := range []string{`name="data.customer"`, `name="data.page"`, `name="data.time"`, `value="new_visitor" selected`,
			`data-live-form="/admin/send/preview"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s composer lacks %s", lang, want)
			}
		}
	}
}

func TestComposerPreviewEscapesAndMarksRuleBreaks(t *testing.T) {
	b := signedIn(t, "en")
	_, openid, idem := composer(t, b)
	form := url.Values{"account": {"demo"}, "channel": {"template"}, "template": {"new_visitor"}, "idem": {idem}, "pick": {openid},
		"data.customer": {"<script>alert(1)</script>"}, "data.page": {"楼盘A"}, "data.time": {"2026-12-05 10:00"}}
	r := b.fetch(http.MethodPost, "/admin/send/preview", form)
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-test="preview-card"`) {
		t.Fatalf("preview: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "&lt;script&gt;") {
		t.Fatalf("preview does not escape the value:\n%s", r.body)
	}
	// A time WeChat refuses is marked on its line, with the reason.
	form.Set("data.customer", "张三")
	form.Set("data.time", "tomorrow-ish")
	r = b.fetch(http.MethodPost, "/admin/send/preview", form)
	if !strings.Contains(r.body, `data-test="preview-bad"`) || !strings.Contains(r.body, `pc-line bad`) {
		t.Fatalf("a bad time is not marked:\n%s", r.body)
	}
}

func TestComposerSendsOnceAndShowsDelivery(t *testing.T) {
	b := signedIn(t, "en")
	_, openid, idem := composer(t, b)
	form := url.Values{"account": {"demo"}, "channel": {"template"}, "template": {"new_visitor"}, "idem": {idem}, "pick": {openid},
		"data.customer": {"李四"}, "data.page": {"楼盘B 2室1厅"}, "data.time": {"2026-12-05 11:00"}}

	// No CSRF token: refused, nothing sent.
	if r := b.postRaw("/admin/send", form); r.status != http.StatusForbidden {
		t.Fatalf("send without CSRF token: %d", r.status)
	}
	// No recipient: the form comes back with the reason.
	noOne := cloneValues(form)
	noOne.Del("pick")
	if r := b.post("/admin/send", noOne); r.status < 400 || r.status >= 500 || !strings.Contains(r.body, `name="data.customer" value="李四"`) {
		t.Fatalf("send to nobody: %d\n%s", r.status, r.body)
	}

	r := b.post("/admin/send", form)
	m := progressURL.FindStringSubmatch(r.location)
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("send: %d → %q %s", r.status, r.location, r.body)
	}
	// The same form again (a double click): the same message.
	if again := b.post("/admin/send", form); again.location != r.location {
		t.Fatalf("second submit went to %q, first to %q", again.location, r.location)
	}
	b.get(r.location).page(t, http.StatusOK)
	var last response
	waitFor(t, 30*time.Second, "the recipient delivered", func() bool {
		last = b.fetch(http.MethodGet, r.location+"/status", nil)
		return last.header.Get("X-Poll-Done") == "1"
	})
	if !strings.Contains(last.body, openid) || !strings.Contains(last.body, "st-delivered") || !strings.Contains(last.body, `data-test="send-done"`) {
		t.Fatalf("final progress:\n%s", last.body)
	}
	if strings.Count(last.body, "<tr data-openid=") != 1 {
		t.Fatalf("the double submit made more than one recipient:\n%s", last.body)
	}
	audit := b.get("/admin/audit").page(t, http.StatusOK)
	if !strings.Contains(audit, "message.send") || !strings.Contains(audit, m[1]) {
		t.Fatal("the send is not in the audit log")
	}
}

// "To every subscribed follower" sends to each of them, once.
func TestComposerSendsToAll(t *testing.T) {
	b := signedIn(t, "zh-CN")
	page, _, idem := composer(t, b)
	if !strings.Contains(page, `data-test="send-all"`) || !strings.Contains(page, "发送给全部关注中的粉丝") {
		t.Fatal("the composer offers no send to all")
	}
	var following int
	if err := b.env.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM followers WHERE account = 'demo' AND subscribed`).Scan(&following); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"account": {"demo"}, "channel": {"template"}, "template": {"new_visitor"}, "idem": {idem}, "to_all": {"1"},
		"data.customer": {"全体"}, "data.page": {"开盘通知"}, "data.time": {"2026-12-07 11:00"}}
	r := b.post("/admin/send", form)
	if r.status != http.StatusSeeOther || progressURL.FindStringSubmatch(r.location) == nil {
		t.Fatalf("send to all: %d → %q %s", r.status, r.location, r.body)
	}
	progress := b.get(r.location).page(t, http.StatusOK)
	if n := strings.Count(progress, "<tr data-openid="); n != following {
		t.Errorf("%d recipients for %d subscribed followers", n, following)
	}
}

// A user tag of the account is offered as recipients; choosing it sends to
// the followers carrying it.
func TestComposerSendsToATag(t *testing.T) {
	b := signedIn(t, "en")
	ctx := context.Background()
	key, _, err := auth.NewStore(b.env.DB, nil).Create(ctx, "tag-test", auth.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	var openid string
	if err := b.env.DB.QueryRowContext(ctx, `SELECT openid FROM followers WHERE account = 'demo' AND subscribed ORDER BY openid LIMIT 1`).Scan(&openid); err != nil {
		t.Fatal(err)
	}
	api := func(path, body string) map[string]any {
		req, _ := http.NewRequest("POST", b.env.Gateway+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	name := fmt.Sprintf("composer-%d", time.Now().UnixNano()%100000)
	id := fmt.Sprint(api("/api/v1/tags", `{"account":"demo","name":"`+name+`"}`)["id"])
	api("/api/v1/tags/"+id+"/members", `{"account":"demo","add":["`+openid+`"]}`)

	page, _, idem := composer(t, b)
	if !strings.Contains(page, `<option value="`+id+`" >`+name+` (1)</option>`) && !strings.Contains(page, `value="`+id+`"`) {
		t.Fatalf("the composer does not offer tag %s:\n%s", id, page)
	}
	form := url.Values{"account": {"demo"}, "channel": {"template"}, "template": {"new_visitor"}, "idem": {idem}, "to_tag": {id},
		"data.customer": {"标签"}, "data.page": {"标签通知"}, "data.time": {"2026-12-07 11:00"}}
	r := b.post("/admin/send", form)
	if r.status != http.StatusSeeOther {
		t.Fatalf("send to a tag: %d %s", r.status, r.body)
	}
	progress := b.get(r.location).page(t, http.StatusOK)
	if strings.Count(progress, "<tr data-openid=") != 1 || !strings.Contains(progress, openid) {
		t.Errorf("the send to the tag is not to its one follower:\n%s", progress)
	}
}
