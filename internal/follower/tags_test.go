package follower_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

type oneClient struct{ c *wechat.Client }

func (o oneClient) Client(account string) (*wechat.Client, bool) { return o.c, account == "main" }

// Tags are made, renamed and deleted at WeChat; 120 followers are tagged
// in batches of 50 and some untagged, and both WeChat (the simulator) and
// the follower store agree on who carries the tag. Bad names and WeChat's
// reserved tags are refused before any call.
func TestTags(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		const n = 120
		sim, simURL := simWith(t, n)
		ctx := t.Context()
		client := clientFor(t, d, simURL)
		if _, err := follower.NewSyncer(d, nil, nil).Run(ctx, "main", client, follower.SyncOptions{}); err != nil {
			t.Fatal(err)
		}
		store := follower.NewStore(d, nil)
		tags := follower.NewTags(store, oneClient{client})

		vip, err := tags.Create(ctx, "main", "  VIP客户 ")
		if err != nil || vip.ID <= wechat.LastReservedTag || vip.Name != "VIP客户" {
			t.Fatalf("create: %+v %v", vip, err)
		}
		for _, bad := range []string{"", strings.Repeat("长", 31)} {
			if _, err := tags.Create(ctx, "main", bad); !isProblem(err, "tag_name") {
				t.Errorf("create %q: %v", bad, err)
			}
		}
		var apiErr *wechat.APIError
		if _, err := tags.Create(ctx, "main", "VIP客户"); !errors.As(err, &apiErr) || apiErr.Code != wechat.CodeTagNameTaken || !isProblem(err, "tag_name_taken") {
			t.Errorf("a second tag of the same name: %v", err)
		}
		if _, err := tags.Change(ctx, "main", 2, []string{"o1"}, nil); !isProblem(err, "reserved_tag") {
			t.Errorf("tagging with reserved tag 2: %v", err)
		}
		if _, err := tags.Create(ctx, "shop", "x"); !isProblem(err, "account_not_found") {
			t.Errorf("unknown account: %v", err)
		}

		var all []string
		for i := range n {
			all = append(all, fmt.Sprintf("o%027d", i))
		}
		before := sim.CallCount(simOA, "/cgi-bin/tags/members/batchtagging")
		res, err := tags.Change(ctx, "main", vip.ID, append(all, all[0]), nil)
		if err != nil || res.Tagged != n {
			t.Fatalf("tag %d followers: %+v %v", n, res, err)
		}
		if calls := sim.CallCount(simOA, "/cgi-bin/tags/members/batchtagging") - before; calls != 3 {
			t.Errorf("%d batchtagging calls for %d openids, want 3 (50 each)", calls, n)
		}
		res, err = tags.Change(ctx, "main", vip.ID, nil, all[:20])
		if err != nil || res.Untagged != 20 {
			t.Fatalf("untag 20: %+v %v", res, err)
		}
		if _, err := tags.Change(ctx, "main", vip.ID, all[:1], all[:1]); !isProblem(err, "openid_added_and_removed") {
			t.Errorf("add and remove the same openid: %v", err)
		}
		tagged := func() []string {
			var out []string
			id := vip.ID
			list, _, err := store.Search(ctx, follower.FollowerFilter{Account: "main", TagID: &id, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range list {
				out = append(out, f.OpenID)
			}
			slices.Sort(out)
			return out
		}
		if got := tagged(); !slices.Equal(got, all[20:]) {
			t.Errorf("the store has %d followers with the tag, want the %d tagged", len(got), n-20)
		}
		for _, o := range []string{all[0], all[20], all[n-1]} {
			u, err := sim.GetUser(simOA, o)
			if err != nil {
				t.Fatal(err)
			}
			if has := slices.Contains(u.TagIDs, int(vip.ID)); has != (o != all[0]) {
				t.Errorf("WeChat: %s carries the tag: %v", o, has)
			}
		}

		renamed, err := tags.Rename(ctx, "main", vip.ID, "重要客户")
		if err != nil || renamed.Name != "重要客户" {
			t.Fatalf("rename: %+v %v", renamed, err)
		}
		list, err := tags.List(ctx, "main")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list, func(x wechat.Tag) bool { return x.ID == vip.ID })
		if i < 0 || list[i].Name != "重要客户" || list[i].Count != n-20 {
			t.Errorf("list: %+v", list)
		}

		if err := tags.Delete(ctx, "main", vip.ID); err != nil {
			t.Fatal(err)
		}
		if got := tagged(); len(got) != 0 {
			t.Errorf("%d followers keep a deleted tag", len(got))
		}
		if u, _ := sim.GetUser(simOA, all[n-1]); slices.Contains(u.TagIDs, int(vip.ID)) {
			t.Error("WeChat keeps the deleted tag on a follower")
		}
	})
}

func isProblem(err error, codePrefix string) bool {
	p, ok := problem.As(err)
	return ok && strings.HasPrefix(p.Code, codePrefix)
}
