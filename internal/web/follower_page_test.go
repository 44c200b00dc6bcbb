package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A follower's page: profile, person, attributes (escaped), and the
// timeline with their subscribe push and a card sent to them.
func TestFollowerPageShowsProfileAttributesAndTimeline(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	var openid, unionid string
	if err := env.DB.QueryRowContext(context.Background(),
		`SELECT openid, COALESCE(unionid, '') FROM followers WHERE account = 'demo' AND subscribed ORDER BY openid LIMIT 1`).Scan(&openid, &unionid); err != nil {
		t.Fatal(err)
	}
	apiCall(t, env, http.MethodPut, "/api/v1/followers/"+openid+"/attributes?account=demo",
		map[string]string{"city": "<b>杭州</b>", "location": "101210101"})
	sent := apiCall(t, env, http.MethodPost, "/api/v1/messages", map[string]any{
		"account": "demo", "to": map[string]any{"openids": []string{openid}}, "template": "new_visitor",
		"data": map[string]string{"customer": "钱七", "page": "楼盘F", "time": "2026-12-06 12:00"}})
	id, _ := sent["id"].(string)
	waitFor(t, 30*time.Second, "the card delivered", func() bool { return firstRecipient(t, env, id)["status"] == "delivered" })

	list := b.get("/admin/followers?account=demo").page(t, http.StatusOK)
	link := `/admin/followers/demo/` + openid
	if !strings.Contains(list, `href="`+link+`"`) {
		t.Fatalf("the list does not link to the follower's page:\n%s", list)
	}
	page := b.get(link).page(t, http.StatusOK)
	for _, want := range []string{openid, `data-test="timeline-in"`, "subscribe", `data-test="timeline-out"`, `/admin/messages/` + id,
		"&lt;b&gt;杭州&lt;/b&gt;", "101210101"} {
		if !strings.Contains(page, want) {
			t.Errorf("the follower page lacks %q", want)
		}
	}
	if strings.Contains(page, "<b>杭州") {
		t.Error("an attribute value is not escaped")
	}
	if unionid != "" && !strings.Contains(page, unionid) {
		t.Errorf("the follower page lacks the unionid %s", unionid)
	}
	// The newest entry comes first: the card was sent after the follow.
	if strings.Index(page, `data-test="timeline-out"`) > strings.Index(page, `<code>event:subscribe</code>`) {
		t.Error("the timeline is not newest first")
	}
	if r := b.get("/admin/followers/demo/o-nobody"); r.status != http.StatusNotFound {
		t.Errorf("an unknown follower: %d", r.status)
	}
}

var sinceParam = regexp.MustCompile(`since=(\d+)`)

// A full sync started from the followers page runs, and its page follows
// it live until it is completed.
func TestFullSyncFromTheConsole(t *testing.T) {
	b := signedIn(t, "en")
	page := b.get("/admin/followers?account=demo").page(t, http.StatusOK)
	if !strings.Contains(page, `data-test="sync-start"`) {
		t.Fatal("no sync button on the followers page of an account")
	}
	if r := b.postRaw("/admin/followers/sync", url.Values{"account": {"demo"}}); r.status != http.StatusForbidden {
		t.Fatalf("sync without CSRF token: %d", r.status)
	}
	if r := b.post("/admin/followers/sync", url.Values{"account": {"nope"}}); r.status != http.StatusNotFound {
		t.Fatalf("sync of an unknown account: %d", r.status)
	}
	r := b.post("/admin/followers/sync", url.Values{"account": {"demo"}})
	m := sinceParam.FindStringSubmatch(r.location)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/admin/followers/sync?") || m == nil {
		t.Fatalf("start: %d → %s", r.status, r.location)
	}
	b.get(r.location).page(t, http.StatusOK)
	var last response
	waitFor(t, 60*time.Second, "the sync completed", func() bool {
		last = b.fetch(http.MethodGet, "/admin/followers/sync/status?account=demo&since="+m[1], nil)
		return last.header.Get("X-Poll-Done") == "1"
	})
	var following int
	if err := b.env.DB.QueryRowContext(context.Background(), `SELECT count(*) FROM followers WHERE account = 'demo' AND subscribed`).Scan(&following); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(\d+) of (\d+) openids listed`).FindStringSubmatch(last.body)
	if !strings.Contains(last.body, "st-completed") || want == nil || want[1] != want[2] || want[1] != strconv.Itoa(following) {
		t.Fatalf("final sync state:\n%s", last.body)
	}
	if audit := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(audit, "followers.sync") {
		t.Error("the sync is not in the audit log")
	}
}

// A follower who just wrote gets a reply from their page: a
// customer-service text that reaches the phone and joins the timeline; an
// empty reply comes back with the reason.
func TestFollowerPageReplies(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	simPost := func(path, body string) map[string]any {
		resp, err := http.Post(env.Sim+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	user := simPost("/sim/api/users", `{"app_id":"wxd0e1110000000001","follow":true}`)
	openid, _ := user["openid"].(string)
	simPost("/sim/api/users/"+openid+"/actions", `{"app_id":"wxd0e1110000000001","type":"text","content":"请问还有房吗？"}`)
	link := "/admin/followers/demo/" + openid
	var page string
	waitFor(t, 10*time.Second, "the follower's page", func() bool {
		r := b.get(link)
		page = r.body
		return r.status == http.StatusOK && strings.Contains(page, "请问还有房吗")
	})
	if !strings.Contains(page, `data-test="follower-reply"`) || !strings.Contains(page, "48 小时客服窗口已打开") {
		t.Fatalf("no open reply box:\n%s", page)
	}
	// Writing shows "typing…" on the phone: the box posts to the page's
	// typing route, which calls WeChat's custom/typing.
	if !strings.Contains(page, `data-typing="`+link+`/typing"`) {
		t.Error("the reply box does not show typing")
	}
	if r := b.post(link+"/typing", url.Values{}); r.status != http.StatusNoContent {
		t.Errorf("typing: %d %s", r.status, r.body)
	}
	resp, err := http.Get(env.Sim + "/sim/api/calls?app_id=wxd0e1110000000001")
	if err != nil {
		t.Fatal(err)
	}
	var calls map[string]int
	_ = json.NewDecoder(resp.Body).Decode(&calls)
	resp.Body.Close()
	if calls["/cgi-bin/message/custom/typing"] == 0 {
		t.Errorf("WeChat was not told of the typing: %v", calls)
	}
	idem := regexp.MustCompile(`name="idem" value="([^"]+)"`).FindStringSubmatch(page)
	if idem == nil {
		t.Fatal("no idempotency key in the reply form")
	}
	if r := b.post(link+"/reply", url.Values{"text": {"  "}, "idem": {idem[1]}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "请填写回复内容") {
		t.Errorf("an empty reply: %d", r.status)
	}
	r := b.post(link+"/reply", url.Values{"text": {"您好，还有两套，欢迎来看房。"}, "idem": {idem[1]}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("reply: %d %s", r.status, r.body)
	}
	waitFor(t, 30*time.Second, "the reply on the phone", func() bool {
		resp, err := http.Get(env.Sim + "/sim/api/users/" + openid + "/inbox?app_id=wxd0e1110000000001")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "还有两套")
	})
	if page := b.get(link).page(t, http.StatusOK); !strings.Contains(page, `data-test="timeline-out"`) {
		t.Error("the reply is not in the timeline")
	}
	if audit := b.get("/admin/audit").page(t, http.StatusOK); !strings.Contains(audit, "message.reply") {
		t.Error("the reply is not in the audit log")
	}
}
