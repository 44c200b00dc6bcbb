package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	schedulePageURL = regexp.MustCompile(`^/admin/schedules/(\d+)\?done=saved$`)
	runPageURL      = regexp.MustCompile(`^/admin/schedules/\d+/runs/\d+$`)
)

func scheduleCount(t *testing.T, env *demoEnv) int {
	t.Helper()
	var n int
	if err := env.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM schedules`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The cron field shows the next five times as one types, in the
// schedule's zone, or says what is wrong.
func TestScheduleCronPreview(t *testing.T) {
	b := signedIn(t, "zh-CN")
	r := b.fetch(http.MethodPost, "/admin/schedules/cron", url.Values{"cron": {"30 7 * * *"}, "timezone": {"Asia/Shanghai"}})
	if r.status != http.StatusOK || strings.Count(r.body, "<li>") != 5 || strings.Count(r.body, " 07:30 ") != 5 {
		t.Fatalf("preview of 30 7 * * *: %d\n%s", r.status, r.body)
	}
	r = b.fetch(http.MethodPost, "/admin/schedules/cron", url.Values{"cron": {"61 * * * *"}, "timezone": {"Asia/Shanghai"}})
	if !strings.Contains(r.body, `data-test="cron-bad"`) || !strings.Contains(r.body, "cron 表达式") {
		t.Fatalf("preview of a bad cron:\n%s", r.body)
	}
	r = b.fetch(http.MethodPost, "/admin/schedules/cron", url.Values{"cron": {"0 9 * * *"}, "timezone": {"Mars/Olympus"}})
	if !strings.Contains(r.body, `data-test="cron-bad"`) {
		t.Fatalf("preview with an unknown zone:\n%s", r.body)
	}
}

// Create a schedule from the console, pause and resume it, run it now and
// watch the run deliver.
func TestScheduleCreatePauseRunFromTheConsole(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	var openid string
	if err := env.DB.QueryRowContext(context.Background(),
		`SELECT openid FROM followers WHERE account = 'demo' AND subscribed ORDER BY openid LIMIT 1`).Scan(&openid); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"name": {"工作日提醒 <i>"}, "account": {"demo"}, "cron": {"0 9 * * 1-5"}, "timezone": {"Asia/Shanghai"},
		"enabled": {"1"}, "audience": {"openids"}, "recipients": {openid}, "template": {"new_visitor"},
		"data": {"customer = 王老板\npage = 楼盘G\ntime = 2026-12-07 09:00"}}

	// Bad input: the form comes back marked, nothing saved.
	before := scheduleCount(t, env)
	for field, bad := range map[string]string{"cron": "every morning", "data": "customer 王老板", "template": ""} {
		f := cloneValues(form)
		f.Set(field, bad)
		r := b.post("/admin/schedules", f)
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound || !strings.Contains(r.body, "field-error") {
			t.Errorf("bad %s: %d", field, r.status)
		}
		if !strings.Contains(r.body, `value="0 9 * * 1-5"`) && field != "cron" {
			t.Errorf("bad %s: the form lost what was typed", field)
		}
	}
	if r := b.postRaw("/admin/schedules", form); r.status != http.StatusForbidden {
		t.Errorf("without CSRF token: %d", r.status)
	}
	if n := scheduleCount(t, env); n != before {
		t.Fatalf("%d schedules after refused forms, %d before", n, before)
	}

	r := b.post("/admin/schedules", form)
	m := schedulePageURL.FindStringSubmatch(r.location)
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d → %s\n%s", r.status, r.location, r.body)
	}
	id := m[1]
	page := b.get(r.location).page(t, http.StatusOK)
	if !strings.Contains(page, "工作日提醒 &lt;i&gt;") || !strings.Contains(page, "customer = 王老板") || !strings.Contains(page, openid) {
		t.Fatalf("the saved schedule's page:\n%s", page)
	}
	list := b.get("/admin/schedules").page(t, http.StatusOK)
	row := regexp.MustCompile(`(?s)<tr data-schedule="` + id + `">.*?</tr>`).FindString(list)
	if !strings.Contains(row, "st-enabled") || !strings.Contains(row, " 09:00:00") {
		t.Fatalf("the list row: %s", row)
	}

	if r := b.post("/admin/schedules/"+id+"/pause", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("pause: %d", r.status)
	}
	row = regexp.MustCompile(`(?s)<tr data-schedule="` + id + `">.*?</tr>`).FindString(b.get("/admin/schedules").page(t, http.StatusOK))
	if !strings.Contains(row, "st-paused") || strings.Contains(row, " 09:00:00") {
		t.Fatalf("after pause: %s", row)
	}
	if r := b.post("/admin/schedules/"+id+"/resume", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("resume: %d", r.status)
	}

	// Edit: a new name, the rest kept.
	edited := cloneValues(form)
	edited.Set("name", "工作日提醒")
	if r := b.post("/admin/schedules/"+id, edited); r.status != http.StatusSeeOther {
		t.Fatalf("update: %d %s", r.status, r.body)
	}

	// Try it for the follower: the data as it would be sent, nothing sent.
	tried := b.post("/admin/schedules/"+id+"/try", url.Values{"openid": {openid}})
	if tried.status != http.StatusOK || !strings.Contains(tried.body, `data-test="try-ready"`) || !strings.Contains(tried.body, "王老板") {
		t.Fatalf("try: %d\n%s", tried.status, tried.body)
	}
	if strings.Contains(tried.body, `data-test="schedule-runs"`) {
		t.Fatal("trying recorded a run")
	}
	if r := b.post("/admin/schedules/"+id+"/try", url.Values{"openid": {""}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "请填写要试运行的粉丝") {
		t.Fatalf("try without an openid: %d", r.status)
	}

	run := b.post("/admin/schedules/"+id+"/run", url.Values{})
	if run.status != http.StatusSeeOther || !runPageURL.MatchString(run.location) {
		t.Fatalf("run now: %d → %s", run.status, run.location)
	}
	b.get(run.location).page(t, http.StatusOK)
	var last response
	defer func() {
		if t.Failed() {
			t.Logf("last state:\n%s", last.body)
		}
	}()
	waitFor(t, 60*time.Second, "the run delivered", func() bool {
		last = b.fetch(http.MethodGet, run.location+"/status", nil)
		return last.header.Get("X-Poll-Done") == "1"
	})
	if !strings.Contains(last.body, "st-done") || !strings.Contains(last.body, openid) || !strings.Contains(last.body, "st-delivered") {
		t.Fatalf("the finished run:\n%s", last.body)
	}
	if hist := b.get("/admin/schedules/"+id).page(t, http.StatusOK); !strings.Contains(hist, `data-test="schedule-runs"`) {
		t.Error("the run is not in the schedule's history")
	}
	audit := b.get("/admin/audit").page(t, http.StatusOK)
	for _, a := range []string{"schedule.create", "schedule.pause", "schedule.resume", "schedule.update", "schedule.run"} {
		if !strings.Contains(audit, a) {
			t.Errorf("%s is not in the audit log", a)
		}
	}
	if r := b.get("/admin/schedules/999999"); r.status != http.StatusNotFound {
		t.Errorf("an unknown schedule: %d", r.status)
	}
}
