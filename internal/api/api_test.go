package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

var now = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)

// fakeTokens answers per account: a token or an error.
type fakeTokens map[string]error

func (f fakeTokens) Token(_ context.Context, account string) (token.Token, error) {
	if err := f[account]; err != nil {
		return token.Token{}, err
	}
	return token.Token{Value: "TOKEN-" + account, ExpiresAt: now.Add(7000 * time.Second), Version: 3}, nil
}

func (f fakeTokens) Status(account string) (token.Status, bool) {
	return token.Status{Account: account, Mode: token.ModeStable}, true
}

type apiBundle struct {
	srv            *httptest.Server
	tokenKey       string
	readKey        string
	adminKey       string
	sendKey        string
	revokedKey     string
	accounts       []config.Account
	tokens         Tokens
	authenticating *auth.Store
}

func setup(t *testing.T, tokens Tokens) *apiBundle {
	t.Helper()
	store := auth.NewStore(dbtest.SQLite(t), func() time.Time { return now })
	ctx := t.Context()
	b := &apiBundle{authenticating: store, tokens: tokens}
	var err error
	mk := func(scopes ...auth.Scope) string {
		k, _, e := store.Create(ctx, "test", scopes)
		if e != nil {
			err = e
		}
		return k
	}
	b.tokenKey, b.readKey, b.adminKey, b.sendKey = mk(auth.ScopeToken), mk(auth.ScopeRead), mk(auth.ScopeAdmin), mk(auth.ScopeSend)
	b.revokedKey = mk(auth.ScopeToken)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := store.List(ctx)
	if err := store.Revoke(ctx, list[len(list)-1].ID); err != nil {
		t.Fatal(err)
	}
	b.accounts = []config.Account{
		{Name: "main", Kind: config.KindOfficialAccount, AppID: "wx0123456789abcdef", AppSecret: "S", MessageMode: config.ModeSafe},
		{Name: "shop-mp", Kind: config.KindMiniProgram, AppID: "wxfedcba9876543210", AppSecret: "S", MessageMode: config.ModePlaintext},
	}
	b.srv = httptest.NewServer(New(Options{Accounts: b.accounts, PublicURL: "https://wx.example.com/",
		Tokens: tokens, Auth: store, Now: func() time.Time { return now }}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *apiBundle) get(t *testing.T, path, key string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.srv.URL+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s: not JSON: %s", path, raw)
	}
	return resp.StatusCode, resp.Header, body
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	paused := &token.BreakerOpenError{Account: "main", Until: time.Now().Add(time.Minute),
		Reason: &wechat.APIError{Code: 40164, Msg: "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist", Path: "/cgi-bin/stable_token"}}
	b := setup(t, fakeTokens{"shop-mp": paused})
	tests := []struct {
		name, path string
		key        func(*apiBundle) string
		status     int
		code       string
	}{
		{"accounts without key", "/api/v1/accounts", func(*apiBundle) string { return "" }, 401, "unauthorized"},
		{"accounts with token-only key", "/api/v1/accounts", func(b *apiBundle) string { return b.tokenKey }, 403, "forbidden"},
		{"accounts with read key", "/api/v1/accounts", func(b *apiBundle) string { return b.readKey }, 200, ""},
		{"accounts with admin key", "/api/v1/accounts", func(b *apiBundle) string { return b.adminKey }, 200, ""},
		{"token with read key", "/api/v1/accounts/main/token", func(b *apiBundle) string { return b.readKey }, 403, "forbidden"},
		{"token with send key", "/api/v1/accounts/main/token", func(b *apiBundle) string { return b.sendKey }, 403, "forbidden"},
		{"token with revoked key", "/api/v1/accounts/main/token", func(b *apiBundle) string { return b.revokedKey }, 401, "unauthorized"},
		{"token", "/api/v1/accounts/main/token", func(b *apiBundle) string { return b.tokenKey }, 200, ""},
		{"token of unknown account", "/api/v1/accounts/nope/token", func(b *apiBundle) string { return b.tokenKey }, 404, "account_not_found"},
		{"token while refreshes are paused", "/api/v1/accounts/shop-mp/token", func(b *apiBundle) string { return b.adminKey }, 503, "token_refresh_paused"},
		{"unknown route", "/api/v1/nothing", func(b *apiBundle) string { return b.adminKey }, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, hdr, body := b.get(t, tt.path, tt.key(b))
			if status != tt.status || errorCode(body) != tt.code {
				t.Fatalf("%d %v, want %d %q", status, body, tt.status, tt.code)
			}
			if tt.code != "" {
				msg := body["error"].(map[string]any)["message"].(string)
				if msg == "" {
					t.Error("empty message")
				}
			}
			if status == 503 && hdr.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if tt.code == "token_refresh_paused" {
				msg := body["error"].(map[string]any)["message"].(string)
				if !strings.Contains(msg, "203.0.113.9") || !strings.Contains(msg, "IP白名单") {
					t.Errorf("message does not say what to do: %s", msg)
				}
			}
		})
	}
}

func TestAccountsAndTokenBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, fakeTokens{})
	_, _, body := b.get(t, "/api/v1/accounts", b.readKey)
	want := `{"accounts":[{"name":"main","app_id":"wx0123456789abcdef","kind":"official_account","mode":"safe","token_mode":"stable","callback_url":"https://wx.example.com/wx/main"},` +
		`{"name":"shop-mp","app_id":"wxfedcba9876543210","kind":"mini_program","mode":"plaintext","token_mode":"stable","callback_url":"https://wx.example.com/wx/shop-mp"}]}`
	if got, _ := json.Marshal(body); !jsonEqual(t, got, want) {
		t.Errorf("accounts:\n got %s\nwant %s", got, want)
	}
	status, hdr, body := b.get(t, "/api/v1/accounts/main/token", b.tokenKey)
	if status != 200 || body["access_token"] != "TOKEN-main" || body["expires_at"] != "2026-11-24T03:56:40Z" || body["expires_in"] != float64(7000) {
		t.Errorf("token: %d %v", status, body)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
	}
}

func jsonEqual(t *testing.T, got []byte, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	h := &handler{}
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{&wechat.TransportError{Path: "/cgi-bin/stable_token", Err: errors.New("connection refused")}, 503, "wechat_unavailable"},
		{&wechat.APIError{Code: 40125, Msg: "invalid appsecret"}, 502, "wechat_error"},
		{&token.RefreshError{Account: "main", Code: 40013, Msg: "invalid appid", Remote: true}, 502, "token_refresh_failed"},
		{&token.ForceRefreshError{Account: "main", Reason: "used up"}, 503, "token_unavailable"},
		// A failed refresh that may pass, or was given up on, is reported as what it is.
		{&token.RefreshError{Account: "main", Code: -1, Msg: "system busy", Remote: true}, 503, "wechat_unavailable"},
		{&token.RefreshError{Account: "main", Msg: "canceled", Err: context.Canceled}, 503, "timeout"},
		{fmt.Errorf("get token: %w", &token.BreakerOpenError{Account: "main", Until: time.Now().Add(time.Minute), Reason: errors.New("40164")}), 503, "token_refresh_paused"},
		{context.DeadlineExceeded, 503, "timeout"},
		{errors.New("disk on fire"), 500, "internal"},
	}
	for _, tt := range tests {
		if e := h.toError(tt.err); e.Status() != tt.status || e.Code != tt.code {
			t.Errorf("%v → %d %s, want %d %s", tt.err, e.Status(), e.Code, tt.status, tt.code)
		}
	}
}

// TestTokenEndpointEndToEnd: the registry, the broker and the client
// against the simulator, behind a real API key.
func TestTokenEndpointEndToEnd(t *testing.T) {
	t.Parallel()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: "wx0123456789abcdef", AppSecret: "oa-secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	reg := token.NewRegistry(dbtest.SQLite(t), token.Options{})
	acct := config.Account{Name: "main", Kind: config.KindOfficialAccount, AppID: "wx0123456789abcdef", AppSecret: "oa-secret",
		MessageMode: config.ModePlaintext, APIBaseURLs: []string{simSrv.URL}}
	if _, err := reg.AddAccount(acct, token.AccountOptions{}); err != nil {
		t.Fatal(err)
	}
	store := auth.NewStore(dbtest.SQLite(t), nil)
	key, _, err := store.Create(t.Context(), "crm", []auth.Scope{auth.ScopeToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Accounts: []config.Account{acct}, Tokens: reg, Auth: store}))
	t.Cleanup(srv.Close)
	b := &apiBundle{srv: srv}

	_, _, first := b.get(t, "/api/v1/accounts/main/token", key)
	_, _, second := b.get(t, "/api/v1/accounts/main/token", key)
	tok, _ := first["access_token"].(string)
	if tok == "" || second["access_token"] != tok {
		t.Fatalf("tokens %v / %v", first, second)
	}
	if n := sim.CallCount("wx0123456789abcdef", "/cgi-bin/stable_token"); n != 1 {
		t.Fatalf("%d stable_token calls, want 1", n)
	}
	// The token works for the business's own calls.
	other := wechat.NewClient(wechat.ClientOptions{BaseURLs: []string{simSrv.URL}})
	if _, err := other.WithTokenSource(staticSource(tok)).CallbackIPs(t.Context()); err != nil {
		t.Fatalf("the handed-out token does not work: %v", err)
	}
}

type staticSource string

func (s staticSource) Token(context.Context) (string, error)    { return string(s), nil }
func (s staticSource) Invalidate(context.Context, string) error { return nil }
