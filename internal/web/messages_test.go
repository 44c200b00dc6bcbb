package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// apiCall calls /api/v1 with the demo's API key and decodes the answer.
func apiCall(t *testing.T, env *demoEnv, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, env.Gateway+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	return out
}

// firstRecipient is the message's first recipient as the API shows it.
func firstRecipient(t *testing.T, env *demoEnv, id string) map[string]any {
	t.Helper()
	m := apiCall(t, env, http.MethodGet, "/api/v1/messages/"+id, nil)
	list, _ := m["recipients"].([]any)
	if len(list) == 0 {
		t.Fatalf("message %s has no recipients: %v", id, m)
	}
	return list[0].(map[string]any)
}

// A card to an openid WeChat does not know fails (40003); the message list
// finds it by state and recipient, the message page explains the errcode
// and offers a resend, and the resend runs it through the queue again.
func TestMessagesListFiltersAndResendsAFailedRecipient(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	stranger := "o-stranger-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	sent := apiCall(t, env, http.MethodPost, "/api/v1/messages", map[string]any{
		"account": "demo", "to": map[string]any{"openids": []string{stranger}}, "template": "new_visitor",
		"data": map[string]string{"customer": "王五", "page": "楼盘D", "time": "2026-12-06 10:00"}})
	id, _ := sent["id"].(string)
	if id == "" {
		t.Fatalf("send: %v", sent)
	}
	waitFor(t, 30*time.Second, "the recipient failed", func() bool { return firstRecipient(t, env, id)["status"] == "failed" })
	if code := firstRecipient(t, env, id)["errcode"]; code != float64(40003) {
		t.Fatalf("errcode %v, want 40003", code)
	}

	list := b.get("/admin/messages?account=demo&status=failed&recipient="+url.QueryEscape(stranger)).page(t, http.StatusOK)
	if !strings.Contains(list, `data-message="`+id+`"`) || strings.Count(list, "data-message=") != 1 {
		t.Fatalf("the failed message is not the one listed for its recipient:\n%s", list)
	}
	if other := b.get("/admin/messages?account=demo&recipient=o-nobody-at-all").page(t, http.StatusOK); strings.Contains(other, "data-message=") {
		t.Fatal("a recipient nobody sent to lists messages")
	}
	if bad := b.get("/admin/messages?since=yesterday"); bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "2026-12-06") {
		t.Fatalf("a bad date: %d, want 400 with the expected format", bad.status)
	}

	page := b.get("/admin/messages/"+id).page(t, http.StatusOK)
	if !strings.Contains(page, "40003") || !strings.Contains(page, `data-test="resend"`) {
		t.Fatalf("the message page lacks the errcode or the resend button:\n%s", page)
	}
	// Without the CSRF token: refused, nothing queued.
	if r := b.postRaw("/admin/messages/"+id+"/resend", url.Values{"seq": {"1"}}); r.status != http.StatusForbidden {
		t.Fatalf("resend without CSRF token: %d", r.status)
	}
	if a := firstRecipient(t, env, id)["attempts"]; a != float64(1) {
		t.Fatalf("attempts %v after a refused resend, want 1", a)
	}
	r := b.post("/admin/messages/"+id+"/resend", url.Values{"seq": {"1"}})
	if r.status != http.StatusSeeOther || r.location != "/admin/messages/"+id+"?done=resent" {
		t.Fatalf("resend: %d → %s %s", r.status, r.location, r.body)
	}
	// Sent again, refused again by WeChat: a second attempt recorded.
	waitFor(t, 30*time.Second, "the resend attempted", func() bool {
		rec := firstRecipient(t, env, id)
		return rec["status"] == "failed" && rec["attempts"] == float64(2)
	})
	if flash := b.get(r.location).page(t, http.StatusOK); !strings.Contains(flash, "已重新排队") {
		t.Error("no confirmation after the resend")
	}
	// A recipient that is not failed, and one that does not exist.
	if r := b.post("/admin/messages/"+id+"/resend", url.Values{"seq": {"7"}}); r.status != http.StatusNotFound {
		t.Errorf("resend of seq 7: %d", r.status)
	}
	if r := b.post("/admin/messages/"+id+"/resend", url.Values{"seq": {"x"}}); r.status != http.StatusBadRequest {
		t.Errorf("resend of seq x: %d", r.status)
	}
	if audit := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(audit, "message.resend") {
		t.Error("the resend is not in the audit log")
	}
	// The accounts page lists WeChat's refusals among the last API errors.
	accounts := b.get("/admin/accounts").page(t, http.StatusOK)
	i := strings.Index(accounts, `data-test="api-errors"`)
	if i < 0 || !strings.Contains(accounts[i:], "40003") || !strings.Contains(accounts[i:], "/admin/messages/"+id) {
		t.Errorf("the accounts page does not show the 40003 of %s", id)
	}
}

// A delivered recipient is not sent again.
func TestResendOfADeliveredRecipientIsRefused(t *testing.T) {
	b := signedIn(t, "en")
	_, openid, idem := composer(t, b)
	form := url.Values{"account": {"demo"}, "channel": {"template"}, "template": {"new_visitor"}, "idem": {idem}, "pick": {openid},
		"data.customer": {"赵六"}, "data.page": {"楼盘E"}, "data.time": {"2026-12-06 11:00"}}
	r := b.post("/admin/send", form)
	m := progressURL.FindStringSubmatch(r.location)
	if m == nil {
		t.Fatalf("send: %d → %s", r.status, r.location)
	}
	waitFor(t, 30*time.Second, "delivered", func() bool { return firstRecipient(t, b.env, m[1])["status"] == "delivered" })
	page := b.get("/admin/messages/"+m[1]).page(t, http.StatusOK)
	if strings.Contains(page, `data-test="resend"`) {
		t.Error("a delivered recipient offers a resend")
	}
	res := b.post("/admin/messages/"+m[1]+"/resend", url.Values{"seq": {"1"}})
	if res.status != http.StatusConflict || !strings.Contains(res.body, "Only a failed recipient") && !strings.Contains(res.body, "only a failed recipient") {
		t.Fatalf("resend of a delivered recipient: %d %s", res.status, res.body)
	}
}
