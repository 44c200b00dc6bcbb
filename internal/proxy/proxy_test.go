package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/proxy"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	appID  = "wx0000000000proxy1"
	secret = "proxysecret0000000000000000000001"
)

type env struct {
	sim    *wechatsim.Simulator
	upURL  string // the simulator, called directly
	tokens *token.Registry
	keys   *auth.Store
	store  *proxy.Store
	gw     *httptest.Server
	d      *db.DB
	// media holds what the fake media endpoint received (sha256 hex).
	uploaded chan string
}

// mediaBlob is what the media/get stand-in serves.
var mediaBlob = bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB

// start runs the simulator (plus media endpoints it lacks), a broker for
// account "main" and the proxy.
func start(t testing.TB, d *db.DB, opts proxy.Options) *env {
	t.Helper()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e := &env{sim: sim, d: d, uploaded: make(chan string, 4)}

	// The simulator has no media endpoints: these stand in for them and
	// check the token the proxy put in is the broker's.
	mux := http.NewServeMux()
	mux.Handle("/", sim.Handler())
	mux.HandleFunc("POST /cgi-bin/media/upload", func(w http.ResponseWriter, r *http.Request) {
		if tok, _ := e.tokens.Token(r.Context(), "main"); r.URL.Query().Get("access_token") != tok.Value {
			w.Write([]byte(`{"errcode":40001,"errmsg":"invalid credential"}`))
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		e.uploaded <- hex.EncodeToString(h.Sum(nil))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"type": "image", "media_id": "m1", "bytes": n})
	})
	mux.HandleFunc("GET /cgi-bin/media/get", func(w http.ResponseWriter, r *http.Request) {
		if tok, _ := e.tokens.Token(r.Context(), "main"); r.URL.Query().Get("access_token") != tok.Value {
			w.Write([]byte(`{"errcode":40001,"errmsg":"invalid credential"}`))
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(mediaBlob)
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	e.upURL = up.URL

	e.tokens = token.NewRegistry(d, token.Options{})
	acct := config.Account{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: secret, APIBaseURLs: []string{up.URL}}
	if _, err := e.tokens.AddAccount(acct, token.AccountOptions{HTTPClient: &http.Client{Timeout: 10 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	e.keys = auth.NewStore(d, nil)
	e.store = proxy.NewStore(d)
	opts.Tokens, opts.Auth, opts.DB = e.tokens, e.keys, d
	mux2 := http.NewServeMux()
	mux2.Handle(proxy.Prefix, proxy.New(opts))
	e.gw = httptest.NewServer(mux2)
	t.Cleanup(e.gw.Close)
	return e
}

func (e *env) key(t testing.TB, scopes ...auth.Scope) (string, auth.APIKey) {
	t.Helper()
	plain, k, err := e.keys.Create(context.Background(), "test", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return plain, k
}

func (e *env) get(t *testing.T, path, bearer string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (e *env) follow(t testing.TB, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		u, err := e.sim.CreateUser(context.Background(), wechatsim.CreateUserRequest{AppID: appID, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.OpenID)
	}
	return ids
}

type userGet struct {
	ErrCode int `json:"errcode"`
	Total   int `json:"total"`
	Data    struct {
		OpenID []string `json:"openid"`
	} `json:"data"`
}

func TestUserGetThroughProxy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := start(t, d, proxy.Options{})
		want := e.follow(t, 3)
		key, k := e.key(t, auth.ScopeProxy)

		// Header, then the key in access_token as an SDK would put its token.
		for _, c := range []struct{ path, bearer string }{
			{"/wechat/main/cgi-bin/user/get", key},
			{"/wechat/main/cgi-bin/user/get?access_token=" + key, ""},
		} {
			resp, body := e.get(t, c.path, c.bearer)
			var got userGet
			if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
			}
			if got.ErrCode != 0 || got.Total != 3 || len(got.Data.OpenID) != 3 {
				t.Fatalf("user/get = %s, want the 3 followers %v", body, want)
			}
			for _, id := range want {
				if !strings.Contains(string(body), id) {
					t.Fatalf("user/get misses %s: %s", id, body)
				}
			}
		}
		rows, err := e.store.Audit(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("audit rows = %d, want 2", len(rows))
		}
		tok, _ := e.tokens.Token(context.Background(), "main")
		for _, r := range rows {
			if r.KeyID != k.ID || r.Account != "main" || r.Path != "/cgi-bin/user/get" || r.HTTPStatus != 200 ||
				r.ErrCode == nil || *r.ErrCode != 0 || r.Retried {
				t.Fatalf("audit row = %+v", r)
			}
		}
		assertNoSecret(t, d, tok.Value, key)
	})
}

// assertNoSecret checks no audit column holds the token or the key.
func assertNoSecret(t *testing.T, d *db.DB, secrets ...string) {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), `SELECT account, method, path FROM proxy_audit`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, m, p string
		if err := rows.Scan(&a, &m, &p); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(a+m+p, s) {
				t.Fatalf("audit row holds a secret: %s %s %s", a, m, p)
			}
		}
	}
}

