// Package proxy relays WeChat API calls of existing services under
// /wechat/{account}/…, with the token broker's access_token in place of
// theirs, so that an SDK that fetches its own tokens no longer invalidates
// everyone else's.
//
// A caller authenticates with a wxgate API key of scope proxy (or admin):
// the header Authorization: Bearer wxg_…, the key itself in the
// access_token query parameter, where an SDK puts what it takes for the
// token, or the key as the SDK's AppSecret. The key is removed and the
// broker's current token put in its place. cgi-bin/token and
// cgi-bin/stable_token are answered from the broker, in WeChat's shape,
// without calling WeChat: with the broker's token for a bearer caller,
// with the key itself for an SDK that sent it as its secret (so that its
// later calls carry the key, and the real token stays inside wxgate).
//
// Retry. On errcode 40001, 40014 or 42001 the broker is told which token
// failed and the call is sent once more with the replacement. Only small
// answers are inspected: JSON or text/plain bodies up to 64 KiB; larger or
// binary answers (media downloads) stream straight through. Only request
// bodies up to 1 MiB are buffered, so only they can be replayed for the
// retry or sent to the backup domain; a larger body (a media upload)
// streams to one domain, once, and its errcode reaches the caller as is.
//
// Failover between the account's api_base_urls is the account client's
// own (wechat.Client.Forward). Every call writes a proxy_audit row: key,
// account, path, HTTP status, errcode, duration; never the token or the
// query string.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Prefix is where the proxy is mounted.
const Prefix = "/wechat/"

// Limits of what is held in memory.
const (
	// MaxReplayBody is the largest request body buffered for a retry.
	MaxReplayBody = 1 << 20
	// MaxInspectAnswer is the largest JSON/text answer read for its errcode.
	MaxInspectAnswer = 64 << 10
)

// DefaultRate is the default per-key limit, requests per second.
const DefaultRate = 50

// Options configures the proxy.
type Options struct {
	Tokens *token.Registry
	Auth   *auth.Store
	// DB holds proxy_audit and proxy_allow_paths.
	DB     *db.DB
	Logger *slog.Logger
	Now    func() time.Time
	// Rate per key and second (Burst at once); 0 means DefaultRate,
	// negative means no limit.
	Rate  float64
	Burst int
	// SharedLimits, a PostgreSQL database, holds the key buckets so the
	// rate holds across every instance; nil keeps them in this process.
	SharedLimits *db.DB
}

// Handler serves /wechat/{account}/….
type Handler struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	limits *auth.KeyLimiter
}

