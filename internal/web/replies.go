package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/wechat"
)

// replyRoutes registers the auto-replies pages.
func (c *Console) replyRoutes() {
	c.page("GET /admin/replies", c.repliesPage)
	c.page("POST /admin/replies", c.addReply)
	c.page("POST /admin/replies/{id}/enable", c.enableReply)
	c.page("POST /admin/replies/{id}/disable", c.disableReply)
	c.page("POST /admin/replies/{id}/delete", c.deleteReply)
}

var errNoReplies = problem.New(problem.Unavailable, "replies_not_configured", "",
	"this server has no auto-replies — 此服务未启用自动回复")

// errRuleNotFound is a reply rule id nobody has.
var errRuleNotFound = problem.NotFoundf("rule_not_found", "id", "no such auto-reply rule — 没有这条自动回复规则")

// replyMatches are the kinds of rule the form offers, in order.
var replyMatches = []string{reply.MatchKeyword, reply.MatchSubscribe, reply.MatchClick, reply.MatchMsgType, reply.MatchDefault}

// repliesView is one account's rules, the add form and the test box.
type repliesView struct {
	Account string
	Rules   []reply.Rule
	Matches []string
	Modes   []string
	// Form is what the add form holds.
	Form replyForm
	// Test is the text tried; Tested is set once tried, Answer is the
	// matching rule (nil: no rule answers, WeChat shows nothing).
	Test   string
	Tested bool
	Answer *reply.Rule
	// AnswerText is the text the follower would see, built as the
	// callback builds it ({content} filled in).
	AnswerText string
}

type replyForm struct {
	Match, Mode, Pattern, MsgType, EventKey, Content string
}

func (c *Console) replyAccount(r *http.Request, name string) string {
	if _, ok := c.accountNamed(name); ok {
		return name
	}
	for _, a := range c.officialAccounts() {
		return a.Name
	}
	return ""
}

func (c *Console) loadReplies(r *http.Request, account string) (repliesView, error) {
	v := repliesView{Account: c.replyAccount(r, account), Matches: replyMatches, Modes: []string{reply.ModeContains, reply.ModeExact, reply.ModeRegex}, Form: replyForm{Match: reply.MatchKeyword, Mode: reply.ModeContains}}
	if v.Account == "" {
		return v, nil
	}
	rules, err := c.opts.Replies.List(r.Context(), v.Account)
	if err != nil {
		return v, err
	}
	v.Rules = rules
	return v, nil
}

func (c *Console) repliesPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Replies == nil {
		c.fail(w, r, errNoReplies)
		return
	}
	q := r.URL.Query()
	v, err := c.loadReplies(r, q.Get("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if q.Has("test") && v.Account != "" {
		// The same matcher the callback uses, on a text message as a
		// follower would send it.
		v.Test, v.Tested = q.Get("test"), true
		m := &wechat.Message{MsgType: wechat.MsgTypeText, Content: v.Test, FromUserName: "console-test", ToUserName: v.Account}
		if v.Answer = c.opts.Replies.Match(v.Account, m); v.Answer != nil {
			if tr, ok := v.Answer.Build(m).(wechat.TextReply); ok {
				v.AnswerText = tr.Content
			}
		}
	}
	c.render(w, r, http.StatusOK, "replies", "replies.title", v, nil)
}

