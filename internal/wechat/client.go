package wechat

// The API client.
//
// One *Client talks to WeChat's server API for one account. It is built
// with NewClient from ClientOptions: the ordered base URLs (api → api2 →
// regional), the *http.Client to use, a logger and a clock; nothing is
// global. Every method takes a context first.
//
// Tokens. Calls that need an access_token ask a TokenSource for it
// (WithTokenSource). When WeChat answers 40001, 40014 or 42001 the client
// tells the source which token failed (Invalidate) and retries the call
// once with the token the source hands out next. That rule lives here, in
// one place, so no caller has to repeat it; the token broker
// (internal/token) is the TokenSource and decides whether a refresh is
// really needed (compare-and-refresh). The token endpoints themselves
// (GetToken, GetStableToken) and jscode2session need no token source.
// A ClassTokenInvalid error from a client with a token source therefore
// means the retry with a fresh token failed too: back off, do not loop.
//
// Errors. Every failure is typed: *APIError (errcode ≠ 0), *HTTPError
// (non-2xx), *TransportError (no answer), *DecodeError (unreadable
// answer). ClassOf(err) sorts any of them into retryable, token_invalid,
// quota or permanent.
//
// Failover. A call goes to the first base URL that is not cooling down.
// A transport error (connection refused, reset, timeout) or an HTTP 5xx
// marks that URL down for FailoverCooldown and the same request, with
// the same buffered body, goes to the next URL, except for a call WeChat
// does not de-duplicate whose request may have arrived (see
// OutcomeUnknown). An errcode is WeChat's answer and never causes
// failover. Once the cool-down has passed the
// primary is tried first again. When every URL is cooling down they are
// all tried in order anyway.
//
// Secrets. The access_token and AppSecret travel in the query string;
// every URL put in a log line or an error has them masked.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultFailoverCooldown is how long a base URL that failed is skipped.
const DefaultFailoverCooldown = time.Minute

// maxResponseBytes bounds a JSON answer read into memory.
const maxResponseBytes = 16 << 20

// TokenSource hands out the account's access_token. Invalidate reports a
// token WeChat rejected with a token-invalid errcode; the source replaces
// it only if it is still the current one, so many callers failing with the
// same token cause one refresh.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	Invalidate(ctx context.Context, failedToken string) error
}

// ClientOptions configures a Client.
type ClientOptions struct {
	// BaseURLs are tried in order, e.g. https://api.weixin.qq.com then
	// https://api2.weixin.qq.com. Empty means DefaultBaseURLs.
	BaseURLs []string
	// QRCodeBaseURL is where showqrcode lives; empty means https://mp.weixin.qq.com.
	QRCodeBaseURL string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives one debug line per call and a warning per failover;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FailoverCooldown is how long a failing base URL is skipped; zero
	// means DefaultFailoverCooldown.
	FailoverCooldown time.Duration
}

// DefaultBaseURLs are WeChat's general API domain and its disaster-recovery domain.
func DefaultBaseURLs() []string {
	return []string{"https://api.weixin.qq.com", "https://api2.weixin.qq.com"}
}

// Client calls WeChat's server API. It is safe for concurrent use.
type Client struct {
	t      *transport
	tokens TokenSource
}

// transport is the part shared by a Client and the copies made by WithTokenSource.
type transport struct {
	baseURLs []string
	qrBase   string
	http     *http.Client
	log      *slog.Logger
	now      func() time.Time
	cooldown time.Duration

	mu        sync.Mutex
	downUntil []time.Time // per base URL; zero = up
}