// New returns the proxy handler; mount it at Prefix.
func New(opts Options) *Handler {
	h := &Handler{opts: opts, log: opts.Logger, now: opts.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.opts.Rate == 0 {
		h.opts.Rate = DefaultRate
	}
	h.limits = auth.NewKeyLimiter("proxy_key", h.opts.Rate, h.opts.Burst, h.opts.SharedLimits, h.log)
	return h
}

// Store keeps the per-key path allow-lists.
type Store struct{ db *db.DB }

// NewStore returns the allow-list store on d.
func NewStore(d *db.DB) *Store { return &Store{db: d} }

// SetAllowedPaths replaces key id's allow-list; none means every path.
func (s *Store) SetAllowedPaths(ctx context.Context, keyID int64, prefixes []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("proxy: allow-list of key %d: %w", keyID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM proxy_allow_paths WHERE key_id = $1`, keyID); err != nil {
		return fmt.Errorf("proxy: allow-list of key %d: %w", keyID, err)
	}
	for _, p := range prefixes {
		p = strings.TrimLeft(strings.TrimSpace(p), "/")
		if p == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO proxy_allow_paths (key_id, path_prefix) VALUES ($1, $2) ON CONFLICT DO NOTHING`, keyID, p); err != nil {
			return fmt.Errorf("proxy: allow-list of key %d: %w", keyID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("proxy: allow-list of key %d: %w", keyID, err)
	}
	return nil
}

// AllowedPaths returns key id's allow-list (empty: every path).
func (s *Store) AllowedPaths(ctx context.Context, keyID int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path_prefix FROM proxy_allow_paths WHERE key_id = $1 ORDER BY path_prefix`, keyID)
	if err != nil {
		return nil, fmt.Errorf("proxy: reading allow-list of key %d: %w", keyID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("proxy: reading allow-list of key %d: %w", keyID, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AuditRow is one proxied call.
type AuditRow struct {
	KeyID      int64
	Account    string
	Method     string
	Path       string
	HTTPStatus int
	ErrCode    *int
	Retried    bool
	DurationMS int64
	CreatedAt  time.Time
}

// Audit returns the newest rows first, at most limit.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_id, account, method, path, http_status, errcode, retried, duration_ms, created_at
		FROM proxy_audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("proxy: reading audit: %w", err)
	}
	defer rows.Close()
	var out []AuditRow
	for rows.Next() {
		var a AuditRow
		var code *int64
		if err := rows.Scan(&a.KeyID, &a.Account, &a.Method, &a.Path, &a.HTTPStatus, &code, &a.Retried, &a.DurationMS, &a.CreatedAt); err != nil {
			return nil, fmt.Errorf("proxy: reading audit: %w", err)
		}
		if code != nil {
			c := int(*code)
			a.ErrCode = &c
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

var (
	errMissingKey = problem.New(problem.Unauthorized, "unauthorized", "Authorization",
		"missing API key: send Authorization: Bearer wxg_… or put the key in access_token — 缺少 API 密钥：请携带 Authorization: Bearer wxg_… 或把密钥放在 access_token 参数中")
	errNoPath = problem.NotFoundf("not_found", "path",
		"no WeChat API path: use /wechat/{account}/cgi-bin/… — 缺少微信接口路径：请使用 /wechat/{账号}/cgi-bin/…")
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		auth.WriteError(w, r, errNoPath)
		return
	}
	account, apiPath, _ := strings.Cut(rest, "/")
	cred, err := credentialOf(r, apiPath)
	if err != nil {
		auth.WriteError(w, r, err)
		return
	}
	if cred.key == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxgate"`)
		auth.WriteError(w, r, errMissingKey)
		return
	}
	broker, ok := h.opts.Tokens.Broker(account)
	client, cok := h.opts.Tokens.Client(account)
	if cred.asSecret && (!ok || !cok) {
		auth.WriteError(w, r, config.UnknownAccount(account))
		return
	}
	// An SDK that took the key for its AppSecret gets WeChat's own
	// answers to a wrong appid or secret, which it knows how to report.
	if cred.asSecret && cred.appID != "" && cred.appID != broker.AppID() {
		writeJSON(w, http.StatusOK, map[string]any{"errcode": 40013,
			"errmsg": "invalid appid: it is not the AppID of wxgate account " + strconv.Quote(account)})
		return
	}
	key, err := h.opts.Auth.Verify(r.Context(), cred.key)
	if errors.Is(err, auth.ErrInvalidKey) {
		if cred.asSecret {
			writeJSON(w, http.StatusOK, map[string]any{"errcode": 40125,
				"errmsg": "invalid appsecret: through wxgate's proxy the secret is a wxgate API key of scope proxy — 经 wxgate 代理时 secret 应为 proxy 权限的 API 密钥"})
			return
		}
		auth.WriteError(w, r, auth.ErrRejectedKey)
		return
	}
	if err != nil {
		h.log.ErrorContext(r.Context(), "proxy: checking API key", slog.String("error", err.Error()))
		auth.WriteError(w, r, err)
		return
	}
	if !key.Has(auth.ScopeProxy) {
		auth.WriteError(w, r, auth.ForbiddenError(auth.ScopeProxy))
		return
	}
	if !ok || !cok {
		auth.WriteError(w, r, config.UnknownAccount(account))
		return
	}
	if apiPath == "" {
		auth.WriteError(w, r, errNoPath)
		return
	}
	if err := h.checkPath(r.Context(), key.ID, apiPath); err != nil {
		auth.WriteError(w, r, err)
		return
	}
	if wait, limited := h.limits.Allow(r.Context(), key.ID); limited {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		auth.WriteError(w, r, problem.Newf(problem.RateLimited, "rate_limited", "",
			"too many proxy calls for this API key, retry in %s — 代理调用过于频繁，请 %s 后重试", wait.Round(time.Millisecond), wait.Round(time.Millisecond)))
		return
	}

	rec := &AuditRow{KeyID: key.ID, Account: account, Method: r.Method, Path: "/" + apiPath}
	defer func() {
		rec.DurationMS = h.now().Sub(start).Milliseconds()
		rec.CreatedAt = db.Timestamp(h.now())
		h.audit(r.Context(), rec)
	}()

	switch apiPath {
	case "cgi-bin/token", "cgi-bin/stable_token":
		h.serveToken(w, r, broker, cred, rec)
		return
	}
	h.forward(w, r, client, broker, "/"+apiPath, cred, rec)
}

// credential is the API key of a request and where it came from.
type credential struct {
	key string
	// asSecret: the key came in the secret parameter (query, or the JSON
	// body of stable_token), where an SDK puts the AppSecret.
	asSecret bool
	// appID the caller named next to the secret, if any.
	appID string
}

