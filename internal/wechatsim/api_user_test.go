package wechatsim

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestUserGetPaging(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const total = 25000
	for i := 0; i < total; i++ {
		if _, err := b.sim.CreateUser(context.Background(), CreateUserRequest{AppID: testOA, OpenID: fmt.Sprintf("o%027d", i), Follow: true}); err != nil {
			t.Fatal(err)
		}
	}
	b.user(t, testOA, false) // a non-follower is not listed
	tok := b.token(t, testOA, testOASecret)

	var seen []string
	next := ""
	for page := 1; ; page++ {
		q := tq(tok)
		if next != "" {
			q.Set("next_openid", next)
		}
		a := b.get(t, "/cgi-bin/user/get", q)
		if a.int("total") != total {
			t.Fatalf("page %d: total %d", page, a.int("total"))
		}
		count := int(a.int("count"))
		wantCount := []int{10000, 10000, 5000}[page-1]
		if count != wantCount {
			t.Fatalf("page %d: count %d, want %d", page, count, wantCount)
		}
		ids := a.m["data"].(map[string]any)["openid"].([]any)
		for _, id := range ids {
			seen = append(seen, id.(string))
		}
		next = a.str("next_openid")
		if count < userGetPageSize {
			if next != "" {
				t.Fatalf("last page has next_openid %q", next)
			}
			break
		}
		if next != ids[len(ids)-1] {
			t.Fatalf("page %d: next_openid %q is not the last openid", page, next)
		}
	}
	if len(seen) != total || seen[0] != fmt.Sprintf("o%027d", 0) || seen[total-1] != fmt.Sprintf("o%027d", total-1) {
		t.Fatalf("saw %d openids", len(seen))
	}
	// Asking past the end: count 0 and no data.
	a := b.get(t, "/cgi-bin/user/get", tq(tok, "next_openid", seen[total-1]))
	if a.int("count") != 0 || a.m["data"] != nil || a.str("next_openid") != "" {
		t.Fatalf("past the end: %s", a.raw)
	}
	wantErrcode(t, b.get(t, "/cgi-bin/user/get", tq(tok, "next_openid", "onotauser")), 40003)
}

func TestUserInfo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tok := b.token(t, testOA, testOASecret)
	follower := b.user(t, testOA, true)
	left := b.user(t, testOA, true)
	b.act(t, left.OpenID, Action{Type: ActionUnsubscribe})

	a := b.get(t, "/cgi-bin/user/info", tq(tok, "openid", follower.OpenID, "lang", "zh_CN"))
	wantErrcode(t, a, 0)
	if _, has := a.m["errcode"]; has {
		t.Error("user/info answered errcode on success")
	}
	for _, key := range []string{"subscribe", "openid", "language", "subscribe_time", "unionid", "remark", "groupid", "tagid_list", "subscribe_scene", "qr_scene", "qr_scene_str"} {
		if _, has := a.m[key]; !has {
			t.Errorf("user/info lacks %s: %s", key, a.raw)
		}
	}
	for _, key := range []string{"nickname", "headimgurl", "sex", "city", "province", "country"} {
		if _, has := a.m[key]; has {
			t.Errorf("user/info has retired field %s", key)
		}
	}
	if a.int("subscribe") != 1 || a.str("subscribe_scene") != SceneSearch || a.str("unionid") != follower.UnionID {
		t.Errorf("user/info: %s", a.raw)
	}
	if len(follower.OpenID) != 28 || !strings.HasPrefix(follower.OpenID, "o") {
		t.Errorf("openid %q not shaped like WeChat's", follower.OpenID)
	}

	a = b.get(t, "/cgi-bin/user/info", tq(tok, "openid", left.OpenID))
	if len(a.m) != 3 || a.int("subscribe") != 0 || a.str("unionid") == "" {
		t.Errorf("non-follower: %s", a.raw)
	}
	mpUser := b.user(t, testMP, false)
	wantErrcode(t, b.get(t, "/cgi-bin/user/info", tq(tok, "openid", mpUser.OpenID)), 40003)

	// Without an Open Platform group no unionid is returned.
	if err := b.sim.AddApp(AppConfig{AppID: "wxlone", AppSecret: "s"}); err != nil {
		t.Fatal(err)
	}
	lone, err := b.sim.CreateUser(ctx, CreateUserRequest{AppID: "wxlone", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	a = b.get(t, "/cgi-bin/user/info", tq(b.token(t, "wxlone", "s"), "openid", lone.OpenID))
	if _, has := a.m["unionid"]; has {
		t.Errorf("unionid returned without an Open Platform group: %s", a.raw)
	}
}

func TestUserBatchGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	f := b.user(t, testOA, true)
	n := b.user(t, testOA, false)
	list := func(ids ...string) map[string]any {
		var l []map[string]string
		for _, id := range ids {
			l = append(l, map[string]string{"openid": id, "lang": "zh_CN"})
		}
		return map[string]any{"user_list": l}
	}
	a := b.post(t, "/cgi-bin/user/info/batchget", tq(tok), list(n.OpenID, f.OpenID))
	infos := a.m["user_info_list"].([]any)
	if len(infos) != 2 || infos[0].(map[string]any)["openid"] != n.OpenID || infos[1].(map[string]any)["subscribe"].(fmt.Stringer).String() != "1" {
		t.Fatalf("batchget order or content: %s", a.raw)
	}
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = f.OpenID
	}
	wantErrcode(t, b.post(t, "/cgi-bin/user/info/batchget", tq(tok), list(ids...)), 40032)
	wantErrcode(t, b.post(t, "/cgi-bin/user/info/batchget", tq(tok), list(ids[:100]...)), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/user/info/batchget", tq(tok), list("obogus")), 40003)
}