// NewClient returns a client for one account.
func NewClient(opts ClientOptions) *Client {
	bases := opts.BaseURLs
	if len(bases) == 0 {
		bases = DefaultBaseURLs()
	}
	clean := make([]string, len(bases))
	for i, b := range bases {
		clean[i] = strings.TrimRight(b, "/")
	}
	t := &transport{
		baseURLs:  clean,
		qrBase:    strings.TrimRight(opts.QRCodeBaseURL, "/"),
		http:      opts.HTTPClient,
		log:       opts.Logger,
		now:       opts.Now,
		cooldown:  opts.FailoverCooldown,
		downUntil: make([]time.Time, len(clean)),
	}
	if t.qrBase == "" {
		t.qrBase = "https://mp.weixin.qq.com"
	}
	if t.http == nil {
		t.http = &http.Client{Timeout: 30 * time.Second}
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.cooldown <= 0 {
		t.cooldown = DefaultFailoverCooldown
	}
	return &Client{t: t}
}

// WithTokenSource returns a client that shares c's base URLs, HTTP client
// and failover state and takes access_tokens from ts.
func (c *Client) WithTokenSource(ts TokenSource) *Client {
	return &Client{t: c.t, tokens: ts}
}

// BaseURLs returns the base URLs in the order they are tried when all are up.
func (c *Client) BaseURLs() []string { return append([]string(nil), c.t.baseURLs...) }

// ErrNoTokenSource is returned by calls that need an access_token on a
// client built without WithTokenSource.
var ErrNoTokenSource = errors.New("wechat: this call needs an access_token but the client has no token source")

// call describes one API request.
type call struct {
	method string
	path   string
	query  url.Values // without access_token
	body   any        // JSON-encoded when non-nil
	// raw, when set, is sent as it is with contentType (a multipart upload).
	raw         []byte
	contentType string
	token       bool // needs an access_token
	// once: WeChat does not de-duplicate this call, so once the request
	// may have reached a domain it is not sent to the next one.
	once bool
}

// do runs a call and decodes the answer into out (which may be nil). Calls
// that need a token get one from the token source and are retried once
// with a fresh token on a token-invalid errcode.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var body []byte
	if cl.body != nil {
		b, err := encodeJSON(cl.body)
		if err != nil {
			return fmt.Errorf("wechat %s: encode request: %w", cl.path, err)
		}
		body = b
	}
	if cl.raw != nil {
		body = cl.raw
	}
	if !cl.token {
		return c.t.roundTrip(ctx, cl, "", body, out)
	}
	if c.tokens == nil {
		return ErrNoTokenSource
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return fmt.Errorf("wechat %s: access_token: %w", cl.path, err)
	}
	err = c.t.roundTrip(ctx, cl, tok, body, out)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Class() != ClassTokenInvalid {
		return err
	}
	// The token source's error comes first, so ClassOf reports its class
	// (e.g. refreshes paused) rather than token_invalid.
	if ierr := c.tokens.Invalidate(ctx, tok); ierr != nil {
		return errors.Join(fmt.Errorf("wechat %s: replacing the rejected access_token: %w", cl.path, ierr), err)
	}
	next, terr := c.tokens.Token(ctx)
	if terr != nil {
		return errors.Join(fmt.Errorf("wechat %s: access_token after refresh: %w", cl.path, terr), err)
	}
	c.t.log.LogAttrs(ctx, slog.LevelInfo, "wechat: retrying with a refreshed access_token",
		slog.String("path", cl.path), slog.Int("errcode", apiErr.Code), slog.Bool("token_changed", next != tok))
	return c.t.roundTrip(ctx, cl, next, body, out)
}

// roundTrip sends the request to the first healthy base URL, failing over
// on transport errors and 5xx, and decodes the JSON answer.
func (t *transport) roundTrip(ctx context.Context, cl call, token string, body []byte, out any) error {
	order := t.order()
	var lastErr error
	for n, i := range order {
		raw, header, err := t.send(ctx, t.baseURLs[i], cl, token, body)
		if err == nil {
			t.markUp(i)
			if d, ok := out.(*Download); ok && !looksLikeJSON(raw) {
				d.Data, d.ContentType, d.FileName = raw, header.Get("Content-Type"), fileNameOf(header)
				return nil
			}
			return decodeResponse(cl.path, raw, out)
		}
		if ctx.Err() != nil || !failsOver(err) || cl.once && OutcomeUnknown(err) {
			return err
		}
		lastErr = err
		t.markDown(i)
		if n+1 < len(order) {
			t.log.LogAttrs(ctx, slog.LevelWarn, "wechat: API domain failed, trying the next one",
				slog.String("failed", t.baseURLs[i]), slog.String("next", t.baseURLs[order[n+1]]),
				slog.String("path", cl.path), slog.String("error", err.Error()))
		}
	}
	return lastErr
}

// order returns the indexes of the base URLs to try: the healthy ones in
// configured order, then those cooling down (so a call is never refused
// outright because every domain failed recently).
func (t *transport) order() []int {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	up := make([]int, 0, len(t.baseURLs))
	var down []int
	for i, until := range t.downUntil {
		if until.IsZero() || !now.Before(until) {
			up = append(up, i)
		} else {
			down = append(down, i)
		}
	}
	return append(up, down...)
}

func (t *transport) markDown(i int) {
	t.mu.Lock()
	t.downUntil[i] = t.now().Add(t.cooldown)
	t.mu.Unlock()
}

func (t *transport) markUp(i int) {
	t.mu.Lock()
	t.downUntil[i] = time.Time{}
	t.mu.Unlock()
}

// failsOver reports whether err should move the call to the next base URL.
func failsOver(err error) bool {
	var te *TransportError
	var he *HTTPError
	switch {
	case errors.As(err, &te):
		return true
	case errors.As(err, &he):
		return he.StatusCode >= 500
	}
	return false
}

