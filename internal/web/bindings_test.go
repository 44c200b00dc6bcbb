package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var qrPageURL = regexp.MustCompile(`^/admin/bindings/qrcode/([^/]+)$`)

// simScan has a simulated follower scan a QR code on their phone.
func simScan(t *testing.T, env *demoEnv, appID, openid, ticket string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"app_id": appID, "type": "scan", "ticket": ticket})
	resp, err := http.Post(env.Sim+"/sim/api/users/"+openid+"/actions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scan on the simulator: %d", resp.StatusCode)
	}
}

// A binding QR code made in the console: shown as a PNG, bound when the
// simulated phone scans it (the page learns it by itself), listed, and
// unbound again.
func TestBindingQRCodeScannedFromTheSimulator(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	externalID := "S-" + time.Now().Format("150405.000")

	// Bad input: the form comes back with the reason, nothing stored.
	bad := b.post("/admin/bindings/qrcode", url.Values{"account": {"demo"}, "external_id": {"  "}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "external_id 长度须为") {
		t.Fatalf("an empty external id: %d\n%s", bad.status, bad.body)
	}
	if r := b.postRaw("/admin/bindings/qrcode", url.Values{"account": {"demo"}, "external_id": {externalID}}); r.status != http.StatusForbidden {
		t.Fatalf("without CSRF token: %d", r.status)
	}
	r := b.post("/admin/bindings/qrcode", url.Values{"account": {"demo"}, "external_id": {externalID}})
	m := qrPageURL.FindStringSubmatch(r.location)
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d → %s %s", r.status, r.location, r.body)
	}
	ticket, _ := url.PathUnescape(m[1])
	page := html.UnescapeString(b.get(r.location).page(t, http.StatusOK))
	if !strings.Contains(page, `data-test="qr-image"`) || !strings.Contains(page, `src="`+r.location+`/png"`) ||
		!strings.Contains(page, `data-live="`+r.location+`/status"`) || !strings.Contains(page, "等待扫码") {
		t.Fatalf("the QR code page:\n%s", page)
	}
	img := b.get(r.location + "/png")
	if img.status != http.StatusOK || img.header.Get("Content-Type") != "image/png" {
		t.Fatalf("png: %d %s", img.status, img.header.Get("Content-Type"))
	}
	if _, err := png.Decode(strings.NewReader(img.body)); err != nil {
		t.Fatalf("the png does not decode: %v", err)
	}

	var openid, appID string
	ctx := context.Background()
	if err := env.DB.QueryRowContext(ctx, `SELECT openid FROM followers WHERE account = 'demo' AND subscribed ORDER BY openid DESC LIMIT 1`).Scan(&openid); err != nil {
		t.Fatal(err)
	}
	accounts := apiCall(t, env, http.MethodGet, "/api/v1/accounts", nil)
	for _, a := range accounts["accounts"].([]any) {
		if a := a.(map[string]any); a["name"] == "demo" {
			appID, _ = a["app_id"].(string)
		}
	}
	simScan(t, env, appID, openid, ticket)
	var last response
	waitFor(t, 30*time.Second, "the scan bound", func() bool {
		last = b.fetch(http.MethodGet, r.location+"/status", nil)
		return last.header.Get("X-Poll-Done") == "1"
	})
	if !strings.Contains(last.body, `data-test="qr-bound"`) || !strings.Contains(last.body, openid) {
		t.Fatalf("after the scan:\n%s", last.body)
	}

	list := b.get("/admin/bindings?q="+url.QueryEscape(externalID)).page(t, http.StatusOK)
	id := regexp.MustCompile(`data-binding="(\d+)"`).FindStringSubmatch(list)
	if id == nil || !strings.Contains(list, openid) || strings.Count(list, "data-binding=") != 1 {
		t.Fatalf("the binding is not listed once:\n%s", list)
	}
	if d := b.post("/admin/bindings/"+id[1]+"/delete", url.Values{}); d.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	if after := b.get("/admin/bindings?q="+url.QueryEscape(externalID)).page(t, http.StatusOK); strings.Contains(after, "data-binding=") {
		t.Fatal("the deleted binding is still listed as active")
	}
	history := b.get("/admin/bindings?history=1&q="+url.QueryEscape(externalID)).page(t, http.StatusOK)
	if !strings.Contains(history, "data-binding=\""+id[1]+"\"") || !strings.Contains(history, "deleted") {
		t.Fatal("the ended binding is not in the history")
	}
	audit := b.get("/admin/audit").page(t, http.StatusOK)
	if !strings.Contains(audit, "binding.qrcode") || !strings.Contains(audit, "binding.delete") {
		t.Error("the binding changes are not in the audit log")
	}
	if r := b.get("/admin/bindings/qrcode/no-such-ticket"); r.status != http.StatusNotFound {
		t.Errorf("an unknown ticket: %d", r.status)
	}
}
