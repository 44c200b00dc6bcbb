package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

type fakeNow struct{ ns atomic.Int64 }

func (f *fakeNow) Now() time.Time          { return time.Unix(0, f.ns.Load()).UTC() }
func (f *fakeNow) Advance(d time.Duration) { f.ns.Add(int64(d)) }

func setup(t *testing.T, d *db.DB) (*Store, *fakeNow) {
	t.Helper()
	clock := &fakeNow{}
	clock.ns.Store(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC).UnixNano())
	return NewStore(d, clock.Now), clock
}

func TestParseScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{[]string{"send,read"}, "read,send", false},
		{[]string{"token", " Admin "}, "admin,token", false},
		{[]string{"send", "send"}, "send", false},
		{[]string{""}, "", true},
		{[]string{"root"}, "", true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in...)
		if (err != nil) != tt.wantErr || (err == nil && joinScopes(got) != tt.want) {
			t.Errorf("ParseScopes(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestKeyFormat(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		k, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		if !wellFormed(k) || seen[k] {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
	}
	for _, bad := range []string{"", "wxg_", "wxg_" + strings.Repeat("a", 39), "wxh_" + strings.Repeat("a", 40), "wxg_" + strings.Repeat("-", 40)} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q)", bad)
		}
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s, clock := setup(t, d)
		ctx := t.Context()
		plain, k, err := s.Create(ctx, "crm", []Scope{ScopeToken, ScopeRead})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(plain, "wxg_") || k.Prefix != plain[:12] || k.ID == 0 {
			t.Fatalf("Create = %q, %+v", plain, k)
		}
		// Only the hash is stored.
		var stored int
		if err := d.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE hash = $1 OR name = $1 OR prefix = $1 OR scopes = $1`, plain).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("plaintext found in the table (%d, %v)", stored, err)
		}

		got, err := s.Verify(ctx, plain)
		if err != nil || got.ID != k.ID || !got.Has(ScopeToken) || got.Has(ScopeSend) {
			t.Fatalf("Verify = %+v, %v", got, err)
		}
		for _, bad := range []string{"", "Bearer x", plain[:len(plain)-1] + "0", strings.ToUpper(plain)} {
			if bad == plain {
				continue
			}
			if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Verify(%q) = %v", bad, err)
			}
		}

		admin, _, err := s.Create(ctx, "ops", []Scope{ScopeAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if a, _ := s.Verify(ctx, admin); !a.Has(ScopeSend) || !a.Has(ScopeToken) {
			t.Errorf("admin does not imply every scope: %+v", a)
		}

		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "crm" || list[0].LastUsedAt.IsZero() {
			t.Fatalf("List = %+v, %v", list, err)
		}
		clock.Advance(time.Hour)
		if err := s.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Verify(ctx, plain); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("revoked key verified: %v", err)
		}
		if err := s.Revoke(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(unknown) = %v", err)
		}
		list, _ = s.List(ctx)
		if !list[0].Revoked() || list[1].Revoked() {
			t.Errorf("after revoke: %+v", list)
		}
		if _, _, err := s.Create(ctx, " ", []Scope{ScopeRead}); err == nil {
			t.Error("created a key without a name")
		}
		if _, _, err := s.Create(ctx, "x", nil); err == nil {
			t.Error("created a key without scopes")
		}
	})
}

func TestRequireScope(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, dbtest.SQLite(t))
	ctx := t.Context()
	tokenKey, _, _ := s.Create(ctx, "token", []Scope{ScopeToken})
	readKey, _, _ := s.Create(ctx, "read", []Scope{ScopeRead})
	h := s.RequireScope(ScopeToken, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := KeyFrom(r.Context())
		if !ok {
			t.Error("no key in context")
		}
		w.Write([]byte(k.Name))
	}))
	tests := []struct {
		name, header string
		status       int
		code         string
	}{
		{"no header", "", 401, "unauthorized"},
		{"not bearer", "Basic " + tokenKey, 401, "unauthorized"},
		{"unknown key", "Bearer wxg_" + strings.Repeat("A", 40), 401, "unauthorized"},
		{"wrong scope", "Bearer " + readKey, 403, "forbidden"},
		{"ok", "Bearer " + tokenKey, 200, ""},
		{"ok lower-case scheme", "bearer " + tokenKey, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/x", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.code == "" {
				return
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("body %s (%v)", w.Body, err)
			}
			if !strings.ContainsAny(body.Error.Message, "密钥权限") {
				t.Errorf("message has no Chinese: %q", body.Error.Message)
			}
		})
	}
}
