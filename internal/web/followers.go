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
	c.page("GET /admin/followers/sync", c.syncPage)
	c.page("GET /admin/followers/sync/status", c.syncFragment)
	c.page("POST /admin/followers/sync", c.startSync)
	c.page("GET /admin/followers/{account}/{openid}", c.followerPage)
	c.page("POST /admin/followers/{account}/{openid}/reply", c.followerReply)
	c.page("POST /admin/followers/{account}/{openid}/typing", c.followerTyping)
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
	// CanSync offers a full sync of the chosen account.
	CanSync bool
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
	v.CanSync = c.opts.Syncs != nil
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
	"followers.sync":          {"从微信全量同步", "Full sync from WeChat"},
	"followers.sync_hint":     {"拉取全部关注者和资料（user/get + user/info/batchget），可随时再次运行。", "Fetches every follower and profile (user/get + user/info/batchget); safe to run again at any time."},

	"follower.title":                 {"粉丝详情", "Follower"},
	"follower.profile":               {"资料", "Profile"},
	"follower.language":              {"语言", "Language"},
	"follower.unfollowed_at":         {"取关时间", "Unfollowed at"},
	"follower.qr_scene":              {"二维码场景值", "QR scene"},
	"follower.last_event":            {"最近事件 key", "Last event key"},
	"follower.profile_at":            {"资料更新于", "Profile fetched"},
	"follower.first_seen":            {"首次出现", "First seen"},
	"follower.person":                {"同一个人（UnionID）", "The same person (UnionID)"},
	"follower.no_unionid":            {"没有 UnionID：公众号未绑定微信开放平台，无法关联小程序身份。", "No UnionID: the account is not bound to the WeChat Open Platform, so mini-program identities cannot be linked."},
	"follower.kind.official_account": {"公众号", "Official account"},
	"follower.kind.mini_program":     {"小程序", "Mini program"},
	"follower.bindings":              {"绑定", "Bindings"},
	"follower.external_id":           {"外部 ID", "External id"},
	"follower.source":                {"来源", "Source"},
	"follower.bound_at":              {"绑定时间", "Bound at"},
	"follower.ended":                 {"已结束", "Ended"},
	"follower.active":                {"有效", "Active"},
	"follower.no_bindings":           {"没有绑定。", "No binding."},
	"follower.attributes":            {"属性", "Attributes"},
	"follower.no_attributes":         {"没有属性（用 PUT /api/v1/followers/{openid}/attributes 设置，定时任务里用 .Attr.名称 读取）。", "No attribute (set them with PUT /api/v1/followers/{openid}/attributes; schedules read them as .Attr.name)."},
	"follower.timeline":              {"消息往来", "Messages in and out"},
	"follower.reply":                 {"回复（客服消息）", "Reply (customer-service message)"},
	"follower.reply_send":            {"发送", "Send"},
	"follower.reply_open":            {"48 小时客服窗口已打开：可以直接回复。", "The 48-hour window is open: you can reply."},
	"follower.reply_closed":          {"粉丝 48 小时内没有发消息或点击菜单，微信不允许发送客服消息（45015）。", "The follower has not written or pressed anything in 48 hours; WeChat takes no customer-service message (45015)."},
	"follower.reply_empty":           {"请填写回复内容", "Write the reply first"},
	"follower.reply_outside_window":  {"超出 48 小时客服消息窗口，未发送。", "Outside the 48-hour window: not sent."},
	"follower.timeline_hint":         {"最近 50 条推送和 50 条发送，最新的在前。", "The latest 50 pushes and 50 sends, newest first."},
	"follower.in":                    {"粉丝 → 公众号", "Follower → account"},
	"follower.out":                   {"公众号 → 粉丝", "Account → follower"},
	"follower.no_timeline":           {"还没有消息往来。", "Nothing in or out yet."},
	"follower.back":                  {"返回粉丝列表", "Back to the followers"},

	"follower.sync_title":    {"全量同步", "Full sync"},
	"follower.sync_never":    {"这个账号还没有同步过。", "This account has never been synced."},
	"follower.sync_run":      {"第 %d 次同步", "Sync #%d"},
	"follower.sync_listed":   {"已列出 %d / %d 个 openid（%d 页）", "%d of %d openids listed (%d pages)"},
	"follower.sync_profiled": {"已获取 %d 份资料", "%d profiles fetched"},
	"follower.sync_unsub":    {"标记为已取关 %d 人", "%d marked unfollowed"},
	"follower.sync_calls":    {"调用微信 user/get %d 次，batchget %d 次", "%d user/get and %d batchget calls to WeChat"},
	"follower.sync_error":    {"出错：%s（再次运行会从中断处继续）", "Error: %s (running it again continues where it stopped)"},
	"follower.sync_started":  {"开始于 %s", "Started %s"},
	"follower.sync_waiting":  {"已排队，等待开始…", "Queued, waiting to start…"},
	"follower.sync_again":    {"再次同步", "Sync again"},
	"status.completed":       {"已完成", "completed"},
	"status.interrupted":     {"已中断", "interrupted"},
}
