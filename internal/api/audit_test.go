package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// Every call is audited with its key, and each key has its own rate limit.
func TestAuditAndKeyRateLimit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := context.Background()
		store := auth.NewStore(d, nil)
		admin, adminKey, err := store.Create(ctx, "admin", []auth.Scope{auth.ScopeAdmin})
		if err != nil {
			t.Fatal(err)
		}
		other, _, _ := store.Create(ctx, "other", []auth.Scope{auth.ScopeRead})
		audit := NewAuditStore(d)
		srv := httptest.NewServer(New(Options{Accounts: []config.Account{{Name: "main", AppID: "wx1"}}, Auth: store,
			Audit: audit, KeyRate: 1, KeyBurst: 2}))
		t.Cleanup(srv.Close)
		get := func(key, path string) *http.Response {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		var statuses []int
		for range 3 {
			statuses = append(statuses, get(admin, "/api/v1/accounts").StatusCode)
		}
		if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != http.StatusTooManyRequests {
			t.Errorf("statuses %v, want 200 200 429", statuses)
		}
		limited := get(admin, "/api/v1/accounts")
		if limited.StatusCode != http.StatusTooManyRequests || limited.Header.Get("Retry-After") == "" {
			t.Errorf("limited answer %d, Retry-After %q", limited.StatusCode, limited.Header.Get("Retry-After"))
		}
		// Another key has its own bucket; no key is audited too.
		if s := get(other, "/api/v1/accounts").StatusCode; s != 200 {
			t.Errorf("other key: %d", s)
		}
		if s := get("", "/api/v1/accounts").StatusCode; s != http.StatusUnauthorized {
			t.Errorf("no key: %d", s)
		}
		time.Sleep(1100 * time.Millisecond)
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/audit?key_id="+strconv.FormatInt(adminKey.ID, 10), nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		var got struct {
			Entries []AuditEntry `json:"entries"`
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if len(got.Entries) != 4 {
			t.Fatalf("admin's entries: %+v", got.Entries)
		}
		e := got.Entries[1]
		if e.KeyPrefix != adminKey.Prefix || e.Method != "GET" || e.Path != "/api/v1/accounts" || e.Status != http.StatusTooManyRequests || e.Remote == "" {
			t.Errorf("entry = %+v", e)
		}
		all, err := audit.List(ctx, 0, 100)
		if err != nil || len(all) != 7 || all[1].KeyID != 0 || all[1].Status != http.StatusUnauthorized {
			t.Errorf("all entries (%v): %+v", err, all)
		}
	})
}

// Two instances on one PostgreSQL database share each key's bucket: a
// key's burst is spent once, whichever instance its requests reach, and
// the refusal says when to come back.
func TestKeyRateLimitAcrossInstances(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	ctx := context.Background()
	store := auth.NewStore(d, nil)
	key, _, err := store.Create(ctx, "crm", []auth.Scope{auth.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	var instances []*httptest.Server
	for range 2 {
		srv := httptest.NewServer(New(Options{Accounts: []config.Account{{Name: "main", AppID: "wx1"}}, Auth: store,
			KeyRate: 0.5, KeyBurst: 4, SharedLimits: d}))
		t.Cleanup(srv.Close)
		instances = append(instances, srv)
	}
	var statuses []int
	var retryAfter string
	for i := range 8 {
		req, _ := http.NewRequest("GET", instances[i%2].URL+"/api/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	// 4 of the burst, perhaps one more refilled meanwhile on a slow machine;
	// in-process buckets would have let all 8 through.
	if ok < 4 || ok > 5 || statuses[0] != http.StatusOK || statuses[7] != http.StatusTooManyRequests {
		t.Errorf("statuses %v: want the burst of 4 shared by both instances", statuses)
	}
	if retryAfter == "" || retryAfter == "0" {
		t.Errorf("Retry-After %q", retryAfter)
	}
}
