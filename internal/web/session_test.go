package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSignInPageSpeaksTheBrowsersLanguage(t *testing.T) {
	for _, tc := range []struct{ accept, want, lang string }{
		{"zh-CN,zh;q=0.9", "登录", "zh-CN"},
		{"en-US,en;q=0.8", "Sign in", "en"},
		{"", "登录", "zh-CN"},
	} {
		b := newBrowser(t, tc.accept)
		body := b.get("/admin/login").page(t, http.StatusOK)
		if !strings.Contains(body, "<h1>"+tc.want+"</h1>") || !strings.Contains(body, `<html lang="`+tc.lang+`">`) {
			t.Errorf("Accept-Language %q: no %q heading / lang %s:\n%s", tc.accept, tc.want, tc.lang, body)
		}
	}
}

func TestPagesNeedASession(t *testing.T) {
	b := newBrowser(t, "en")
	r := b.get("/admin/audit")
	if r.status != http.StatusSeeOther || r.location != "/admin/login?next=%2Fadmin%2Faudit" {
		t.Fatalf("page without session: %d → %q, want 303 to the sign-in page", r.status, r.location)
	}
	// The console's fetch calls get 401 with a machine-readable code.
	f := b.fetch(http.MethodGet, "/admin/audit", nil)
	var p struct{ Code, Message string }
	if f.status != http.StatusUnauthorized || json.Unmarshal([]byte(f.body), &p) != nil || p.Code != "session_invalid" || p.Message == "" {
		t.Fatalf("fetch without session: %d %s, want 401 session_invalid", f.status, f.body)
	}
}

