package wechatsim

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Token lifetimes of the protocol doc §5.1, §5.2, §8.5.
const (
	tokenLifetime         = 7200 * time.Second
	tokenOverlap          = 5 * time.Minute // a superseded classic token keeps working this long
	stableRenewWindow     = 5 * time.Minute // stable_token rotates in the last 5 minutes
	forceRefreshPerDay    = 20
	forceRefreshSpacing   = 30 * time.Second
	expiredTokenRetention = 24 * time.Hour
)

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// handleToken is GET /cgi-bin/token: each call issues a new token and leaves
// the previous one valid for five more minutes.
func (s *Simulator) handleToken(c *apiCall) (any, *apiError) {
	q := c.r.URL.Query()
	app, apiErr := s.checkCredentials(c, q.Get("grant_type"), q.Get("appid"), q.Get("secret"))
	if apiErr != nil {
		return nil, apiErr
	}
	path := "/cgi-bin/token"
	if apiErr := app.checkQuota(path, c.now); apiErr != nil {
		return nil, apiErr
	}
	app.useQuota(path, c.now)
	if prev := s.st.Tokens[app.ClassicToken]; prev != nil {
		prev.revokeBy(c.now.Add(tokenOverlap))
	}
	rec := s.issueToken(app, false, c.now)
	app.ClassicToken = rec.Token
	return tokenAnswer{rec.Token, int64(tokenLifetime / time.Second)}, nil
}

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// handleStableToken is POST /cgi-bin/stable_token: the same token while it
// has more than five minutes left, a new one in the last five; force_refresh
// replaces it at once, 20 times a day and 30 s apart at most. It never
// touches the classic token.
func (s *Simulator) handleStableToken(c *apiCall) (any, *apiError) {
	if c.r.Method != http.MethodPost {
		return nil, wxErr(44002)
	}
	var req stableTokenRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	app, apiErr := s.checkCredentials(c, req.GrantType, req.AppID, req.Secret)
	if apiErr != nil {
		return nil, apiErr
	}
	path := "/cgi-bin/stable_token"
	if apiErr := app.checkQuota(path, c.now); apiErr != nil {
		return nil, apiErr
	}
	cur := s.st.Tokens[app.StableToken]
	curValid := cur != nil && cur.check(c.now) == nil

	if req.ForceRefresh {
		app.pruneForceRefreshes(c.now)
		last := time.Time{}
		if n := len(app.ForceRefreshes); n > 0 {
			last = app.ForceRefreshes[n-1]
		}
		switch {
		case curValid && !last.IsZero() && c.now.Sub(last) < forceRefreshSpacing:
			// Too soon after the previous force refresh: no refresh happens.
			app.useQuota(path, c.now)
			return stableAnswer(cur, c.now), nil
		case len(app.ForceRefreshes) >= forceRefreshPerDay:
			return nil, wxErr(45009)
		}
		app.ForceRefreshes = append(app.ForceRefreshes, c.now)
		if cur != nil {
			cur.revokeBy(c.now)
		}
		app.useQuota(path, c.now)
		rec := s.issueToken(app, true, c.now)
		app.StableToken = rec.Token
		return stableAnswer(rec, c.now), nil
	}

	app.useQuota(path, c.now)
	if curValid && cur.ExpiresAt.Sub(c.now) > stableRenewWindow {
		return stableAnswer(cur, c.now), nil
	}
	// The previous stable token (if any) runs out on its own within five
	// minutes: that is the overlap.
	rec := s.issueToken(app, true, c.now)
	app.StableToken = rec.Token
	return stableAnswer(rec, c.now), nil
}

func stableAnswer(rec *tokenRecord, now time.Time) tokenAnswer {
	return tokenAnswer{rec.Token, int64(rec.ExpiresAt.Sub(now) / time.Second)}
}

func (a *appState) pruneForceRefreshes(now time.Time) {
	day := wechat.QuotaDay(now)
	kept := a.ForceRefreshes[:0]
	for _, t := range a.ForceRefreshes {
		if wechat.QuotaDay(t) == day {
			kept = append(kept, t)
		}
	}
	a.ForceRefreshes = kept
}