func TestRetryOnceAfterInvalidToken(t *testing.T) {
	e := start(t, dbtest.SQLite(t), proxy.Options{})
	e.follow(t, 1)
	key, _ := e.key(t, auth.ScopeProxy)
	if resp, body := e.get(t, "/wechat/main/cgi-bin/user/get", key); resp.StatusCode != 200 || !strings.Contains(string(body), `"total":1`) {
		t.Fatalf("first call: %d %s", resp.StatusCode, body)
	}
	before, _ := e.tokens.Token(context.Background(), "main")
	fetches := e.sim.CallCount(appID, "/cgi-bin/token") + e.sim.CallCount(appID, "/cgi-bin/stable_token")
	// Every current token of the app now answers 40001.
	if _, err := e.sim.SetFault(wechatsim.Fault{AppID: appID, InvalidateTokens: true}); err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t, "/wechat/main/cgi-bin/user/get", key)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"total":1`) {
		t.Fatalf("after 40001: %d %s, want the followers after one refresh", resp.StatusCode, body)
	}
	after, _ := e.tokens.Token(context.Background(), "main")
	if after.Value == before.Value {
		t.Fatal("the broker's token was not replaced")
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/token") + e.sim.CallCount(appID, "/cgi-bin/stable_token") - fetches; n != 1 {
		t.Fatalf("token fetches for the retry = %d, want 1", n)
	}
	rows, _ := e.store.Audit(context.Background(), 1)
	if len(rows) != 1 || !rows[0].Retried || rows[0].ErrCode == nil || *rows[0].ErrCode != 0 {
		t.Fatalf("audit of the retried call = %+v", rows)
	}

	// A persistent 40001 is retried once, then passed through unchanged.
	if _, err := e.sim.SetFault(wechatsim.Fault{AppID: appID, Path: "/cgi-bin/user/get", ErrCode: 40001}); err != nil {
		t.Fatal(err)
	}
	callsBefore := e.sim.CallCount(appID, "/cgi-bin/user/get")
	resp, body = e.get(t, "/wechat/main/cgi-bin/user/get", key)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"errcode":40001`) {
		t.Fatalf("persistent 40001: %d %s, want WeChat's answer", resp.StatusCode, body)
	}
	// The broker refuses to replace a token it has just fetched (its
	// breaker), so the call may not even be retried: never more than once.
	if n := e.sim.CallCount(appID, "/cgi-bin/user/get") - callsBefore; n < 1 || n > 2 {
		t.Fatalf("user/get calls for a persistent 40001 = %d, want 1 or 2 (at most one retry)", n)
	}
}