func TestCreateUserLinksUnionID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	oaUser := b.user(t, testOA, true)
	mpUser, err := b.sim.CreateUser(ctx, CreateUserRequest{AppID: testMP, UnionID: oaUser.UnionID})
	if err != nil {
		t.Fatal(err)
	}
	if mpUser.UnionID != oaUser.UnionID || mpUser.OpenID == oaUser.OpenID {
		t.Fatalf("mp user %+v, oa user %+v", mpUser, oaUser)
	}
	if _, err := b.sim.CreateUser(ctx, CreateUserRequest{AppID: testMP, OpenID: oaUser.OpenID}); ErrorCodeOf(err) != CodeConflict {
		t.Fatalf("reusing another app's openid: %v", err)
	}
	again, err := b.sim.CreateUser(ctx, CreateUserRequest{AppID: testOA, OpenID: oaUser.OpenID, Follow: true})
	if err != nil || again.OpenID != oaUser.OpenID {
		t.Fatalf("existing user: %v %+v", err, again)
	}
	if _, err := b.sim.CreateUser(ctx, CreateUserRequest{AppID: "wxnope"}); ErrorCodeOf(err) != CodeNotFound {
		t.Fatalf("unknown app: %v", err)
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, true)
	a := b.post(t, "/cgi-bin/tags/create", tq(tok), map[string]any{"tag": map[string]any{"name": "广东"}})
	id := a.m["tag"].(map[string]any)["id"]
	wantErrcode(t, b.post(t, "/cgi-bin/tags/create", tq(tok), map[string]any{"tag": map[string]any{"name": "广东"}}), 45157)
	wantErrcode(t, b.post(t, "/cgi-bin/tags/members/batchtagging", tq(tok), map[string]any{"openid_list": []string{u.OpenID}, "tagid": id}), 0)
	a = b.post(t, "/cgi-bin/tags/getidlist", tq(tok), map[string]any{"openid": u.OpenID})
	if fmt.Sprint(a.m["tagid_list"]) != fmt.Sprintf("[%v]", id) {
		t.Fatalf("getidlist: %s", a.raw)
	}
	info := b.get(t, "/cgi-bin/user/info", tq(tok, "openid", u.OpenID))
	if fmt.Sprint(info.m["tagid_list"]) != fmt.Sprintf("[%v]", id) {
		t.Fatalf("user/info tagid_list: %s", info.raw)
	}
	a = b.post(t, "/cgi-bin/user/tag/get", tq(tok), map[string]any{"tagid": id})
	if a.int("count") != 1 {
		t.Fatalf("user/tag/get: %s", a.raw)
	}
	wantErrcode(t, b.post(t, "/cgi-bin/tags/delete", tq(tok), map[string]any{"tag": map[string]any{"id": 2}}), 45058)
	wantErrcode(t, b.post(t, "/cgi-bin/tags/delete", tq(tok), map[string]any{"tag": map[string]any{"id": id}}), 0)
	wantErrcode(t, b.post(t, "/cgi-bin/tags/delete", tq(tok), map[string]any{"tag": map[string]any{"id": id}}), 45159)
}
