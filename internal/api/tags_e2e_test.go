package api_test

import (
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// An operator tags followers through the API: the tag is made at WeChat,
// followers are tagged and untagged, the follower list filters by it, and
// a deleted tag leaves no follower carrying it. Bad input is refused with
// a code and a Chinese reason.
func TestTagsAPI(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	a, b := e.user(t, e2eOA, "", true), e.user(t, e2eOA, "", true)
	// The subscribe pushes make them followers.
	deadline := time.Now().Add(10 * time.Second)
	for len(list(e.must(t, "GET", "/api/v1/followers?account=main", nil, 200), "followers")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the followers never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}

	tag := e.must(t, "POST", "/api/v1/tags", map[string]string{"account": "main", "name": "门店A"}, 201)
	id := str(tag, "id")
	path := "/api/v1/tags/" + id
	res := e.must(t, "POST", path+"/members", map[string]any{"account": "main", "add": []string{a, b}}, 200)
	if str(res, "tagged") != "2" {
		t.Errorf("tagged %v", res)
	}
	tagged := func() int {
		return len(list(e.must(t, "GET", "/api/v1/followers?account=main&tag="+id, nil, 200), "followers"))
	}
	if n := tagged(); n != 2 {
		t.Errorf("%d followers listed with the tag, want 2", n)
	}
	// A send to the tag reaches both.
	e.must(t, "POST", "/api/v1/templates", map[string]any{"account": "main", "template_id": "TPL-R", "kind": "template",
		"title": "到货通知", "content": "{{thing1.DATA}}"}, 200)
	sent := e.must(t, "POST", "/api/v1/messages", map[string]any{"account": "main", "to": map[string]any{"tag": tag["id"]},
		"template": "TPL-R", "data": map[string]string{"thing1": "新品"}}, 202)
	if got := list(sent, "recipients"); len(got) != 2 {
		t.Errorf("a send to the tag has %d recipients, want 2: %v", len(got), sent)
	}
	res = e.must(t, "POST", path+"/members", map[string]any{"account": "main", "remove": []string{a}}, 200)
	if str(res, "untagged") != "1" || tagged() != 1 {
		t.Errorf("after untagging one: %v, %d listed", res, tagged())
	}
	tags := list(e.must(t, "GET", "/api/v1/tags?account=main", nil, 200), "tags")
	if len(tags) != 1 || str(tags[0], "name") != "门店A" || str(tags[0], "count") != "1" {
		t.Errorf("tags %v", tags)
	}
	if renamed := e.must(t, "PUT", path, map[string]string{"account": "main", "name": "门店B"}, 200); str(renamed, "name") != "门店B" {
		t.Errorf("renamed %v", renamed)
	}

	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/api/v1/tags", map[string]string{"account": "main", "name": " "}, 400, "tag_name_required"},
		{"POST", "/api/v1/tags", map[string]string{"account": "main", "name": "门店B"}, 409, "tag_name_taken"},
		{"POST", "/api/v1/tags", map[string]string{"account": "shop-mp", "name": "x"}, 400, "not_an_official_account"},
		{"POST", "/api/v1/tags", map[string]string{"account": "nope", "name": "x"}, 404, "account_not_found"},
		{"POST", "/api/v1/tags/2/members", map[string]any{"account": "main", "add": []string{a}}, 400, "reserved_tag"},
		{"POST", path + "/members", map[string]any{"account": "main"}, 400, "openids_required"},
		{"PUT", "/api/v1/tags/999", map[string]string{"account": "main", "name": "y"}, 404, "unknown_tag"},
		{"GET", "/api/v1/tags", nil, 400, "account_required"},
		{"POST", "/api/v1/messages", map[string]any{"account": "main", "to": map[string]any{"tag": 999}, "template": "TPL-R",
			"data": map[string]string{"thing1": "x"}}, 400, "tag_empty"},
	} {
		status, body, raw := e.call(t, c.method, c.path, e.key, c.body)
		if status != c.status || str(body, "error", "code") != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, status, raw, c.status, c.code)
		}
	}

	e.must(t, "DELETE", path+"?account=main", nil, 204)
	if n := tagged(); n != 0 {
		t.Errorf("%d followers keep the deleted tag", n)
	}
}
