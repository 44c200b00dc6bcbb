package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Asia/Shanghai in a static image without zoneinfo

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// languages the console speaks; the first is the default.
var languages = []string{"zh", "en"}

// consoleZone is the zone times are shown in: the one of WeChat's users.
var consoleZone = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return z
}

// viewSet is one language's parsed pages.
type viewSet struct {
	pages map[string]*template.Template
}

// view is what every page template gets; Data is the page's own.
type view struct {
	Lang, OtherLang string
	Title           string
	User            string
	CSRF            string
	// Active is the navigation entry to highlight (the page's first path
	// element).
	Active    string
	Path      string
	Accounts  []config.Account
	Simulator string
	// Errors are the reasons a form came back, by field name; "" is the
	// form's own.
	Errors map[string]string
	Flash  string
	Data   any
}

// parseViews parses templates/layout.html and templates/_*.html (shared
// pieces) with each other page file, once per language.
func parseViews(catalog map[string][2]string) (map[string]*viewSet, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var shared, pages []string
	for _, f := range files {
		switch base := path.Base(f); {
		case base == "layout.html" || strings.HasPrefix(base, "_"):
			shared = append(shared, f)
		default:
			pages = append(pages, f)
		}
	}
	out := map[string]*viewSet{}
	for _, lang := range languages {
		base, err := template.New("layout.html").Funcs(funcs(lang, catalog)).ParseFS(templateFS, shared...)
		if err != nil {
			return nil, fmt.Errorf("web: parsing layout: %w", err)
		}
		set := &viewSet{pages: map[string]*template.Template{}}
		for _, p := range pages {
			t, err := template.Must(base.Clone()).ParseFS(templateFS, p)
			if err != nil {
				return nil, fmt.Errorf("web: parsing %s: %w", p, err)
			}
			set.pages[strings.TrimSuffix(path.Base(p), ".html")] = t
		}
		out[lang] = set
	}
	return out, nil
}

// missingText marks a text key without a translation, so that tests find it.
const missingText = "⟦missing text: %s⟧"

func funcs(lang string, catalog map[string][2]string) template.FuncMap {
	idx := 0
	if lang == "en" {
		idx = 1
	}
	t := func(key string, args ...any) string {
		pair, ok := catalog[key]
		if !ok {
			return fmt.Sprintf(missingText, key)
		}
		if len(args) > 0 {
			return fmt.Sprintf(pair[idx], args...)
		}
		return pair[idx]
	}
	return template.FuncMap{
		"t": t,
		// status words a state (queued, delivered, …) in the page's language.
		"status": func(s string) string {
			if pair, ok := catalog["status."+s]; ok {
				return pair[idx]
			}
			return s
		},
		"when": func(v any) string {
			switch tv := v.(type) {
			case time.Time:
				if tv.IsZero() {
					return "—"
				}
				return tv.In(consoleZone).Format("2006-01-02 15:04:05")
			case *time.Time:
				if tv == nil || tv.IsZero() {
					return "—"
				}
				return tv.In(consoleZone).Format("2006-01-02 15:04:05")
			}
			return fmt.Sprint(v)
		},
		// explain words a WeChat errcode.
		"explain": func(code int) string { return wechat.ExplainCode(code, lang) },
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"add":   func(a, b int) int { return a + b },
		"int64": func(v int64) string { return strconv.FormatInt(v, 10) },
		"join":  strings.Join,
		"lang":  func() string { return lang },
	}
}

// lang is the request's language: the wxgate_lang cookie, else the
// browser's Accept-Language, else Chinese.
func lang(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil {
		for _, l := range languages {
			if ck.Value == l {
				return l
			}
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "zh"
}

const langCookie = "wxgate_lang"

// switchLanguage is GET /admin/lang?to=en&back=/admin/…: it remembers the
// choice for a year and goes back.
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != "zh" && to != "en" {
		to = "zh"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: Prefix, MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: isHTTPS(r), SameSite: http.SameSiteLaxMode})
	back := r.URL.Query().Get("back")
	if strings.HasPrefix(back, "/admin/login") {
		http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, safeNext(back), http.StatusSeeOther)
}

