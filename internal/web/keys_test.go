package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func statusWithKey(t *testing.T, env *demoEnv, key, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.Gateway+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A key made in the console works at once, is shown once, and stops
// working when revoked.
func TestAPIKeyCreateShowOnceRevoke(t *testing.T) {
	b := signedIn(t, "zh-CN")
	if r := b.post("/admin/keys", url.Values{"name": {"crm"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "至少需要一个权限") {
		t.Fatalf("a key without scopes: %d", r.status)
	}
	if r := b.post("/admin/keys", url.Values{"name": {" "}, "scope": {"read"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "需要名称") {
		t.Fatalf("a key without a name: %d", r.status)
	}
	if r := b.postRaw("/admin/keys", url.Values{"name": {"crm"}, "scope": {"read"}}); r.status != http.StatusForbidden {
		t.Fatalf("without CSRF token: %d", r.status)
	}
	r := b.post("/admin/keys", url.Values{"name": {"CRM <只读>"}, "scope": {"read"}})
	key := regexp.MustCompile(`<code id="new-key">(wxg_[A-Za-z0-9_]+)</code>`).FindStringSubmatch(r.body)
	if r.status != http.StatusCreated || key == nil || !strings.Contains(r.body, "CRM &lt;只读&gt;") {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	if s := statusWithKey(t, b.env, key[1], "/api/v1/accounts"); s != http.StatusOK {
		t.Fatalf("the new key on a read route: %d", s)
	}
	page := b.get("/admin/keys").page(t, http.StatusOK)
	if strings.Contains(page, key[1]) {
		t.Fatal("the key's plaintext is shown again")
	}
	id := regexp.MustCompile(`(?s)<tr data-key="(\d+)">\s*<td>CRM &lt;只读&gt;</td>`).FindStringSubmatch(page)
	if id == nil {
		t.Fatalf("the key is not listed:\n%s", page)
	}
	if r := b.post("/admin/keys/"+id[1]+"/revoke", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if s := statusWithKey(t, b.env, key[1], "/api/v1/accounts"); s != http.StatusUnauthorized {
		t.Fatalf("the revoked key: %d", s)
	}
	if audit := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(audit, "apikey.create") || !strings.Contains(audit, "apikey.revoke") {
		t.Error("the key changes are not in the audit log")
	}
}

// A webhook added in the console gets the delivery events of a send, its
// page lists the deliveries, and a redelivery posts the event again.
func TestWebhookDeliveriesAndRedeliver(t *testing.T) {
	b := signedIn(t, "en")
	env := b.env
	var got atomic.Int32
	var lastEvent atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "message.delivered") {
			got.Add(1)
			lastEvent.Store(r.Header.Get("X-Wxgate-Event-Id"))
		}
	}))
	defer srv.Close()

	if r := b.post("/admin/webhooks", url.Values{"url": {"ftp://nope"}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "http or https") {
		t.Fatalf("a bad URL: %d", r.status)
	}
	r := b.post("/admin/webhooks", url.Values{"url": {srv.URL + "/events"}, "events": {"message.delivered"}, "account": {"demo"}})
	if r.status != http.StatusCreated || !regexp.MustCompile(`<code id="new-secret">whsec_`).MatchString(r.body) {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	m := regexp.MustCompile(`<tr data-webhook="(\d+)">\s*<td class="wrap"><a href="/admin/webhooks/\d+"><code>` + regexp.QuoteMeta(srv.URL) + `/events`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("the webhook is not listed:\n%s", r.body)
	}
	hook := "/admin/webhooks/" + m[1]
	defer b.post(hook+"/delete", url.Values{})

	var openid string
	if err := env.DB.QueryRow(`SELECT openid FROM followers WHERE account = 'demo' AND subscribed ORDER BY openid LIMIT 1`).Scan(&openid); err != nil {
		t.Fatal(err)
	}
	apiCall(t, env, http.MethodPost, "/api/v1/messages", map[string]any{
		"account": "demo", "to": map[string]any{"openids": []string{openid}}, "template": "new_visitor",
		"data": map[string]string{"customer": "周八", "page": "楼盘J", "time": "2026-12-06 13:00"}})
	waitFor(t, 60*time.Second, "the delivered event posted", func() bool { return got.Load() >= 1 })
	var page string
	waitFor(t, 30*time.Second, "the delivery recorded as delivered", func() bool {
		page = b.get(hook).page(t, http.StatusOK)
		return strings.Contains(page, "st-delivered")
	})
	d := regexp.MustCompile(`action="(` + hook + `/deliveries/\d+/redeliver)"`).FindStringSubmatch(page)
	if d == nil {
		t.Fatalf("no redeliver button:\n%s", page)
	}
	first, n := lastEvent.Load(), got.Load()
	if r := b.post(d[1], url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("redeliver: %d %s", r.status, r.body)
	}
	waitFor(t, 60*time.Second, "the redelivery", func() bool { return got.Load() > n })
	if lastEvent.Load() != first {
		t.Errorf("the redelivery has event id %v, the first %v", lastEvent.Load(), first)
	}
	if r := b.post(hook+"/deliveries/999999/redeliver", url.Values{}); r.status != http.StatusNotFound {
		t.Errorf("redelivering an unknown delivery: %d", r.status)
	}
}
