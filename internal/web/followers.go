package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/wxgate/wxgate/internal/follower"
)

// followerRoutes registers the followers pages.
func (c *Console) followerRoutes() {
	c.page("GET /admin/followers", c.followersPage)
}

// followerRow is a follower with the external ids bound to them.
type followerRow struct {
	follower.Follower
	ExternalIDs []string
}

// followersView is one page of the list and the filter that made it.
type followersView struct {
	Account, Query, Subscribed string
	Rows                       []followerRow
	// Next is the link to the next page; "" on the last.
	Next string
	// Paged is set past the first page, which then links back to it.
	Paged bool
	// Total and SubscribedTotal count the account's (or every account's)
	// followers, for the heading.
	Total, SubscribedTotal int64
}

const followersPerPage = 50

func (c *Console) followersPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Followers == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	q := r.URL.Query()
	v := followersView{Account: q.Get("account"), Query: strings.TrimSpace(q.Get("q")), Subscribed: q.Get("subscribed")}
	f := follower.FollowerFilter{Account: v.Account, Text: v.Query, Cursor: q.Get("cursor"), Limit: followersPerPage}
	switch v.Subscribed {
	case "yes", "no":
		yes := v.Subscribed == "yes"
		f.Subscribed = &yes
	default:
		v.Subscribed = ""
	}
	v.Paged = f.Cursor != ""
	list, next, err := c.opts.Followers.Search(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, fl := range list {
		row := followerRow{Follower: fl}
		bindings, err := c.opts.Followers.ListBindings(r.Context(), follower.BindingFilter{Account: fl.Account, OpenID: fl.OpenID, Limit: 20})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, b := range bindings {
			row.ExternalIDs = append(row.ExternalIDs, b.ExternalID)
		}
		v.Rows = append(v.Rows, row)
	}
	if next != "" {
		nq := url.Values{"cursor": {next}}
		for _, k := range []string{"account", "q", "subscribed"} {
			if s := q.Get(k); s != "" {
				nq.Set(k, s)
			}
		}
		v.Next = "/admin/followers?" + nq.Encode()
	}
	// The counts are of the chosen account, or of every configured one.
	accounts := []string{v.Account}
	if v.Account == "" {
		accounts = accounts[:0]
		for _, a := range c.opts.Accounts {
			accounts = append(accounts, a.Name)
		}
	}
	for _, a := range accounts {
		all, err := c.opts.Followers.Count(r.Context(), a, false)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		following, err := c.opts.Followers.Count(r.Context(), a, true)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.Total, v.SubscribedTotal = v.Total+all, v.SubscribedTotal+following
	}
	c.render(w, r, http.StatusOK, "followers", "followers.title", v, nil)
}

// followerTexts are the followers pages' texts.
var followerTexts = texts{
	"followers.title":         {"粉丝", "Followers"},
	"followers.counts":        {"共 %d 人，其中 %d 人关注中", "%d in all, %d following"},
	"followers.all_accounts":  {"全部账号", "All accounts"},
	"followers.search":        {"搜索", "Search"},
	"followers.search_hint":   {"openid、unionid、备注或外部 ID 的一部分", "part of an openid, unionid, remark or external id"},
	"followers.any":           {"全部", "All"},
	"followers.following":     {"关注中", "Following"},
	"followers.unfollowed":    {"已取关", "Unfollowed"},
	"followers.account":       {"账号", "Account"},
	"followers.unionid":       {"UnionID", "UnionID"},
	"followers.state":         {"状态", "State"},
	"followers.scene":         {"关注来源", "Scene"},
	"followers.tags":          {"标签", "Tags"},
	"followers.remark":        {"备注", "Remark"},
	"followers.external_ids":  {"绑定的外部 ID", "Bound external ids"},
	"followers.subscribed_at": {"关注时间", "Followed at"},
	"followers.next":          {"下一页", "Next page"},
	"followers.first":         {"回到第一页", "First page"},
	"followers.none":          {"没有符合条件的粉丝。粉丝在关注、发消息或全量同步后出现。", "No follower matches. Followers appear when they follow, write, or after a full sync."},
	"followers.qr":            {"二维码", "QR code"},
}