func TestTokenEndpointsAnswerFromBroker(t *testing.T) {
	e := start(t, dbtest.SQLite(t), proxy.Options{})
	key, _ := e.key(t, auth.ScopeProxy)
	tok, err := e.tokens.Token(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	fetches := e.sim.CallCount(appID, "/cgi-bin/token") + e.sim.CallCount(appID, "/cgi-bin/stable_token")
	type tokenAnswer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		ErrCode     int    `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
	}
	call := func(method, path, bearer, body string) tokenAnswer {
		t.Helper()
		req, _ := http.NewRequest(method, e.gw.URL+path, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var got tokenAnswer
		if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return got
	}
	classic := "/wechat/main/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret="
	stable := func(appid, secret string) string {
		return `{"grant_type":"client_credential","appid":"` + appid + `","secret":"` + secret + `","force_refresh":true}`
	}

	// With the bearer header (or the key as access_token): the broker's token.
	for _, got := range []tokenAnswer{
		call("GET", classic+"anything", key, ""),
		call("GET", "/wechat/main/cgi-bin/stable_token?access_token="+key, "", ""),
	} {
		if got.AccessToken != tok.Value || got.ExpiresIn <= 0 || got.ExpiresIn > 7200 {
			t.Fatalf("with the key as credential: %+v, want the broker's token %q", got, tok.Value)
		}
	}
	// An SDK holding the key as its AppSecret, token or stable_token (even
	// with force_refresh): the key comes back as its token, with the
	// broker token's lifetime, and works as the access_token of a call.
	for _, got := range []tokenAnswer{
		call("GET", classic+key, "", ""),
		call("POST", "/wechat/main/cgi-bin/stable_token", "", stable(appID, key)),
	} {
		if got.AccessToken != key || got.ExpiresIn <= 0 || got.ExpiresIn > 7200 {
			t.Fatalf("with the key as secret: %+v, want the key back", got)
		}
		resp, body := e.get(t, "/wechat/main/cgi-bin/user/get?access_token="+got.AccessToken, "")
		var page userGet
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 || page.ErrCode != 0 {
			t.Fatalf("user/get with the handed-out token: %d %s", resp.StatusCode, body)
		}
	}
	// Wrong secret or appid: WeChat's own errcodes, which SDKs report.
	for _, c := range []struct {
		got  tokenAnswer
		want int
	}{
		{call("GET", classic+"not-a-key", "", ""), 40125},
		{call("GET", classic+secret, "", ""), 40125}, // the real AppSecret is not a credential here
		{call("POST", "/wechat/main/cgi-bin/stable_token", "", stable(appID, "wxg_"+strings.Repeat("a", 40))), 40125},
		{call("GET", "/wechat/main/cgi-bin/token?grant_type=client_credential&appid=wx0000000000000000&secret="+key, "", ""), 40013},
		{call("POST", "/wechat/main/cgi-bin/stable_token", "", stable("wx0000000000000000", key)), 40013},
	} {
		if c.got.ErrCode != c.want || c.got.AccessToken != "" || c.got.ErrMsg == "" {
			t.Fatalf("got %+v, want errcode %d", c.got, c.want)
		}
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/token") + e.sim.CallCount(appID, "/cgi-bin/stable_token"); n != fetches {
		t.Fatalf("upstream token fetches went from %d to %d", fetches, n)
	}
}

// A call signed with the AppSecret (jscode2session) reaches WeChat with
// the account's real secret in place of the key.
func TestSecretSignedCallGetsTheAccountSecret(t *testing.T) {
	e := start(t, dbtest.SQLite(t), proxy.Options{})
	const mpID, mpSecret = "wx0000000000proxy2", "proxysecret0000000000000000000002"
	if err := e.sim.AddApp(wechatsim.AppConfig{AppID: mpID, AppSecret: mpSecret, Kind: wechatsim.KindMiniProgram}); err != nil {
		t.Fatal(err)
	}
	mini := config.Account{Name: "mini", Kind: config.KindMiniProgram, AppID: mpID, AppSecret: mpSecret, APIBaseURLs: []string{e.upURL}}
	if _, err := e.tokens.AddAccount(mini, token.AccountOptions{}); err != nil {
		t.Fatal(err)
	}
	key, _ := e.key(t, auth.ScopeProxy)
	u, err := e.sim.CreateUser(context.Background(), wechatsim.CreateUserRequest{AppID: mpID})
	if err != nil {
		t.Fatal(err)
	}
	login := func(secret string) map[string]any {
		t.Helper()
		res, err := e.sim.Act(context.Background(), u.OpenID, wechatsim.Action{AppID: mpID, Type: "open_miniprogram"})
		if err != nil {
			t.Fatal(err)
		}
		resp, body := e.get(t, "/wechat/mini/sns/jscode2session?appid="+mpID+"&secret="+secret+"&js_code="+res.Code+"&grant_type=authorization_code", "")
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("jscode2session: %d %s", resp.StatusCode, body)
		}
		return got
	}
	if got := login(key); got["openid"] != u.OpenID || got["session_key"] == nil {
		t.Fatalf("jscode2session with the key as secret = %v, want the session of %s", got, u.OpenID)
	}
	if got := login("wrong"); got["errcode"] != float64(40125) {
		t.Fatalf("jscode2session with a wrong secret = %v, want 40125", got)
	}
	if n := e.sim.CallCount(mpID, "/sns/jscode2session"); n != 1 {
		t.Fatalf("jscode2session reached WeChat %d times, want once (the wrong secret is refused locally)", n)
	}
}

type problemBody struct {
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func TestRefusals(t *testing.T) {
	e := start(t, dbtest.SQLite(t), proxy.Options{Rate: 1, Burst: 2})
	e.follow(t, 1)
	proxyKey, _ := e.key(t, auth.ScopeProxy)
	readKey, _ := e.key(t, auth.ScopeRead)
	adminKey, _ := e.key(t, auth.ScopeAdmin)
	listed, lk := e.key(t, auth.ScopeProxy)
	if err := e.store.SetAllowedPaths(context.Background(), lk.ID, []string{"cgi-bin/user/"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"no key", "/wechat/main/cgi-bin/user/get", "", 401, "unauthorized"},
		{"bad key", "/wechat/main/cgi-bin/user/get", "wxg_nope", 401, "unauthorized"},
		{"read scope", "/wechat/main/cgi-bin/user/get", readKey, 403, "forbidden"},
		{"unknown account", "/wechat/nope/cgi-bin/user/get", proxyKey, 404, "account_not_found"},
		{"outside allow-list", "/wechat/main/cgi-bin/menu/get", listed, 403, "path_not_allowed"},
		{"inside allow-list", "/wechat/main/cgi-bin/user/get", listed, 200, ""},
		{"admin", "/wechat/main/cgi-bin/user/get", adminKey, 200, ""},
	} {
		resp, body := e.get(t, c.path, c.key)
		var p problemBody
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != c.status || p.Error.Code != c.code {
			t.Errorf("%s: %d %s, want %d %q", c.name, resp.StatusCode, body, c.status, c.code)
		}
	}
	// WeChat's own errcode passes through unchanged.
	resp, body := e.get(t, "/wechat/main/cgi-bin/user/info?openid=nobody", proxyKey)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"errcode":40003`) {
		t.Errorf("user/info of a stranger: %d %s, want WeChat's errcode 40003", resp.StatusCode, body)
	}
	// Rate limit: burst 2 at 1/s, the third call at once is refused.
	var last *http.Response
	for range 3 {
		last, body = e.get(t, "/wechat/main/cgi-bin/user/get", proxyKey)
	}
	var p problemBody
	_ = json.Unmarshal(body, &p)
	if last.StatusCode != 429 || p.Error.Code != "rate_limited" || last.Header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %s Retry-After=%q", last.StatusCode, body, last.Header.Get("Retry-After"))
	}
}

func TestMediaStreamsBothWays(t *testing.T) {
	e := start(t, dbtest.SQLite(t), proxy.Options{})
	key, _ := e.key(t, auth.ScopeProxy)

	// Upload 6 MiB, more than the replay buffer: streamed.
	blob := bytes.Repeat([]byte{0, 1, 2, 3, 250, 251, 252, 253}, 6<<20/8)
	want := sha256.Sum256(blob)
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/wechat/main/cgi-bin/media/upload?type=image&access_token="+key, bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"media_id":"m1"`) {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	select {
	case got := <-e.uploaded:
		if got != hex.EncodeToString(want[:]) {
			t.Fatal("uploaded bytes differ")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upload never arrived")
	}

	resp, body = e.get(t, "/wechat/main/cgi-bin/media/get?media_id=m1", key)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, mediaBlob) {
		t.Fatalf("download: %d %s, %d bytes, want %d intact", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(mediaBlob))
	}
}
