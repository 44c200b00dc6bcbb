package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// messageRoutes registers the messages pages.
func (c *Console) messageRoutes() {
	c.page("GET /admin/messages", c.messagesPage)
	c.page("GET /admin/messages/{id}", c.messagePage)
	c.page("POST /admin/messages/{id}/resend", c.resendRecipient)
}

// messageStatuses are the recipient states the list filters by.
var messageStatuses = []string{push.StatusQueued, push.StatusSent, push.StatusDelivered, push.StatusBlocked,
	push.StatusFailed, push.StatusSkipped, push.StatusUnconfirmed}

// messagesView is one page of the message list and the filter that made it.
type messagesView struct {
	Account, Channel, Template, Status, Recipient, Since, Until string
	Channels, Statuses                                          []string
	Messages                                                    []push.Message
	// Next is the link to the next page; "" on the last. Paged is set
	// past the first page.
	Next  string
	Paged bool
}

const messagesPerPage = 50

func (c *Console) messagesPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	v := messagesView{Account: q.Get("account"), Channel: q.Get("channel"), Template: strings.TrimSpace(q.Get("template")),
		Status: q.Get("status"), Recipient: strings.TrimSpace(q.Get("recipient")), Since: q.Get("since"), Until: q.Get("until"),
		Channels: sendChannels, Statuses: messageStatuses, Paged: q.Get("before") != ""}
	f := push.ListFilter{Account: v.Account, Channel: v.Channel, Template: v.Template, Status: v.Status,
		Recipient: v.Recipient, Before: q.Get("before"), Limit: messagesPerPage}
	errs := map[string]string{}
	l := lang(r)
	var err error
	if f.Since, err = consoleDate(v.Since, false); err != nil {
		errs["since"] = c.text(l, "messages.bad_date")
	}
	if f.Until, err = consoleDate(v.Until, true); err != nil {
		errs["until"] = c.text(l, "messages.bad_date")
	}
	if len(errs) > 0 {
		c.render(w, r, http.StatusBadRequest, "messages", "messages.title", v, errs)
		return
	}
	list, err := c.opts.Push.ListMessages(r.Context(), f)
	if err != nil {
		if p, ok := problem.As(err); ok && p.Kind == problem.Invalid {
			c.render(w, r, p.Status(), "messages", "messages.title", v, formErrors(err, l))
			return
		}
		c.fail(w, r, err)
		return
	}
	v.Messages = list.Messages
	if list.Next != "" {
		nq := url.Values{"before": {list.Next}}
		for _, k := range []string{"account", "channel", "template", "status", "recipient", "since", "until"} {
			if s := q.Get(k); s != "" {
				nq.Set(k, s)
			}
		}
		v.Next = "/admin/messages?" + nq.Encode()
	}
	c.render(w, r, http.StatusOK, "messages", "messages.title", v, nil)
}

// consoleDate reads a YYYY-MM-DD date of the console's zone; endOfDay
// gives the start of the next day (an exclusive upper bound).
func consoleDate(s string, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseInLocation("2006-01-02", s, consoleZone)
	if err != nil {
		return time.Time{}, err
	}
	if endOfDay {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// messagePage is GET /admin/messages/{id}: the message's recipients, live
// until each is final, with a resend button on the failed ones.
func (c *Console) messagePage(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadProgress(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "send_progress", "messages.detail_title", v, nil)
}

// resendRecipient is POST /admin/messages/{id}/resend (form field seq).
func (c *Console) resendRecipient(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	id := r.PathValue("id")
	seq, err := strconv.Atoi(r.PostFormValue("seq"))
	if err != nil || seq < 1 {
		c.fail(w, r, problem.Invalidf("invalid_seq", "seq", "seq must be a recipient's number — seq 必须是接收人的序号"))
		return
	}
	rec, err := c.opts.Push.Resend(r.Context(), id, seq)
	if err != nil {
		if errors.Is(err, push.ErrMessageNotFound) {
			err = errPageNotFound
		}
		c.fail(w, r, err)
		return
	}
	c.audit(r, "message.resend", id, fmt.Sprintf("seq %d → %s", seq, rec.OpenID))
	http.Redirect(w, r, "/admin/messages/"+url.PathEscape(id)+"?done=resent", http.StatusSeeOther)
}

// messageTexts are the messages pages' texts.
var messageTexts = texts{
	"messages.title":          {"消息记录", "Messages"},
	"messages.intro":          {"每一次发送（后台、API、定时任务），最新的在前。点开一条看每个接收人的状态，失败的可以重发。", "Every send (console, API, schedules), newest first. Open one to see each recipient's state and resend the failed ones."},
	"messages.detail_title":   {"消息详情", "Message"},
	"messages.account":        {"账号", "Account"},
	"messages.channel":        {"消息类型", "Channel"},
	"messages.template":       {"模板或别名", "Template or alias"},
	"messages.status":         {"接收人状态", "Recipient state"},
	"messages.recipient":      {"接收人", "Recipient"},
	"messages.recipient_hint": {"openid、unionid 或外部 ID", "openid, unionid or external id"},
	"messages.since":          {"从（日期）", "From (date)"},
	"messages.until":          {"到（日期）", "To (date)"},
	"messages.bad_date":       {"日期格式应为 2026-12-06", "Dates look like 2026-12-06"},
	"messages.filter":         {"筛选", "Filter"},
	"messages.created":        {"时间", "When"},
	"messages.id":             {"消息 ID", "Message id"},
	"messages.recipients":     {"接收人", "Recipients"},
	"messages.none":           {"没有符合条件的消息。", "No message matches."},
	"messages.any":            {"全部", "Any"},
	"messages.resend":         {"重发", "Resend"},
	"messages.resend_hint":    {"按原内容重新排队发送给这个接收人。", "Queue the same content for this recipient again."},
	"done.resent":             {"已重新排队，状态会自动更新。", "Queued again; the state updates by itself."},
}