func TestSignInAndOut(t *testing.T) {
	b := newBrowser(t, "zh-CN")
	b.ip = "198.51.100.10"
	// A wrong password: the form comes back, 401, the reason in Chinese,
	// the username kept and the password not.
	r := b.post("/admin/login", url.Values{"username": {"admin"}, "password": {"wrong-password-1"}, "next": {"/admin/messages"}})
	body := r.page(t, http.StatusUnauthorized)
	if !strings.Contains(body, "用户名或密码错误") || !strings.Contains(body, `value="admin"`) || strings.Contains(body, "wrong-password-1") {
		t.Fatalf("wrong password page:\n%s", body)
	}
	r = b.post("/admin/login", url.Values{"username": {"admin"}, "password": {b.env.Password}, "next": {"/admin/messages"}})
	if r.status != http.StatusSeeOther || r.location != "/admin/messages" {
		t.Fatalf("sign-in: %d → %q", r.status, r.location)
	}
	ck := r.header.Get("Set-Cookie")
	for _, want := range []string{"wxgate_session=", "HttpOnly", "SameSite=Lax", "Path=/admin/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie over plain HTTP is Secure, the browser would drop it: %q", ck)
	}
	// An outside address after sign-in is not followed.
	r2 := newBrowser(t, "en").post("/admin/login", url.Values{"username": {"admin"}, "password": {b.env.Password}, "next": {"//evil.example/x"}})
	if r2.location != "/admin/send" {
		t.Errorf("next=//evil.example: redirected to %q", r2.location)
	}

	page := b.get("/admin/audit").page(t, http.StatusOK)
	csrf := csrfMeta.FindStringSubmatch(page)[1]
	// Signing out without the CSRF token is refused.
	if r := b.postRaw("/admin/logout", url.Values{}); r.status != http.StatusForbidden || !strings.Contains(r.body, "csrf_invalid") {
		t.Fatalf("logout without CSRF token: %d %s", r.status, r.body)
	}
	if r := b.postRaw("/admin/logout", url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := b.get("/admin/audit"); r.status != http.StatusSeeOther {
		t.Fatalf("after sign-out the session still works: %d", r.status)
	}
	// The audit log has both sign-ins and the sign-out.
	audit := signedIn(t, "en").get("/admin/audit").page(t, http.StatusOK)
	for _, want := range []string{"<code>login</code>", "<code>logout</code>", "198.51.100.10"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

func TestOneTimeSignInLink(t *testing.T) {
	env := startDemo(t)
	token, err := env.admins().IssueLoginToken(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "en")
	if r := b.get("/admin/login/link?token=" + url.QueryEscape(token)); r.status != http.StatusSeeOther || r.location != "/admin/send" {
		t.Fatalf("sign-in link: %d → %q %s", r.status, r.location, r.body)
	}
	if r := b.get("/admin/audit"); r.status != http.StatusOK {
		t.Fatalf("signed in by link, audit page: %d", r.status)
	}
	body := newBrowser(t, "en").get("/admin/login/link?token="+url.QueryEscape(token)).page(t, http.StatusUnauthorized)
	if !strings.Contains(body, "invalid, used or expired") {
		t.Fatalf("second use of the link:\n%s", body)
	}
}

func TestSignInThrottling(t *testing.T) {
	env := startDemo(t)
	const user, pw = "throttled", "correct-horse-battery"
	if _, err := env.admins().CreateUser(t.Context(), user, pw); err != nil {
		t.Fatal(err)
	}
	// Per username: failures from many addresses lock the name, even for
	// the right password, and not other names.
	for i := range 8 {
		b := newBrowser(t, "en")
		b.ip = "203.0.113." + string(rune('1'+i))
		if r := b.post("/admin/login", url.Values{"username": {user}, "password": {"nope-nope-nope"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}
	b := newBrowser(t, "en")
	b.ip = "203.0.113.99"
	r := b.post("/admin/login", url.Values{"username": {user}, "password": {pw}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "too many failed sign-ins") {
		t.Fatalf("9th try on a locked name: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := b.post("/admin/login", url.Values{"username": {"admin"}, "password": {env.Password}}); r.status != http.StatusSeeOther {
		t.Fatalf("another name from a clean address: %d", r.status)
	}
	// Per address: 20 failures on any names lock the address.
	c := newBrowser(t, "zh-CN")
	c.ip = "192.0.2.77"
	for i := range 20 {
		c.post("/admin/login", url.Values{"username": {"guess" + string(rune('a'+i))}, "password": {"whatever-guess"}})
	}
	r = c.post("/admin/login", url.Values{"username": {"admin"}, "password": {env.Password}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "登录失败次数过多") {
		t.Fatalf("locked address: %d %s", r.status, r.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	b := newBrowser(t, "en")
	for _, path := range []string{"/admin/login", "/admin/static/app.css", "/admin/nope"} {
		r := b.get(path)
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", path, r.header.Get("X-Frame-Options"), r.header.Get("X-Content-Type-Options"))
		}
	}
	// No inline script on any page: every <script> has a src.
	body := signedIn(t, "en").get("/admin/audit").page(t, http.StatusOK)
	if strings.Count(body, "<script") != strings.Count(body, `<script src="/admin/static/`) || strings.Contains(body, " onclick=") {
		t.Errorf("inline script on the page:\n%s", body)
	}
}

func TestLanguageSwitchIsRemembered(t *testing.T) {
	b := signedIn(t, "zh-CN")
	if body := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(body, "操作日志") {
		t.Fatal("not Chinese by default")
	}
	r := b.get("/admin/lang?to=en&back=/admin/audit")
	if r.status != http.StatusSeeOther || r.location != "/admin/audit" {
		t.Fatalf("switch: %d → %q", r.status, r.location)
	}
	if body := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(body, "<h1>Audit log</h1>") {
		t.Fatalf("after switching to English:\n%s", body)
	}
	if r := b.get("/admin/lang?to=zh&back=https://evil.example/"); r.location != "/admin/send" {
		t.Errorf("switch back to an outside address went to %q", r.location)
	}
}

func TestUnknownPage(t *testing.T) {
	body := signedIn(t, "en").get("/admin/no-such-page").page(t, http.StatusNotFound)
	if !strings.Contains(body, "page_not_found") {
		t.Fatalf("unknown page:\n%s", body)
	}
}
