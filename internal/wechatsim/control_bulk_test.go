package wechatsim

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestControlBulkUsersAndInboxStats(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModePlaintext))

	var created BulkUsersResult
	b.control(t, "POST", "/sim/api/users/bulk", map[string]any{"app_id": testOA, "count": 500, "follow": true}, http.StatusCreated, &created)
	if created.AppID != testOA || len(created.OpenIDs) != 500 {
		t.Fatalf("created %s with %d openids", created.AppID, len(created.OpenIDs))
	}
	seen := map[string]bool{}
	for _, o := range created.OpenIDs {
		if len(o) != 28 || seen[o] {
			t.Fatalf("openid %q: wrong length or repeated", o)
		}
		seen[o] = true
	}
	// Followers from before the server was configured: no subscribe push.
	if got := b.recv.count(); got != 0 {
		t.Errorf("%d pushes for a bulk follow, want none", got)
	}
	var app AppView
	b.control(t, "GET", "/sim/api/apps/"+testOA, nil, http.StatusOK, &app)
	if app.Users != 500 || app.Followers != 500 {
		t.Errorf("app view: %d users, %d followers, want 500 and 500", app.Users, app.Followers)
	}
	u, err := b.sim.GetUser(testOA, created.OpenIDs[7])
	if err != nil || !u.Subscribed || u.SubscribeScene != SceneSearch || u.SubscribeTime == 0 {
		t.Fatalf("bulk user: %+v, %v", u, err)
	}

	// WeChat's API sees them: user/get lists them in creation order.
	tok := b.token(t, testOA, testOASecret)
	list := b.get(t, "/cgi-bin/user/get", tq(tok))
	wantErrcode(t, list, 0)
	if list.int("total") != 500 || list.int("count") != 500 {
		t.Fatalf("user/get: %s", list.raw[:min(len(list.raw), 200)])
	}

	// Two sends to one user (different client_msg_id), one to another
	// repeated with the same client_msg_id (sent once).
	data := map[string]string{"thing1": "张三", "time2": "2026-11-24 10:00"}
	send := func(openid, clientMsgID string) {
		body := templateBody(openid, tmplVisitor, data)
		body["client_msg_id"] = clientMsgID
		wantErrcode(t, b.post(t, "/cgi-bin/message/template/send", tq(tok), body), 0)
	}
	send(created.OpenIDs[0], "a")
	send(created.OpenIDs[0], "b")
	send(created.OpenIDs[1], "c")
	send(created.OpenIDs[1], "c")

	var st InboxStats
	b.control(t, "GET", "/sim/api/apps/"+testOA+"/inbox_stats?kind=template", nil, http.StatusOK, &st)
	if st.Users != 500 || st.Items != 3 || st.Histogram["0"] != 498 || st.Histogram["1"] != 1 || st.Histogram["2"] != 1 || len(st.Histogram) != 3 {
		t.Fatalf("stats: %+v", st)
	}
	if st.MaxPerSecond != 3 {
		t.Errorf("max per second %d, want the 3 sends of a moment", st.MaxPerSecond)
	}
	if len(st.Several) != 1 || st.Several[0] != created.OpenIDs[0] {
		t.Errorf("several: %v, want [%s]", st.Several, created.OpenIDs[0])
	}
	if len(st.None) != maxStatsExamples || st.None[0] != created.OpenIDs[2] {
		t.Errorf("none: %d listed, first %v", len(st.None), st.None[:1])
	}
	b.control(t, "GET", "/sim/api/apps/"+testOA+"/inbox_stats?"+url.Values{"kind": {"template"}, "template_id": {"other"}}.Encode(),
		nil, http.StatusOK, &st)
	if st.Items != 0 || st.Histogram["0"] != 500 {
		t.Errorf("stats of another template: %+v", st.Histogram)
	}

	// Mini program users are users, never followers.
	b.control(t, "POST", "/sim/api/users/bulk", map[string]any{"app_id": testMP, "count": 3, "follow": true}, http.StatusCreated, &created)
	if u, err := b.sim.GetUser(testMP, created.OpenIDs[0]); err != nil || u.Subscribed {
		t.Errorf("mini program user: %+v, %v", u, err)
	}

	for _, tt := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/sim/api/users/bulk", map[string]any{"app_id": testOA, "count": 0}, http.StatusBadRequest},
		{"POST", "/sim/api/users/bulk", map[string]any{"app_id": testOA, "count": MaxBulkUsers + 1}, http.StatusBadRequest},
		{"POST", "/sim/api/users/bulk", map[string]any{"count": 1}, http.StatusBadRequest},
		{"POST", "/sim/api/users/bulk", map[string]any{"app_id": "wxnope", "count": 1}, http.StatusNotFound},
		{"POST", "/sim/api/users/bulk", map[string]any{"app_id": testOA, "count": 1, "folow": true}, http.StatusBadRequest},
		{"GET", "/sim/api/apps/" + testOA + "/inbox_stats", nil, http.StatusBadRequest},
		{"GET", "/sim/api/apps/" + testOA + "/inbox_stats?kind=sent", nil, http.StatusBadRequest},
		{"GET", "/sim/api/apps/wxnope/inbox_stats?kind=template", nil, http.StatusNotFound},
	} {
		b.control(t, tt.method, tt.path, tt.body, tt.status, nil)
	}
}

func TestMaxWithin(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, c := range []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0), 1},
		{at(1500, 0, 900, 500, 1000, 3000), 3}, // [0, 1 s) and [500 ms, 1.5 s) hold 3 each
		{at(0, 999, 1000, 1001, 1002), 4},
	} {
		if got := maxWithin(c.times, time.Second); got != c.want {
			t.Errorf("maxWithin(%v) = %d, want %d", c.times, got, c.want)
		}
	}
}
