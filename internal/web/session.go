package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/problem"
)

const (
	sessionCookie = "wxgate_session"
	// csrfField is the hidden field every form carries; fetch calls send
	// the same token in csrfHeader.
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

var (
	errPageNotFound = problem.New(problem.NotFound, "page_not_found", "", "no such page — 页面不存在")
	errCSRF         = problem.New(problem.Forbidden, "csrf_invalid", "",
		"the form has expired or did not come from this console; reload the page and try again — 表单已过期或来源不明，请刷新页面后重试")
)

// requireSession lets signed-in admins through. Pages without a session
// redirect to the sign-in page; fetch calls (Accept: application/json)
// get 401. Changes must carry the session's CSRF token.
func (c *Console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var value string
		if ck, err := r.Cookie(sessionCookie); err == nil {
			value = ck.Value
		}
		sess, err := c.opts.Admins.Session(r.Context(), value)
		if err != nil {
			if !errors.Is(err, auth.ErrNoSession) {
				c.fail(w, r, err)
				return
			}
			if wantsJSON(r) || r.Method != http.MethodGet {
				c.fail(w, r, err)
				return
			}
			http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			token := r.Header.Get(csrfHeader)
			if token == "" {
				token = r.PostFormValue(csrfField)
			}
			if !sess.CheckCSRF(token) {
				c.fail(w, r, errCSRF)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey, sess)))
	})
}

// wantsJSON tells a fetch call of the console's script from a page load.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// setSessionCookie hands the browser its session.
func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
}

func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// clientIP is the address sign-in throttling and the audit see. Behind a
// reverse proxy on the same host (the nginx example), the proxy's own
// X-Forwarded-For entry — the last one — is the client; from anywhere
// else the header could be forged and is ignored.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if last := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(last) != nil {
				return last
			}
		}
	}
	return host
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/admin/send"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/admin/send"
	}
	return next
}

type loginView struct {
	Username string
	Next     string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", "login.title", loginView{Next: safeNext(r.URL.Query().Get("next"))}, nil)
}

// login checks a username and password, throttled per client IP and per
// username across instances.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	username, password := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	in := loginView{Username: username, Next: safeNext(r.PostFormValue("next"))}
	ip := clientIP(r)
	if err := c.opts.Admins.CheckLoginThrottle(ctx, ip, username); err != nil {
		if p, ok := problem.As(err); ok && p.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(p.RetryAfter.Seconds())))
		}
		c.render(w, r, statusOf(err), "login", "login.title", in, formErrors(err, lang(r)))
		return
	}
	cookie, sess, err := c.opts.Admins.SignIn(ctx, username, password)
	if err != nil {
		if errors.Is(err, auth.ErrBadCredentials) {
			if rerr := c.opts.Admins.RecordLoginFailure(ctx, ip, username); rerr != nil {
				c.log.Warn("recording a failed sign-in", "err", rerr)
			}
			c.log.Info("console sign-in refused", "username", username, "client_ip", ip)
		}
		c.render(w, r, statusOf(err), "login", "login.title", in, formErrors(err, lang(r)))
		return
	}
	c.signedIn(w, r, cookie, sess, "login", in.Next)
}

// loginLink spends a one-time sign-in link (wxgate demo prints one).
func (c *Console) loginLink(w http.ResponseWriter, r *http.Request) {
	cookie, sess, err := c.opts.Admins.RedeemLoginToken(r.Context(), r.URL.Query().Get("token"))
	if err != nil {
		// The login form has no token field: the reason is the form's own.
		c.render(w, r, statusOf(err), "login", "login.title", loginView{Next: "/admin/send"}, map[string]string{"": formErrors(err, lang(r))["token"]})
		return
	}
	c.signedIn(w, r, cookie, sess, "login.link", "/admin/send")
}

func (c *Console) signedIn(w http.ResponseWriter, r *http.Request, cookie string, sess auth.Session, how, next string) {
	setSessionCookie(w, r, cookie, int(auth.SessionTTL.Seconds()))
	c.auditAs(r, sess.User.Username, how, "", "")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.opts.Admins.SignOut(r.Context(), ck.Value); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.audit(r, "logout", "", "")
	setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// audit records a change made by the signed-in admin. A failure to record
// is logged, not shown: the change itself has happened.
func (c *Console) audit(r *http.Request, action, target, detail string) {
	c.auditAs(r, sessionFrom(r.Context()).User.Username, action, target, detail)
}

func (c *Console) auditAs(r *http.Request, username, action, target, detail string) {
	err := c.opts.Admins.Audit(context.WithoutCancel(r.Context()), auth.AuditEntry{
		Username: username, Action: action, Target: target, Detail: detail, ClientIP: clientIP(r)})
	if err != nil {
		c.log.Warn("recording a console change", "action", action, "err", err)
	}
}