// send performs one HTTP exchange and returns the body of a 2xx answer.
func (t *transport) send(ctx context.Context, base string, cl call, token string, body []byte) ([]byte, http.Header, error) {
	q := url.Values{}
	for k, v := range cl.query {
		q[k] = v
	}
	if cl.token {
		q.Set("access_token", token)
	}
	u := base + cl.path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// wrote tells a lost answer (the request went out: WeChat may have
	// acted) from a request that never left.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, cl.method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("wechat %s: build request: %s", cl.path, redactText(err.Error()))
	}
	if body != nil {
		ctype := "application/json; charset=utf-8"
		if cl.contentType != "" {
			ctype = cl.contentType
		}
		req.Header.Set("Content-Type", ctype)
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req.Header.Set("Accept", "application/json")
	start := t.now()
	resp, err := t.http.Do(req)
	attrs := []slog.Attr{
		slog.String("method", cl.method), slog.String("url", RedactURL(u)),
	}
	if err != nil {
		terr := &TransportError{Path: cl.path, Host: hostOf(base), Err: scrubError(err), Sent: wrote.Load()}
		t.log.LogAttrs(ctx, slog.LevelDebug, "wechat api call", append(attrs,
			slog.Duration("took", t.now().Sub(start)), slog.String("error", terr.Error()))...)
		return nil, nil, terr
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	attrs = append(attrs, slog.Int("status", resp.StatusCode), slog.Duration("took", t.now().Sub(start)))
	if err != nil {
		terr := &TransportError{Path: cl.path, Host: hostOf(base), Err: scrubError(err), Sent: true}
		t.log.LogAttrs(ctx, slog.LevelDebug, "wechat api call", append(attrs, slog.String("error", terr.Error()))...)
		return nil, nil, terr
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		t.log.LogAttrs(ctx, slog.LevelDebug, "wechat api call", attrs...)
		return nil, nil, &HTTPError{Path: cl.path, Host: hostOf(base), StatusCode: resp.StatusCode}
	}
	t.log.LogAttrs(ctx, slog.LevelDebug, "wechat api call", attrs...)
	return raw, resp.Header, nil
}

func hostOf(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return base
}

// envelope is the errcode/errmsg pair every answer may carry.
type envelope struct {
	ErrCode json.RawMessage `json:"errcode"`
	ErrMsg  json.RawMessage `json:"errmsg"`
}

// decodeResponse turns a 2xx body into out or an *APIError. The body is
// sniffed, not trusted by Content-Type: WeChat labels JSON text/plain on
// some endpoints.
func decodeResponse(path string, raw []byte, out any) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &DecodeError{Path: path, Err: errors.New("answer is not a JSON object"), Snippet: snippet(trimmed)}
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return &DecodeError{Path: path, Err: err, Snippet: snippet(trimmed)}
	}
	code, err := lenientInt(env.ErrCode)
	if err != nil {
		return &DecodeError{Path: path, Err: fmt.Errorf("errcode: %w", err), Snippet: snippet(trimmed)}
	}
	if code != 0 {
		return newAPIError(path, int(code), lenientString(env.ErrMsg))
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &DecodeError{Path: path, Err: err, Snippet: snippet(trimmed)}
	}
	return nil
}

func snippet(b []byte) string {
	const n = 120
	if len(b) > n {
		b = b[:n]
	}
	return redactText(string(b))
}

// encodeJSON marshals v the way WeChat wants it: no HTML escaping and no
// \uXXXX escapes (errcode 40033 refuses them), Chinese as raw UTF-8.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeUnicode(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// unescapeUnicode rewrites the \u2028, \u2029 and \ufffd escapes that
// encoding/json writes even with HTML escaping off as raw UTF-8. Other
// \u escapes (control characters) cannot be written raw in JSON and stay.
func unescapeUnicode(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			switch string(b[i+2 : i+6]) {
			case "2028":
				out = append(out, "\u2028"...)
				i += 5
				continue
			case "2029":
				out = append(out, "\u2029"...)
				i += 5
				continue
			case "fffd":
				out = append(out, "\ufffd"...)
				i += 5
				continue
			}
		}
		// Any other escape: copy the backslash and the escaped byte as is.
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

// secretParams are query parameters masked wherever a URL is shown.
var secretParams = []string{"access_token", "secret", "appsecret", "js_code", "code"}

// RedactURL masks the access_token, secret and login code in a URL's query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactText(raw)
	}
	q := u.Query()
	changed := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactText masks secret query parameters in free text such as an error
// message that quotes a URL.
func redactText(s string) string {
	for _, p := range secretParams {
		key := p + "="
		start := 0
		for {
			i := strings.Index(s[start:], key)
			if i < 0 {
				break
			}
			i += start
			// Only a parameter name preceded by ? or & (or at the start).
			if i > 0 && s[i-1] != '?' && s[i-1] != '&' {
				start = i + len(key)
				continue
			}
			j := i + len(key)
			k := j
			for k < len(s) && s[k] != '&' && s[k] != ' ' && s[k] != '"' && s[k] != '\'' && s[k] != '#' {
				k++
			}
			s = s[:j] + "REDACTED" + s[k:]
			start = j + len("REDACTED")
		}
	}
	return s
}

// scrubError returns err with any secret in its text masked. A *url.Error
// (what http.Client returns) quotes the full URL.
func scrubError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}
