package web

import "fmt"

// texts maps a key to its {Chinese, English} wording. Each page file keeps
// its own; buildCatalog joins them and refuses a key defined twice.
type texts map[string][2]string

// catalogs are every page file's texts.
var catalogs = []texts{
	coreTexts, statusTexts, dashboardTexts, followerTexts, sendTexts, messageTexts, templateTexts,
	scheduleTexts, bindingTexts, replyTexts, keyTexts, accountTexts, auditTexts, apiContractTexts,
}

func buildCatalog() (map[string][2]string, error) {
	out := map[string][2]string{}
	for _, t := range catalogs {
		for k, v := range t {
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("web: text %q is defined twice", k)
			}
			out[k] = v
		}
	}
	return out, nil
}

// coreTexts are the layout's, the sign-in page's and the error page's.
var coreTexts = texts{
	"app.name":         {"wxgate 管理后台", "wxgate console"},
	"nav.dashboard":    {"概览", "Dashboard"},
	"nav.followers":    {"粉丝", "Followers"},
	"nav.send":         {"发送消息", "Send"},
	"nav.messages":     {"消息记录", "Messages"},
	"nav.templates":    {"模板", "Templates"},
	"nav.schedules":    {"定时任务", "Schedules"},
	"nav.bindings":     {"绑定", "Bindings"},
	"nav.replies":      {"自动回复", "Auto-replies"},
	"nav.keys":         {"API 密钥与 Webhook", "API keys & webhooks"},
	"nav.accounts":     {"公众号接入", "Accounts"},
	"nav.audit":        {"操作日志", "Audit log"},
	"nav.api_contract": {"API 文档（OpenAPI）", "API contract (OpenAPI)"},
	"nav.simulator":    {"模拟器（手机）", "Simulator (phone)"},
	"nav.menu":         {"菜单", "Menu"},
	"lang.switch":      {"English", "中文"},
	"logout":           {"退出登录", "Sign out"},
	"signed_in_as":     {"当前用户：%s", "Signed in as %s"},

	"login.title":    {"登录", "Sign in"},
	"login.username": {"用户名", "Username"},
	"login.password": {"密码", "Password"},
	"login.submit":   {"登录", "Sign in"},
	"login.hint": {"管理员账号用 wxgate admin create 创建；wxgate demo 会打印一次性登录链接。",
		"Admin users are created with wxgate admin create; wxgate demo prints a one-time sign-in link."},

	"error.title":     {"出错了", "Something went wrong"},
	"error.back":      {"返回发送页", "Back to the composer"},
	"error.code":      {"错误码", "Error code"},
	"form.fix":        {"请修正标出的字段。", "Please correct the marked fields."},
	"form.save":       {"保存", "Save"},
	"form.cancel":     {"取消", "Cancel"},
	"form.delete":     {"删除", "Delete"},
	"form.confirm":    {"确定吗？此操作无法撤销。", "Are you sure? This cannot be undone."},
	"form.search":     {"搜索", "Search"},
	"form.all":        {"全部", "All"},
	"form.account":    {"公众号", "Account"},
	"form.optional":   {"（选填）", "(optional)"},
	"list.empty":      {"暂无数据。", "Nothing here yet."},
	"list.next":       {"下一页", "Next page"},
	"list.first":      {"第一页", "First page"},
	"list.more":       {"加载更多", "More"},
	"live.updating":   {"实时更新中…", "Updating live…"},
	"live.failed":     {"更新失败，稍后重试…", "Update failed; retrying…"},
	"not_configured":  {"此服务未启用该功能。", "This server does not run this part."},
	"done.saved":      {"已保存。", "Saved."},
	"done.deleted":    {"已删除。", "Deleted."},
	"yes":             {"是", "yes"},
	"no":              {"否", "no"},
	"time.zone":       {"时间均为北京时间", "Times are China Standard Time"},
	"field.required":  {"必填", "required"},
	"demo.banner":     {"演示模式：模拟器扮演微信和粉丝的手机。", "Demo mode: the simulator plays WeChat and the followers' phones."},
	"skip_to_content": {"跳到正文", "Skip to content"},
}

// statusTexts word the states of sends, recipients, runs and syncs.
var statusTexts = texts{
	"status.queued":      {"排队中", "queued"},
	"status.sending":     {"发送中", "sending"},
	"status.in_flight":   {"发送中", "sending"},
	"status.sent":        {"已发送", "sent"},
	"status.delivered":   {"已送达", "delivered"},
	"status.blocked":     {"被拒收", "blocked"},
	"status.failed":      {"失败", "failed"},
	"status.unconfirmed": {"未确认", "unconfirmed"},
	"status.retrying":    {"重试中", "retrying"},
	"status.skipped":     {"已跳过", "skipped"},
	"status.canceled":    {"已取消", "canceled"},
	"status.cancelled":   {"已取消", "cancelled"},
	"status.running":     {"进行中", "running"},
	"status.done":        {"已完成", "done"},
	"status.finished":    {"已完成", "finished"},
	"status.pending":     {"等待中", "pending"},
	"status.scanned":     {"已扫码", "scanned"},
	"status.bound":       {"已绑定", "bound"},
	"status.expired":     {"已过期", "expired"},
	"status.used":        {"已使用", "used"},
	"status.replied":     {"已回复", "replied"},
	"status.empty":       {"未回复", "no reply"},
	"status.deferred":    {"异步处理", "deferred"},
	"status.received":    {"已接收", "received"},
	"status.duplicate":   {"重复", "duplicate"},
	"status.error":       {"出错", "error"},
	"status.enabled":     {"启用", "enabled"},
	"status.disabled":    {"停用", "disabled"},
	"status.paused":      {"已暂停", "paused"},
}