// checkCredentials applies the checks shared by both token endpoints, in the
// order WeChat reports them.
func (s *Simulator) checkCredentials(c *apiCall, grantType, appID, secret string) (*appState, *apiError) {
	switch {
	case appID == "":
		return nil, wxErr(41002)
	case secret == "":
		return nil, wxErr(41004)
	case grantType != "client_credential":
		return nil, wxErr(40002)
	}
	app := s.st.Apps[appID]
	if app == nil {
		return nil, wxErr(40013)
	}
	if secret != app.Config.AppSecret {
		return nil, wxErr(40125)
	}
	if len(app.Config.IPWhitelist) > 0 {
		ip := remoteIP(c.r)
		if !ipAllowed(app.Config.IPWhitelist, ip) {
			return nil, wxErrf(40164, "invalid ip %s, not in whitelist", describeIP(ip))
		}
	}
	return app, nil
}

func (s *Simulator) issueToken(app *appState, stable bool, now time.Time) *tokenRecord {
	s.pruneTokens(now)
	rec := &tokenRecord{Token: newAccessToken(), AppID: app.Config.AppID, Stable: stable, IssuedAt: now, ExpiresAt: now.Add(tokenLifetime)}
	s.st.Tokens[rec.Token] = rec
	return rec
}

// pruneTokens forgets tokens dead for a day; using one afterwards gives
// 40001 (unknown) instead of 42001, as for any token WeChat no longer knows.
func (s *Simulator) pruneTokens(now time.Time) {
	for tok, rec := range s.st.Tokens {
		end := rec.ExpiresAt
		if !rec.RevokedAt.IsZero() && rec.RevokedAt.Before(end) {
			end = rec.RevokedAt
		}
		if now.Sub(end) > expiredTokenRetention {
			delete(s.st.Tokens, tok)
		}
	}
}

// revokeBy makes the token stop working at t at the latest.
func (t *tokenRecord) revokeBy(at time.Time) {
	if t.RevokedAt.IsZero() || at.Before(t.RevokedAt) {
		t.RevokedAt = at
	}
}

// check answers whether the token works at now: 40001 once superseded or
// invalidated, 42001 once expired.
func (t *tokenRecord) check(now time.Time) *apiError {
	revoked := !t.RevokedAt.IsZero() && t.RevokedAt.Before(t.ExpiresAt)
	if revoked && !now.Before(t.RevokedAt) {
		return wxErr(40001)
	}
	if !now.Before(t.ExpiresAt) {
		return wxErr(42001)
	}
	return nil
}

// checkToken validates a presented access_token; callers hold s.mu.
func (s *Simulator) checkToken(tok string, now time.Time) (*tokenRecord, *apiError) {
	rec := s.st.Tokens[tok]
	if rec == nil {
		if accessTokenPattern.MatchString(tok) {
			return nil, wxErr(40001)
		}
		return nil, wxErr(40014)
	}
	if apiErr := rec.check(now); apiErr != nil {
		return nil, apiErr
	}
	return rec, nil
}

// InvalidateTokens makes every current token of an app (classic and stable)
// answer 40001 from now on, as when WeChat invalidates them.
func (s *Simulator) InvalidateTokens(appID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Apps[appID] == nil {
		return errorf(CodeNotFound, "应用不存在 app %q not found", appID)
	}
	now := s.now()
	for _, rec := range s.st.Tokens {
		if rec.AppID == appID {
			rec.revokeBy(now)
		}
	}
	return nil
}

// TokenInfo describes a live token, for tests and the control API.
type TokenInfo struct {
	AppID     string    `json:"app_id"`
	Token     string    `json:"access_token"`
	Stable    bool      `json:"stable"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Tokens lists the tokens of an app that work now.
func (s *Simulator) Tokens(appID string) []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []TokenInfo
	for _, rec := range s.st.Tokens {
		if rec.AppID == appID && rec.check(now) == nil {
			out = append(out, TokenInfo{rec.AppID, rec.Token, rec.Stable, rec.IssuedAt, rec.ExpiresAt})
		}
	}
	return out
}

func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return addr
}

// parseIPRule reads a whitelist entry: an IP or a CIDR.
func parseIPRule(entry string) (netip.Prefix, error) {
	entry = strings.TrimSpace(entry)
	if strings.Contains(entry, "/") {
		return netip.ParsePrefix(entry)
	}
	addr, err := netip.ParseAddr(entry)
	if err != nil {
		return netip.Prefix{}, err
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

func ipAllowed(rules []string, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, entry := range rules {
		prefix, err := parseIPRule(entry)
		if err == nil && prefix.Contains(ip) {
			return true
		}
	}
	return false
}

// describeIP renders a caller address as WeChat's 40164 errmsg does:
// "1.2.3.4 ipv6 ::ffff:1.2.3.4".
func describeIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return fmt.Sprintf("%s ipv6 ::ffff:%s", ip, ip)
	}
	return fmt.Sprintf("%s ipv6 %s", ip, ip)
}