// credentialOf finds the API key of the request: the bearer header first,
// else the access_token parameter, else the secret parameter of an SDK
// configured with the key as its AppSecret (in the query, or for
// stable_token in its JSON body, which is then put back for reading).
func credentialOf(r *http.Request, apiPath string) (credential, error) {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if tok = strings.TrimSpace(tok); tok != "" {
			return credential{key: tok}, nil
		}
	}
	q := r.URL.Query()
	if tok := q.Get("access_token"); tok != "" {
		return credential{key: tok}, nil
	}
	if secret := q.Get("secret"); secret != "" {
		return credential{key: secret, asSecret: true, appID: q.Get("appid")}, nil
	}
	if apiPath == "cgi-bin/stable_token" && r.Method == http.MethodPost && r.Body != nil {
		raw, err := io.ReadAll(io.LimitReader(r.Body, MaxInspectAnswer+1))
		if err != nil {
			return credential{}, problem.Newf(problem.Invalid, "invalid_body", "", "reading the request body: %v — 读取请求体失败", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var body struct {
			AppID  string `json:"appid"`
			Secret string `json:"secret"`
		}
		if len(raw) <= MaxInspectAnswer && json.Unmarshal(raw, &body) == nil && body.Secret != "" {
			return credential{key: body.Secret, asSecret: true, appID: body.AppID}, nil
		}
	}
	return credential{}, nil
}

func (h *Handler) checkPath(ctx context.Context, keyID int64, apiPath string) error {
	allowed, err := NewStore(h.opts.DB).AllowedPaths(ctx, keyID)
	if err != nil {
		return err
	}
	if len(allowed) == 0 {
		return nil
	}
	for _, p := range allowed {
		if strings.HasPrefix(apiPath, p) {
			return nil
		}
	}
	return problem.Newf(problem.Forbidden, "path_not_allowed", "path",
		"this API key may not call %q through the proxy — 此 API 密钥不允许通过代理调用 %q", "/"+apiPath, "/"+apiPath)
}

// serveToken answers cgi-bin/token and cgi-bin/stable_token from the
// broker. A caller that sent its key as the secret gets the key back as
// its access_token, with the broker token's lifetime: its SDK then sends
// the key on every call (which authenticates it), and the real token
// never leaves wxgate. A caller with the bearer header gets the broker's
// token itself.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, b *token.Broker, cred credential, rec *AuditRow) {
	tok, err := b.Current(r.Context())
	if err != nil {
		h.log.WarnContext(r.Context(), "proxy: broker token", slog.String("account", rec.Account), slog.String("error", err.Error()))
		rec.HTTPStatus = http.StatusOK
		code := -1
		rec.ErrCode = &code
		writeJSON(w, http.StatusOK, map[string]any{"errcode": -1, "errmsg": "system error: wxgate has no access_token now"})
		return
	}
	zero := 0
	rec.HTTPStatus, rec.ErrCode = http.StatusOK, &zero
	handed := tok.Value
	if cred.asSecret {
		handed = cred.key
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": handed,
		"expires_in":   max(int(tok.ExpiresIn(h.now()).Seconds()), 0),
	})
}

// writeJSON answers in WeChat's shape: compact JSON with no trailing
// newline, which some SDKs (co-wechat-api) cannot parse.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()-1))
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// hop-by-hop and wxgate-only request headers, not forwarded.
var dropRequest = map[string]bool{
	"Authorization": true, "Cookie": true, "Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	"Accept-Encoding": true,
}

var dropResponse = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Trailer": true, "Upgrade": true,
	"Content-Length": true, "Set-Cookie": true,
}

