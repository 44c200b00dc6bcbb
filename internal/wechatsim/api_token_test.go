package wechatsim

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var ridPattern = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

func tokenQuery(appID, secret string) url.Values {
	return url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name  string
		query url.Values
		want  int64
	}{
		{"missing appid", url.Values{"grant_type": {"client_credential"}, "secret": {"x"}}, 41002},
		{"missing secret", url.Values{"grant_type": {"client_credential"}, "appid": {testOA}}, 41004},
		{"bad grant_type", url.Values{"grant_type": {"password"}, "appid": {testOA}, "secret": {testOASecret}}, 40002},
		{"unknown appid", tokenQuery("wxunknown", "x"), 40013},
		{"wrong secret", tokenQuery(testOA, "wrong"), 40125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.get(t, "/cgi-bin/token", tt.query)
			if a.status != 200 {
				t.Fatalf("HTTP %d, want 200", a.status)
			}
			wantErrcode(t, a, tt.want)
			if ct := a.header.Get("Content-Type"); ct != contentTypeJSON {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestTokenShapeAndRid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.get(t, "/cgi-bin/token", tokenQuery(testOA, testOASecret))
	if _, has := a.m["errcode"]; has {
		t.Errorf("data API answered errcode: %s", a.raw)
	}
	if got := a.int("expires_in"); got != 7200 {
		t.Errorf("expires_in = %d", got)
	}
	if tok := a.str("access_token"); len(tok) < 100 {
		t.Errorf("token %q shorter than 100", tok)
	}
	// The rid starts with the hex Unix time of the request.
	bad := b.get(t, "/cgi-bin/token", tokenQuery(testOA, "wrong"))
	msg := bad.str("errmsg")
	wantHex := fmt.Sprintf("%08x", b.clock.Now().Unix())
	if !strings.Contains(msg, "rid: "+wantHex+"-") {
		t.Errorf("errmsg %q: rid does not start with %s", msg, wantHex)
	}
}

func TestClassicTokenOverlapAndExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.token(t, testOA, testOASecret)
	menu := func(tok string) int64 { return b.get(t, "/cgi-bin/getcallbackip", tq(tok)).errcode() }
	if got := menu(first); got != 0 {
		t.Fatalf("fresh token: %d", got)
	}
	b.clock.Advance(time.Minute)
	second := b.token(t, testOA, testOASecret)
	if second == first {
		t.Fatal("classic token not re-issued")
	}
	b.clock.Advance(4*time.Minute + 59*time.Second)
	if got := menu(first); got != 0 {
		t.Fatalf("previous token within 5 min: errcode %d", got)
	}
	b.clock.Advance(time.Second)
	if got := menu(first); got != 40001 {
		t.Fatalf("previous token after 5 min: errcode %d, want 40001", got)
	}
	if got := menu(second); got != 0 {
		t.Fatalf("current token: %d", got)
	}
	b.clock.Advance(7200 * time.Second)
	if got := menu(second); got != 42001 {
		t.Fatalf("expired token: errcode %d, want 42001", got)
	}
	// Unknown but well-formed → 40001; garbage → 40014; none → 41001.
	if got := menu("86_" + strings.Repeat("x", 130)); got != 40001 {
		t.Errorf("unknown token: %d", got)
	}
	if got := menu("garbage"); got != 40014 {
		t.Errorf("garbage token: %d", got)
	}
	if got := b.get(t, "/cgi-bin/getcallbackip", nil).errcode(); got != 41001 {
		t.Errorf("missing token: %d", got)
	}
}

func stableBody(appID, secret string, force bool) map[string]any {
	return map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": force}
}

func TestStableToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, false))
	tok := a.str("access_token")
	if tok == "" || a.int("expires_in") != 7200 {
		t.Fatalf("first stable token: %s", a.raw)
	}

	// Same token while valid, expires_in counting down.
	b.clock.Advance(1000 * time.Second)
	a = b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, false))
	if a.str("access_token") != tok || a.int("expires_in") != 6200 {
		t.Fatalf("second call: %s", a.raw)
	}

	// Isolation: a classic token call does not touch the stable token.
	classic := b.token(t, testOA, testOASecret)
	if classic == tok {
		t.Fatal("classic and stable share a token")
	}
	if got := b.get(t, "/cgi-bin/getcallbackip", tq(tok)).errcode(); got != 0 {
		t.Fatalf("stable token after a classic call: %d", got)
	}

	// Last five minutes: a new token; the old one works until it expires.
	b.clock.Advance(6200*time.Second - 5*time.Minute)
	a = b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, false))
	rotated := a.str("access_token")
	if rotated == tok || a.int("expires_in") != 7200 {
		t.Fatalf("rotation: %s", a.raw)
	}
	if got := b.get(t, "/cgi-bin/getcallbackip", tq(tok)).errcode(); got != 0 {
		t.Fatalf("old stable token during overlap: %d", got)
	}
	b.clock.Advance(5 * time.Minute)
	if got := b.get(t, "/cgi-bin/getcallbackip", tq(tok)).errcode(); got != 42001 {
		t.Fatalf("old stable token after its expiry: %d", got)
	}

	// force_refresh: new token at once, old one dead; 30 s spacing.
	a = b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, true))
	forced := a.str("access_token")
	if forced == rotated {
		t.Fatal("force_refresh returned the same token")
	}
	if got := b.get(t, "/cgi-bin/getcallbackip", tq(rotated)).errcode(); got != 40001 {
		t.Fatalf("token after force refresh: %d", got)
	}
	b.clock.Advance(10 * time.Second)
	if got := b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, true)).str("access_token"); got != forced {
		t.Fatal("force refresh within 30 s refreshed")
	}
	// 20 per day.
	for i := 1; i < forceRefreshPerDay; i++ {
		b.clock.Advance(31 * time.Second)
		if a := b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, true)); a.str("access_token") == "" {
			t.Fatalf("force refresh %d: %s", i+1, a.raw)
		}
	}
	b.clock.Advance(31 * time.Second)
	wantErrcode(t, b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, true)), 45009)
}

func TestStableTokenErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name string
		body any
		want int64
	}{
		{"empty body", "", 44002},
		{"not json", "grant_type=client_credential", 47001},
		{"bad grant_type", map[string]any{"grant_type": "x", "appid": testOA, "secret": testOASecret}, 40002},
		{"unknown appid", stableBody("wxnope", "x", false), 40013},
		{"wrong secret", stableBody(testOA, "nope", false), 40125},
		{"missing appid", map[string]any{"grant_type": "client_credential", "secret": "x"}, 41002},
		{"missing secret", map[string]any{"grant_type": "client_credential", "appid": testOA}, 41004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrcode(t, b.post(t, "/cgi-bin/stable_token", nil, tt.body), tt.want)
		})
	}
}

func TestTokenIPWhitelistAndQuota(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOptions) {
		o.configure = func(c *Config) {
			c.Apps = append(c.Apps,
				AppConfig{AppID: "wxlocked", AppSecret: "s", IPWhitelist: []string{"10.0.0.0/8"}},
				AppConfig{AppID: "wxtest", AppSecret: "s", Test: true})
		}
	})
	a := b.get(t, "/cgi-bin/token", tokenQuery("wxlocked", "s"))
	wantErrcode(t, a, 40164)
	if !strings.Contains(a.str("errmsg"), "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist") {
		t.Errorf("errmsg %q", a.str("errmsg"))
	}
	for i := 0; i < 200; i++ {
		b.token(t, "wxtest", "s")
	}
	wantErrcode(t, b.get(t, "/cgi-bin/token", tokenQuery("wxtest", "s")), 45009)
	// A new day resets the quota.
	b.clock.Advance(24 * time.Hour)
	b.token(t, "wxtest", "s")
	if n := b.sim.CallCount("wxtest", "/cgi-bin/token"); n != 202 {
		t.Errorf("CallCount = %d, want 202", n)
	}
}

func TestTokenKindAndInvalidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	oaTok := b.token(t, testOA, testOASecret)
	mpTok := b.token(t, testMP, testMPSecret)
	wantErrcode(t, b.post(t, "/cgi-bin/message/subscribe/send", tq(oaTok), map[string]any{"touser": "x"}), 48001)
	wantErrcode(t, b.get(t, "/cgi-bin/user/get", tq(mpTok)), 48001)

	stable := b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, false)).str("access_token")
	if err := b.sim.InvalidateTokens(testOA); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{oaTok, stable} {
		wantErrcode(t, b.get(t, "/cgi-bin/getcallbackip", tq(tok)), 40001)
	}
	// A new stable token is issued after the invalidation.
	fresh := b.post(t, "/cgi-bin/stable_token", nil, stableBody(testOA, testOASecret, false)).str("access_token")
	if fresh == stable {
		t.Fatal("stable token survived invalidation")
	}
	wantErrcode(t, b.get(t, "/cgi-bin/getcallbackip", tq(fresh)), 0)
}