// addReply is POST /admin/replies: a text-reply rule at the end of the
// account's list.
func (c *Console) addReply(w http.ResponseWriter, r *http.Request) {
	if c.opts.Replies == nil {
		c.fail(w, r, errNoReplies)
		return
	}
	v, err := c.loadReplies(r, r.PostFormValue("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pf := r.PostFormValue
	v.Form = replyForm{Match: pf("match"), Mode: pf("mode"), Pattern: pf("pattern"), MsgType: pf("msg_type"), EventKey: pf("event_key"), Content: pf("content")}
	rule := reply.Rule{Account: v.Account, Match: v.Form.Match, Reply: reply.Content{Type: reply.ReplyText, Content: v.Form.Content}}
	switch rule.Match {
	case reply.MatchKeyword:
		rule.Mode, rule.Pattern = v.Form.Mode, v.Form.Pattern
	case reply.MatchMsgType:
		rule.MsgType = v.Form.MsgType
	case reply.MatchClick:
		rule.EventKey = v.Form.EventKey
	}
	added, err := c.opts.Replies.Add(r.Context(), rule)
	if err != nil {
		c.failForm(w, r, "replies", "replies.title", v, err)
		return
	}
	c.audit(r, "reply.add", strconv.FormatInt(added.ID, 10), added.Match+" "+added.Pattern)
	http.Redirect(w, r, "/admin/replies?done=saved&account="+url.QueryEscape(v.Account), http.StatusSeeOther)
}

func (c *Console) changeReply(w http.ResponseWriter, r *http.Request, action string, change func(id int64) error) {
	if c.opts.Replies == nil {
		c.fail(w, r, errNoReplies)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, errRuleNotFound)
		return
	}
	if err := change(id); err != nil {
		if errors.Is(err, reply.ErrNotFound) {
			err = errRuleNotFound
		}
		c.fail(w, r, err)
		return
	}
	c.audit(r, action, strconv.FormatInt(id, 10), "")
	done := "saved"
	if action == "reply.delete" {
		done = "deleted"
	}
	http.Redirect(w, r, "/admin/replies?done="+done+"&account="+url.QueryEscape(r.PostFormValue("account")), http.StatusSeeOther)
}

func (c *Console) enableReply(w http.ResponseWriter, r *http.Request) {
	c.changeReply(w, r, "reply.enable", func(id int64) error { return c.opts.Replies.SetEnabled(r.Context(), id, true) })
}

func (c *Console) disableReply(w http.ResponseWriter, r *http.Request) {
	c.changeReply(w, r, "reply.disable", func(id int64) error { return c.opts.Replies.SetEnabled(r.Context(), id, false) })
}

func (c *Console) deleteReply(w http.ResponseWriter, r *http.Request) {
	c.changeReply(w, r, "reply.delete", func(id int64) error { return c.opts.Replies.Delete(r.Context(), id) })
}

// replyTexts are the auto-replies pages' texts.
var replyTexts = texts{
	"replies.title": {"自动回复", "Auto-replies"},
	"replies.intro": {"粉丝发消息或关注时，按从上到下的顺序找第一条符合的规则回复（关键词规则优先，其次消息类型，最后是默认回复）。",
		"When a follower writes or follows, the first matching rule from the top answers (keyword rules first, then message types, then the default reply)."},
	"replies.account":         {"公众号", "Account"},
	"replies.order":           {"顺序", "Order"},
	"replies.match":           {"规则类型", "Kind"},
	"replies.match.keyword":   {"关键词", "Keyword"},
	"replies.match.subscribe": {"关注时", "On follow"},
	"replies.match.click":     {"点击菜单", "Menu click"},
	"replies.match.msg_type":  {"消息类型", "Message type"},
	"replies.match.default":   {"默认回复", "Default reply"},
	"replies.when":            {"条件", "When"},
	"replies.mode":            {"匹配方式", "Mode"},
	"replies.mode.exact":      {"完全一致", "exact"},
	"replies.mode.contains":   {"包含", "contains"},
	"replies.mode.regex":      {"正则", "regex"},
	"replies.pattern":         {"关键词或正则", "Keyword or regex"},
	"replies.msg_type":        {"消息类型（text、image…）", "Message type (text, image, …)"},
	"replies.event_key":       {"菜单 key", "Menu key"},
	"replies.reply":           {"回复", "Reply"},
	"replies.content":         {"回复的文字", "Reply text"},
	"replies.state":           {"状态", "State"},
	"replies.source":          {"来源", "Source"},
	"replies.enable":          {"启用", "Enable"},
	"replies.disable":         {"停用", "Disable"},
	"replies.delete":          {"删除", "Delete"},
	"replies.none":            {"没有规则：粉丝的消息不会被自动回复。", "No rule: followers' messages get no automatic answer."},
	"replies.add":             {"添加文字回复规则", "Add a text reply rule"},
	"replies.add_submit":      {"添加", "Add"},
	"replies.test":            {"试一试", "Try it"},
	"replies.test_hint":       {"输入粉丝可能发的文字，看哪条规则会回复。", "Type what a follower might write and see which rule answers."},
	"replies.test_submit":     {"测试", "Test"},
	"replies.test_rule":       {"第 %d 条规则回复（%s）：", "Rule #%d answers (%s):"},
	"replies.test_none":       {"没有规则回复：微信里粉丝看不到任何回复。", "No rule answers: the follower sees no reply in WeChat."},
	"replies.config_note":     {"来源为 config 的规则来自 wxgate.yaml，每次启动时按配置重建。", "Rules from config come from wxgate.yaml and are rebuilt from it at every start."},
	"replies.no_oa":           {"没有配置公众号。", "No official account is configured."},
}
