package web_test

// The console's handler tests run against a real `wxgate demo` (gateway,
// simulator, SQLite) started once for the package: every page is
// exercised over HTTP the way a browser uses it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/cli"
	"github.com/wxgate/wxgate/internal/db"
)

// demoEnv is the running demo.
type demoEnv struct {
	Gateway  string // http://127.0.0.1:port
	Sim      string // the simulator's base URL
	APIKey   string // every scope
	Password string // of the "admin" console user
	Link     string // the printed one-time sign-in link (already spent by nobody)
	DB       *db.DB // the demo's own database, for checks and setup
	Output   func() string
}

var (
	demoOnce sync.Once
	demo     *demoEnv
	demoErr  error
	stopDemo func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopDemo != nil {
		stopDemo()
	}
	os.Exit(code)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDemo runs one demo for the whole package.
func startDemo(t *testing.T) *demoEnv {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wxgate-console-test-")
		if err != nil {
			demoErr = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- cli.Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--metrics-listen", "",
				"--data", dir, "--mode", "safe"}, cli.Env{Stdout: out, Stderr: errOut})
		}()
		var database *db.DB
		stopDemo = func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
			}
			if database != nil {
				database.Close()
			}
			os.RemoveAll(dir)
		}
		linkLine := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)(/admin/login/link\?token=\S+)`)
		pwLine := regexp.MustCompile(`as admin with password (\S+)`)
		keyLine := regexp.MustCompile(`API key \(every scope\): +(wxg_\w+)`)
		simLine := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/sim/`)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			o := out.String()
			if m := linkLine.FindStringSubmatch(o); m != nil && pwLine.MatchString(o) {
				demo = &demoEnv{Gateway: m[1], Link: m[1] + m[2], Password: pwLine.FindStringSubmatch(o)[1],
					APIKey: keyLine.FindStringSubmatch(o)[1], Sim: simLine.FindStringSubmatch(o)[1], Output: out.String}
				break
			}
			select {
			case code := <-done:
				demoErr = fmt.Errorf("demo exited %d: %s", code, errOut.String())
				return
			default:
			}
		}
		if demo == nil {
			demoErr = fmt.Errorf("demo printed no sign-in link:\n%s\n%s", out.String(), errOut.String())
			return
		}
		database, err = db.Open(context.Background(), "sqlite://"+dir+"/wxgate.db")
		if err != nil {
			demoErr = err
			return
		}
		demo.DB = database
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demo
}

// browser is a cookie-keeping client of the console, like a browser tab.
type browser struct {
	t    *testing.T
	env  *demoEnv
	c    *http.Client
	csrf string
	lang string
	// ip, when set, is sent as X-Forwarded-For (the console trusts it from
	// loopback), so that throttling tests do not lock out the others.
	ip string
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

func newBrowser(t *testing.T, lang string) *browser {
	t.Helper()
	env := startDemo(t)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, env: env, lang: lang, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signedIn returns a browser signed in as admin.
func signedIn(t *testing.T, lang string) *browser {
	t.Helper()
	b := newBrowser(t, lang)
	resp := b.post("/admin/login", url.Values{"username": {"admin"}, "password": {b.env.Password}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.status, resp.body)
	}
	page := b.get("/admin/audit")
	m := csrfMeta.FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil || m[1] == "" {
		t.Fatalf("after sign-in: %d, no CSRF token: %s", page.status, page.body)
	}
	b.csrf = m[1]
	return b
}

type response struct {
	status   int
	body     string
	header   http.Header
	location string
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.ip != "" {
		req.Header.Set("X-Forwarded-For", b.ip)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(body), header: resp.Header, location: resp.Header.Get("Location")}
}

func (b *browser) get(path string) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.env.Gateway+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// getJSON is a fetch call of the console's script.
func (b *browser) fetch(method, path string, form url.Values) response {
	b.t.Helper()
	req, err := http.NewRequest(method, b.env.Gateway+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html, application/json;q=0.9")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	return b.do(req)
}

// post submits a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	if b.csrf != "" && form.Get("csrf_token") == "" {
		form = cloneValues(form)
		form.Set("csrf_token", b.csrf)
	}
	return b.postRaw(path, form)
}

// postRaw submits a form as given (no CSRF token added).
func (b *browser) postRaw(path string, form url.Values) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.env.Gateway+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// page checks a full page: the status, a complete document, and no text
// left untranslated.
func (r response) page(t *testing.T, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if !strings.Contains(r.body, "</html>") {
		t.Fatalf("not a whole page: %s", r.body)
	}
	if strings.Contains(r.body, "⟦missing text") {
		t.Fatalf("untranslated text on the page: %s", regexp.MustCompile(`⟦missing text: [^⟧]*⟧`).FindAllString(r.body, -1))
	}
	return r.body
}

// admins is the demo's admin store, for setting up users.
func (e *demoEnv) admins() *auth.AdminStore { return auth.NewAdminStore(e.DB, nil) }

// waitFor polls check until it returns true or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, check func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		if check() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
	}
}