func (h *Handler) forward(w http.ResponseWriter, r *http.Request, c *wechat.Client, b *token.Broker, apiPath string, cred credential, rec *AuditRow) {
	ctx := r.Context()
	query := r.URL.Query()
	query.Del("access_token")
	// Calls signed with the AppSecret rather than a token (jscode2session,
	// the web sign-in's oauth2/access_token) get the account's secret in
	// place of the key, and no token.
	withSecret := cred.asSecret
	if withSecret {
		query.Set("secret", b.AppSecret())
	}
	header := http.Header{}
	for k, v := range r.Header {
		if !dropRequest[k] {
			header[k] = v
		}
	}

	// The request body: buffered up to MaxReplayBody, streamed beyond.
	var getBody func() (io.ReadCloser, error)
	replayable := true
	length := r.ContentLength
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		buf, err := io.ReadAll(io.LimitReader(r.Body, MaxReplayBody+1))
		if err != nil {
			rec.HTTPStatus = http.StatusBadRequest
			auth.WriteError(w, r, problem.Newf(problem.Invalid, "invalid_body", "", "reading the request body: %v — 读取请求体失败", err))
			return
		}
		if len(buf) <= MaxReplayBody {
			length = int64(len(buf))
			getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		} else {
			replayable = false
			used := false
			getBody = func() (io.ReadCloser, error) {
				if used {
					return nil, errors.New("the streamed request body cannot be sent twice")
				}
				used = true
				return io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body)), nil
			}
		}
	}

	for attempt := 0; ; attempt++ {
		tok, err := b.Token(ctx)
		if err != nil {
			h.log.WarnContext(ctx, "proxy: broker token", slog.String("account", rec.Account), slog.String("error", err.Error()))
			rec.HTTPStatus = http.StatusServiceUnavailable
			auth.WriteError(w, r, problem.Newf(problem.Unavailable, "token_unavailable", "",
				"no access_token for account %q now — 账号 %q 暂无可用 access_token", rec.Account, rec.Account))
			return
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if !withSecret {
			q.Set("access_token", tok)
		}
		resp, err := c.Forward(ctx, wechat.ForwardRequest{
			Method: r.Method, Path: apiPath, Query: q, Header: header,
			Body: getBody, Replayable: replayable, ContentLength: length,
		})
		if err != nil {
			h.log.WarnContext(ctx, "proxy: WeChat API unreachable", slog.String("account", rec.Account),
				slog.String("path", apiPath), slog.String("error", err.Error()))
			rec.HTTPStatus = http.StatusBadGateway
			auth.WriteError(w, r, problem.Newf(problem.Upstream, "wechat_unavailable", "",
				"WeChat's API did not answer — 微信接口无响应"))
			return
		}
		if !inspectable(resp) {
			rec.HTTPStatus = resp.StatusCode
			stream(w, resp)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxInspectAnswer+1))
		if err != nil {
			resp.Body.Close()
			rec.HTTPStatus = http.StatusBadGateway
			auth.WriteError(w, r, problem.Newf(problem.Upstream, "wechat_unavailable", "", "WeChat's answer broke off — 微信接口响应中断"))
			return
		}
		if len(raw) > MaxInspectAnswer {
			// Larger than announced: pass it on without looking.
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(raw), resp.Body), resp.Body}
			rec.HTTPStatus = resp.StatusCode
			stream(w, resp)
			return
		}
		resp.Body.Close()
		code, hasCode := errcodeOf(raw)
		rec.ErrCode = nil
		if hasCode {
			rec.ErrCode = &code
		}
		if hasCode && wechat.ClassOfCode(code) == wechat.ClassTokenInvalid && attempt == 0 && replayable {
			if ierr := b.Invalidate(ctx, tok); ierr == nil {
				h.log.InfoContext(ctx, "proxy: retrying with a refreshed access_token",
					slog.String("account", rec.Account), slog.String("path", apiPath), slog.Int("errcode", code))
				rec.Retried = true
				continue
			} else {
				h.log.WarnContext(ctx, "proxy: replacing the rejected access_token", slog.String("account", rec.Account), slog.String("error", ierr.Error()))
			}
		}
		rec.HTTPStatus = resp.StatusCode
		copyHeader(w.Header(), resp.Header)
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(raw)
		return
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// inspectable: a small JSON or text answer, read whole for its errcode.
func inspectable(resp *http.Response) bool {
	if resp.ContentLength > MaxInspectAnswer {
		return false
	}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	return ct == "" || strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/plain")
}

func stream(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		if !dropResponse[k] {
			dst[k] = v
		}
	}
}

// errcodeOf reads errcode from a JSON object answer; an object without
// one is a success (0), as on WeChat.
func errcodeOf(raw []byte) (int, bool) {
	var env struct {
		ErrCode json.Number `json:"errcode"`
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &env) != nil {
		return 0, false
	}
	if env.ErrCode == "" {
		return 0, true
	}
	n, err := env.ErrCode.Int64()
	if err != nil {
		return 0, false
	}
	return int(n), true
}

func (h *Handler) audit(ctx context.Context, a *AuditRow) {
	if h.opts.DB == nil {
		return
	}
	var code any
	if a.ErrCode != nil {
		code = *a.ErrCode
	}
	// The audit must outlive a caller that hung up.
	ctx = context.WithoutCancel(ctx)
	if _, err := h.opts.DB.ExecContext(ctx, `INSERT INTO proxy_audit (key_id, account, method, path, http_status, errcode, retried, duration_ms, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		a.KeyID, a.Account, a.Method, a.Path, a.HTTPStatus, code, a.Retried, a.DurationMS, a.CreatedAt); err != nil {
		h.log.WarnContext(ctx, "proxy: writing audit row", slog.String("error", err.Error()))
	}
}
