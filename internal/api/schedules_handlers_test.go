package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/schedule"
)

func TestSchedulesAPI(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	ctx := t.Context()
	store := auth.NewStore(d, func() time.Time { return now })
	key := func(scopes ...auth.Scope) string {
		k, _, err := store.Create(ctx, "test", scopes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	admin, read, send := key(auth.ScopeAdmin), key(auth.ScopeRead), key(auth.ScopeSend)
	q, err := queue.New(ctx, d, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(t.Context()) })
	accounts := []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: "wx0123456789abcdef"}}
	svc := schedule.New(schedule.Options{DB: d, Accounts: accounts, Jobs: q, Now: func() time.Time { return now }})
	srv := httptest.NewServer(New(Options{Accounts: accounts, Auth: store, Schedules: svc}))
	t.Cleanup(srv.Close)

	call := func(method, path, key, body string, wantStatus int, into any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, wantStatus)
		}
		if into != nil {
			if err := json.Unmarshal(raw, into); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
		}
	}
	type apiErr struct {
		Error struct{ Code, Message string } `json:"error"`
	}

	body := `{"name":"每日天气","account":"main","cron":"30 7 * * *","audience":{"kind":"all"},"template":"daily_weather",
	  "data":{"thing1":"{{.City}}"},"misfire_grace":"30m"}`
	var sc schedule.Schedule
	call("POST", "/api/v1/schedules", admin, body, http.StatusCreated, &sc)
	if sc.ID == 0 || sc.NextRunAt == nil || sc.NextRunAt.Format(time.RFC3339) != "2026-11-25T07:30:00+08:00" || time.Duration(sc.MisfireGrace) != 30*time.Minute {
		t.Fatalf("created %+v next %v", sc, sc.NextRunAt)
	}
	id := "/api/v1/schedules/" + jsonNumber(sc.ID)
	call("POST", "/api/v1/schedules", read, body, http.StatusForbidden, nil)

	var e apiErr
	call("POST", "/api/v1/schedules", admin, strings.Replace(body, "30 7 * * *", "30 7 * *", 1), http.StatusBadRequest, &e)
	if e.Error.Code != "invalid_cron" || !strings.Contains(e.Error.Message, "cron 表达式") {
		t.Errorf("bad cron: %+v", e)
	}
	call("POST", "/api/v1/schedules", admin, body+` {}`, http.StatusBadRequest, &e)
	call("POST", "/api/v1/schedules", admin, strings.Replace(body, `"name"`, `"nmae"`, 1), http.StatusBadRequest, &e)
	if e.Error.Code != "invalid_json" {
		t.Errorf("unknown field: %+v", e)
	}
	call("POST", "/api/v1/schedules", admin, strings.Replace(body, `"main"`, `"nope"`, 1), http.StatusNotFound, &e)

	var list struct{ Schedules []schedule.Schedule }
	call("GET", "/api/v1/schedules?account=main", read, "", http.StatusOK, &list)
	if len(list.Schedules) != 1 {
		t.Errorf("list: %+v", list)
	}
	var next struct {
		TimeZone string      `json:"timezone"`
		Next     []time.Time `json:"next"`
	}
	call("GET", id+"/next?n=3", read, "", http.StatusOK, &next)
	if next.TimeZone != "Asia/Shanghai" || len(next.Next) != 3 || !next.Next[2].Equal(time.Date(2026, 11, 26, 23, 30, 0, 0, time.UTC)) {
		t.Errorf("next: %+v", next)
	}

	var paused schedule.Schedule
	call("POST", id+"/pause", admin, "", http.StatusOK, &paused)
	if paused.Enabled || paused.NextRunAt != nil {
		t.Errorf("paused: %+v", paused)
	}
	call("POST", id+"/resume", admin, "", http.StatusOK, &sc)
	if !sc.Enabled {
		t.Errorf("resumed: %+v", sc)
	}

	var run schedule.Run
	call("POST", id+"/run", send, "", http.StatusAccepted, &run)
	if run.ID == 0 || run.Status != schedule.RunQueued || run.Kind != schedule.KindManual {
		t.Errorf("run: %+v", run)
	}
	var runs struct{ Runs []schedule.Run }
	call("GET", id+"/runs", read, "", http.StatusOK, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID {
		t.Errorf("runs: %+v", runs)
	}
	var detail schedule.RunDetail
	call("GET", id+"/runs/"+jsonNumber(run.ID), read, "", http.StatusOK, &detail)
	call("GET", id+"/runs/999", read, "", http.StatusNotFound, &e)
	if e.Error.Code != "run_not_found" {
		t.Errorf("unknown run: %+v", e)
	}

	call("PUT", id, admin, strings.Replace(body, "30 7", "0 8", 1), http.StatusOK, &sc)
	if sc.Cron != "0 8 * * *" {
		t.Errorf("updated: %+v", sc)
	}

	var attrs struct {
		Attributes map[string]string `json:"attributes"`
	}
	call("PUT", "/api/v1/followers/o-1/attributes?account=main", admin, `{"city":"北京","location":"101010100"}`, http.StatusOK, &attrs)
	call("PATCH", "/api/v1/followers/o-1/attributes?account=main", admin, `{"location":null,"since":"2020-05-20"}`, http.StatusOK, &attrs)
	attrs.Attributes = nil
	call("GET", "/api/v1/followers/o-1/attributes?account=main", read, "", http.StatusOK, &attrs)
	if len(attrs.Attributes) != 2 || attrs.Attributes["city"] != "北京" || attrs.Attributes["since"] != "2020-05-20" {
		t.Errorf("attributes: %+v", attrs)
	}
	call("PUT", "/api/v1/followers/o-1/attributes?account=main", read, `{}`, http.StatusForbidden, nil)
	call("GET", "/api/v1/followers/o-1/attributes", read, "", http.StatusBadRequest, &e)

	call("DELETE", id, admin, "", http.StatusNoContent, nil)
	call("GET", id, read, "", http.StatusNotFound, &e)
	if e.Error.Code != "schedule_not_found" {
		t.Errorf("deleted: %+v", e)
	}
	call("GET", "/api/v1/schedules/abc", read, "", http.StatusNotFound, nil)

	// A server without schedules says so.
	bare := httptest.NewServer(New(Options{Accounts: accounts, Auth: store}))
	t.Cleanup(bare.Close)
	req, _ := http.NewRequest("GET", bare.URL+"/api/v1/schedules", nil)
	req.Header.Set("Authorization", "Bearer "+read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no schedules: %d", resp.StatusCode)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