// render writes a whole page: the layout around the page's "content".
// errs, when not empty, are the reasons a form came back.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page, titleKey string, data any, errs map[string]string) {
	l := lang(r)
	t, ok := c.views[l].pages[page]
	if !ok {
		c.log.Error("console page has no template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sess := sessionFrom(r.Context())
	v := view{Lang: l, OtherLang: "en", User: sess.User.Username, CSRF: sess.CSRFToken, Path: r.URL.RequestURI(),
		Accounts: c.opts.Accounts, Simulator: c.opts.SimulatorURL, Errors: errs, Data: data,
		Flash: r.URL.Query().Get("done")}
	if l == "en" {
		v.OtherLang = "zh"
	}
	if strings.HasPrefix(r.URL.Path, "/admin/login") {
		v.Path = "/admin/login" // never carry a sign-in token into another link
	}
	v.Title = c.text(l, titleKey)
	if rest, ok := strings.CutPrefix(r.URL.Path, Prefix); ok {
		v.Active, _, _ = strings.Cut(rest, "/")
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("rendering a console page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fragment writes one named block of a page's template, without the
// layout: the live regions and live forms of static/app.js fetch these.
// done tells the script to stop polling.
func (c *Console) fragment(w http.ResponseWriter, r *http.Request, page, block string, data any, done bool) {
	l := lang(r)
	t, ok := c.views[l].pages[page]
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sess := sessionFrom(r.Context())
	v := view{Lang: l, User: sess.User.Username, CSRF: sess.CSRFToken, Accounts: c.opts.Accounts, Data: data}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, v); err != nil {
		c.log.Error("rendering a console fragment", "page", page, "block", block, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if done {
		w.Header().Set("X-Poll-Done", "1")
	}
	_, _ = buf.WriteTo(w)
}

// text is a catalog entry in a language.
func (c *Console) text(lang, key string) string {
	pair, ok := c.catalog[key]
	if !ok {
		return fmt.Sprintf(missingText, key)
	}
	if lang == "en" {
		return pair[1]
	}
	return pair[0]
}

// fail shows an error: a page in the request's language, or for fetch
// calls a JSON problem {code, message, field}. Internal errors are logged
// and shown without detail.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	p, ok := problem.As(err)
	if !ok {
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = problem.New(problem.Internal, "internal", "", "something went wrong on the server; it has been logged — 服务器内部错误，已记录日志")
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(p.RetryAfter.Seconds())))
	}
	l := lang(r)
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(p.Status())
		_ = json.NewEncoder(w).Encode(map[string]string{"code": p.Code, "message": p.In(l), "field": p.Field})
		return
	}
	c.render(w, r, p.Status(), "error", "error.title", errorView{Code: p.Code, Message: p.In(l), Status: p.Status()}, nil)
}

type errorView struct {
	Code    string
	Message string
	Status  int
}

// statusOf is the HTTP status of an error.
func statusOf(err error) int {
	if p, ok := problem.As(err); ok {
		return p.Status()
	}
	return http.StatusInternalServerError
}

// formErrors turns a domain error into the reasons shown on a form: by
// its field when it names one, else for the whole form.
func formErrors(err error, lang string) map[string]string {
	p, ok := problem.As(err)
	if !ok {
		return map[string]string{"": problem.New(problem.Internal, "internal", "",
			"something went wrong on the server; it has been logged — 服务器内部错误，已记录日志").In(lang)}
	}
	return map[string]string{p.Field: p.In(lang)}
}

// failForm shows a form again with the reason of err, or the error page
// when err is not the user's (internal errors are logged).
func (c *Console) failForm(w http.ResponseWriter, r *http.Request, page, titleKey string, data any, err error) {
	p, ok := problem.As(err)
	if !ok || p.Kind == problem.Internal || p.Kind == problem.Unavailable {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, p.Status(), page, titleKey, data, formErrors(err, lang(r)))
}
