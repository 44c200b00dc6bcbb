package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechat"
)

// The send composer: pick an account, a channel and a template (or
// alias), who gets it, fill the fields the template asks for while the
// card previews as the follower will see it, send once however often the
// button is pressed, and watch each recipient until delivered or failed.

// sendRoutes registers the send pages.
func (c *Console) sendRoutes() {
	c.page("GET /admin/send", c.sendPage)
	c.page("POST /admin/send", c.sendSubmit)
	c.page("POST /admin/send/preview", c.sendPreview)
	c.page("GET /admin/send/{id}", c.sendProgress)
	c.page("GET /admin/send/{id}/status", c.sendProgressFragment)
}

var errNoPush = problem.New(problem.Unavailable, "push_not_configured", "",
	"this server does not send messages — 此服务未启用消息发送")

// sendChannels are the channels the composer offers, in order.
var sendChannels = []string{push.ChannelTemplate, push.ChannelSubscribe, push.ChannelMPSubscribe, push.ChannelCustom}

// maxFollowerChoices is how many followers the composer offers to tick.
const maxFollowerChoices = 20

// sendForm is the composer: the choices it offers and what was typed.
type sendForm struct {
	Account  string
	Channel  string
	Template string
	// Idem is the idempotency key of this form, made when it was first
	// shown, so a double submit sends once.
	Idem string

	OpenIDs     string // one per line (or comma separated)
	UnionIDs    string
	ExternalIDs string
	Picked      map[string]bool // ticked followers
	TagID       string          // a user tag's followers
	All         bool            // every subscribed follower
	URL         string
	Text        string

	Channels  []string
	Templates []push.Template // of the account and channel
	Aliases   []aliasChoice
	Followers []follower.Follower
	Tags      []wechat.Tag // the account's user tags (official accounts)
	// Chosen is the picked template (or the alias's), with its fields.
	Chosen *push.Template
	Alias  *push.Alias
	Fields []sendField
	// Note is why no field is shown (no templates yet …); a text key.
	Note string
}

type aliasChoice struct {
	Alias push.Alias
	Title string
}

// sendField is one generated input of the chosen template.
type sendField struct {
	push.InputField
	Name  string // data.<field>
	Value string
	Rule  string // WeChat's value rule in the page's language
}

// IsCustom tells the template whether the channel has no template.
func (f sendForm) IsCustom() bool { return f.Channel == push.ChannelCustom }

func (c *Console) sendPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	f := &sendForm{Account: q.Get("account"), Channel: q.Get("channel"), Template: q.Get("template"), Idem: newIdempotencyKey()}
	for _, id := range q["openid"] {
		f.OpenIDs = strings.TrimSpace(f.OpenIDs + "\n" + id)
	}
	errs := c.fillSendForm(r, f, url.Values{})
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusNotFound
	}
	c.render(w, r, status, "send", "send.title", f, errs)
}

// fillSendForm completes the composer's choices for its account, channel
// and template; it returns the reasons a choice is wrong (an unknown
// template), by field.
func (c *Console) fillSendForm(r *http.Request, f *sendForm, in url.Values) map[string]string {
	ctx := r.Context()
	l := lang(r)
	acct, ok := c.accountNamed(f.Account)
	if !ok && len(c.opts.Accounts) > 0 {
		acct = c.opts.Accounts[0]
		f.Account = acct.Name
	}
	for _, ch := range sendChannels {
		if channelFits(ch, acct) {
			f.Channels = append(f.Channels, ch)
		}
	}
	if !contains(f.Channels, f.Channel) {
		f.Channel = ""
	}
	if f.Channel == "" && len(f.Channels) > 0 {
		f.Channel = f.Channels[0]
	}
	if c.opts.Followers != nil && acct.Name != "" {
		subscribed := true
		list, _, err := c.opts.Followers.Search(ctx, follower.FollowerFilter{Account: acct.Name, Subscribed: &subscribed, Limit: maxFollowerChoices})
		if err != nil {
			c.log.Warn("console: followers for the composer", "err", err)
		}
		f.Followers = list
	}
	if c.opts.Tags != nil && acct.Kind == config.KindOfficialAccount {
		tags, err := c.opts.Tags.List(ctx, acct.Name)
		if err != nil {
			c.log.Warn("console: tags for the composer", "err", err)
		}
		f.Tags = tags
	}
	if f.Picked == nil {
		f.Picked = map[string]bool{}
	}
	if f.IsCustom() || acct.Name == "" {
		f.Template = ""
		return nil
	}
	wantKind := push.KindSubscribe
	if f.Channel == push.ChannelTemplate {
		wantKind = push.KindTemplate
	}
	templates, err := c.opts.Push.Templates(ctx, acct.Name)
	if err != nil {
		c.log.Warn("console: templates for the composer", "err", err)
	}
	titles := map[string]string{}
	for _, t := range templates {
		if t.Kind == wantKind && t.RemovedAt == nil {
			f.Templates = append(f.Templates, t)
			titles[t.TemplateID] = t.Title
		}
	}
	aliases, err := c.opts.Push.Aliases(ctx, acct.Name)
	if err != nil {
		c.log.Warn("console: aliases for the composer", "err", err)
	}
	for _, a := range aliases {
		if title, ok := titles[a.TemplateID]; ok {
			f.Aliases = append(f.Aliases, aliasChoice{Alias: a, Title: title})
		}
	}
	if len(f.Templates) == 0 {
		f.Note = "send.no_templates"
		f.Template = ""
		return nil
	}
	if f.Template == "" {
		// The first alias (else template) is picked, so that the form is
		// ready to fill at once.
		if len(f.Aliases) > 0 {
			f.Template = f.Aliases[0].Alias.Alias
		} else {
			f.Template = f.Templates[0].TemplateID
		}
	}
	tpl, al, fields, err := c.opts.Push.InputFields(ctx, acct.Name, f.Template)
	if err != nil {
		if p, ok := problem.As(err); ok {
			return map[string]string{"template": p.In(l)}
		}
		c.log.Error("console: fields of a template", "err", err)
		return map[string]string{"": c.text(l, "send.internal")}
	}
	f.Chosen, f.Alias = &tpl, al
	for _, in2 := range fields {
		en, zh := push.Rule(in2.Keyword.Key)
		rule := zh
		if l == "en" {
			rule = en
		}
		name := "data." + in2.Field
		f.Fields = append(f.Fields, sendField{InputField: in2, Name: name, Value: in.Get(name), Rule: rule})
	}
	return nil
}

// channelFits says whether a channel can be offered on an account.
func channelFits(ch string, a config.Account) bool {
	mp := a.Kind == config.KindMiniProgram
	switch ch {
	case push.ChannelTemplate, push.ChannelSubscribe:
		return !mp
	case push.ChannelMPSubscribe:
		return mp
	}
	return true
}

func (c *Console) accountNamed(name string) (config.Account, bool) {
	for _, a := range c.opts.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return config.Account{}, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// newIdempotencyKey is a fresh key for one composer form.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "console-" + hex.EncodeToString(b)
}

// readSendForm reads a posted composer.
func readSendForm(r *http.Request) (*sendForm, url.Values) {
	_ = r.ParseForm()
	in := r.PostForm
	f := &sendForm{Account: in.Get("account"), Channel: in.Get("channel"), Template: strings.TrimSpace(in.Get("template")),
		Idem: in.Get("idem"), OpenIDs: in.Get("to_openids"), UnionIDs: in.Get("to_unionids"),
		ExternalIDs: in.Get("to_external_ids"), URL: strings.TrimSpace(in.Get("url")), Text: in.Get("text"),
		TagID: strings.TrimSpace(in.Get("to_tag")), All: in.Get("to_all") == "1", Picked: map[string]bool{}}
	for _, id := range in["pick"] {
		f.Picked[id] = true
	}
	return f, in
}

// splitIDs reads a list typed one per line or separated by commas or spaces.
func splitIDs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' || r == '，' || r == ';'
	})
}

// request is the push request of a posted composer. Empty fields are
// left out, so that an alias's default applies and a missing value is
// reported as missing.
func (f *sendForm) request(in url.Values) push.Request {
	req := push.Request{Account: f.Account, Channel: f.Channel}
	openids := splitIDs(f.OpenIDs)
	for id := range f.Picked {
		if !contains(openids, id) {
			openids = append(openids, id)
		}
	}
	req.To = push.Recipients{OpenIDs: sortedCopy(openids), UnionIDs: splitIDs(f.UnionIDs), ExternalIDs: splitIDs(f.ExternalIDs), All: f.All}
	if id, err := strconv.ParseInt(f.TagID, 10, 64); err == nil {
		req.To.Tag = &id
	}
	if f.IsCustom() {
		req.Text = f.Text
		return req
	}
	req.Template = f.Template
	req.URL = f.URL
	if f.Channel == push.ChannelSubscribe || f.Channel == push.ChannelMPSubscribe {
		req.URL, req.Page = "", f.URL
	}
	req.Data = map[string]json.RawMessage{}
	for name, vs := range in {
		field, ok := strings.CutPrefix(name, "data.")
		if !ok || len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
			continue
		}
		b, _ := json.Marshal(vs[0])
		req.Data[field] = b
	}
	return req
}

func sortedCopy(list []string) []string {
	out := append([]string(nil), list...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// sendSubmit is POST /admin/send: the message is sent once per form (its
// idempotency key, scoped to the admin user) and the browser goes to its
// progress. Bad input shows the form again with every wrong field marked.
func (c *Console) sendSubmit(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	f, in := readSendForm(r)
	l := lang(r)
	if errs := c.fillSendForm(r, f, in); len(errs) > 0 {
		c.render(w, r, http.StatusNotFound, "send", "send.title", f, errs)
		return
	}
	if f.Idem == "" {
		f.Idem = newIdempotencyKey()
	}
	req := f.request(in)
	sess := sessionFrom(r.Context())
	res, err := c.opts.Push.Send(r.Context(), req, push.SendOptions{IdempotencyKey: f.Idem, APIKeyID: push.ConsoleScope(sess.User.ID)})
	if err != nil {
		p, ok := problem.As(err)
		if !ok || p.Kind == problem.Internal || p.Kind == problem.Unavailable {
			c.fail(w, r, err)
			return
		}
		errs := formErrors(err, l)
		if p.Code == "idempotency_key_reused" {
			// The form was sent already and then changed: a new form is a
			// new message.
			errs = map[string]string{"": c.text(l, "send.already_sent")}
			f.Idem = newIdempotencyKey()
		}
		c.markDraftProblems(r.Context(), f, req, errs, l)
		c.render(w, r, p.Status(), "send", "send.title", f, errs)
		return
	}
	detail := fmt.Sprintf("account=%s channel=%s template=%s recipients=%d", req.Account, req.Channel, req.Template, len(res.Accepted.Recipients))
	if res.Replayed {
		detail += " (repeated submit, nothing more sent)"
	}
	c.audit(r, "message.send", res.Accepted.ID, detail)
	http.Redirect(w, r, "/admin/send/"+url.PathEscape(res.Accepted.ID), http.StatusSeeOther)
}

// markDraftProblems adds every field a send would refuse to errs, so that
// the form comes back with all of them marked, not only the first.
func (c *Console) markDraftProblems(ctx context.Context, f *sendForm, req push.Request, errs map[string]string, l string) {
	if f.IsCustom() || f.Chosen == nil {
		return
	}
	_, problems, err := c.opts.Push.Draft(ctx, push.PreviewRequest{Account: req.Account, Channel: req.Channel, Template: req.Template, Data: req.Data})
	if err != nil {
		return
	}
	for _, fp := range problems {
		if _, ok := errs[fp.Field]; !ok {
			errs[fp.Field] = fp.Err.In(l)
		}
	}
}

// previewView is the card fragment.
type previewView struct {
	Custom  bool
	Text    string
	Card    push.Preview
	URL     string
	HasCard bool
	// Problems are the reasons by keyword (to mark card lines) and the
	// form's own error when there is no card.
	Problems map[string]string
	Error    string
	OK       bool
}

// sendPreview is POST /admin/send/preview (the live form): the card as
// the follower will see it, with each value WeChat would refuse marked.
// It renders with push's own renderer, the one of POST
// /api/v1/templates/preview.
func (c *Console) sendPreview(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	f, in := readSendForm(r)
	l := lang(r)
	v := previewView{Custom: f.Channel == push.ChannelCustom, Text: f.Text, URL: f.URL, Problems: map[string]string{}}
	if v.Custom {
		v.OK = strings.TrimSpace(f.Text) != ""
		c.fragment(w, r, "send", "send-preview", v, true)
		return
	}
	req := f.request(in)
	card, problems, err := c.opts.Push.Draft(r.Context(), push.PreviewRequest{Account: req.Account, Channel: req.Channel, Template: req.Template, Data: req.Data})
	if err != nil {
		p, ok := problem.As(err)
		if !ok {
			c.fail(w, r, err)
			return
		}
		v.Error = p.In(l)
		c.fragment(w, r, "send", "send-preview", v, true)
		return
	}
	v.Card, v.HasCard, v.OK = card, true, len(problems) == 0
	for _, fp := range problems {
		v.Problems[fp.Keyword] = fp.Err.In(l)
	}
	c.fragment(w, r, "send", "send-preview", v, true)
}

// progressView is a sent message as it goes.
type progressView struct {
	Msg       push.Message
	Simulator string
}

func (c *Console) loadProgress(r *http.Request) (progressView, error) {
	if c.opts.Push == nil {
		return progressView{}, errNoPush
	}
	m, err := c.opts.Push.GetMessage(r.Context(), r.PathValue("id"), push.RecipientPage{Limit: 200})
	if err != nil {
		if errors.Is(err, push.ErrMessageNotFound) {
			return progressView{}, errPageNotFound
		}
		return progressView{}, err
	}
	return progressView{Msg: m, Simulator: c.opts.SimulatorURL}, nil
}

// sendProgress is GET /admin/send/{id}: each recipient's state, live
// until every one is final.
func (c *Console) sendProgress(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadProgress(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "send_progress", "send.progress_title", v, nil)
}

// sendProgressFragment is the live region of the progress page.
func (c *Console) sendProgressFragment(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadProgress(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "send_progress", "send-progress", v, v.Msg.Done)
}

// sendTexts are the send pages' texts.
var sendTexts = texts{
	"send.title": {"发送消息", "Send a message"},
	"send.intro": {"选择公众号和模板，填写内容，右侧实时预览粉丝在微信里看到的卡片。",
		"Pick an account and a template, fill in the fields, and watch the card as the follower will see it in WeChat."},
	"send.step_what":       {"1. 发什么", "1. What to send"},
	"send.step_who":        {"2. 发给谁", "2. Who gets it"},
	"send.step_fill":       {"3. 填写内容", "3. Fill in"},
	"send.channel":         {"消息类型", "Channel"},
	"send.ch.template":     {"模板消息", "Template message"},
	"send.ch.subscribe":    {"订阅通知（公众号）", "Subscription notice (official account)"},
	"send.ch.mp_subscribe": {"订阅消息（小程序）", "Subscription message (mini program)"},
	"send.ch.custom":       {"客服消息（48 小时内互动过的粉丝）", "Customer-service message (followers active in the last 48 h)"},
	"send.template":        {"模板或别名", "Template or alias"},
	"send.aliases":         {"别名（推荐）", "Aliases (recommended)"},
	"send.templates":       {"模板", "Templates"},
	"send.choose":          {"选择", "Choose"},
	"send.no_templates": {"此账号还没有这一类模板。请先在“模板”页从微信同步。",
		"This account has no template of this kind yet. Sync them from WeChat on the Templates page first."},
	"send.to_templates":  {"去同步模板", "Go to templates"},
	"send.followers":     {"最近关注的粉丝", "Recent followers"},
	"send.no_followers":  {"此账号暂无已关注的粉丝。", "This account has no subscribed follower yet."},
	"send.openids":       {"OpenID（每行一个）", "OpenIDs (one a line)"},
	"send.unionids":      {"UnionID（每行一个）", "UnionIDs (one a line)"},
	"send.external_ids":  {"业务系统用户 ID（已绑定的，每行一个）", "External ids (bound users of your system, one a line)"},
	"send.more_ids":      {"按 UnionID 或业务用户 ID 发送", "Send by unionid or external id"},
	"send.tag":           {"按标签发送（该标签下所有关注中的粉丝）", "To a tag (every subscribed follower carrying it)"},
	"send.tag_none":      {"不按标签", "No tag"},
	"send.all":           {"发送给全部关注中的粉丝", "To every subscribed follower"},
	"send.to_hint":       {"勾选粉丝或填写 ID，至少一个接收者。", "Tick followers or type ids: at least one recipient."},
	"send.field_default": {"留空则用别名默认值：%s", "Leave empty for the alias's default: %s"},
	"send.keyword":       {"关键词", "keyword"},
	"send.url":           {"点击卡片打开的链接", "Link opened by tapping the card"},
	"send.page":          {"点击卡片打开的页面", "Page opened by tapping the card"},
	"send.url_hint":      {"留空则使用别名设置的跳转。", "Leave empty to use the alias's jump."},
	"send.text":          {"消息内容", "Message text"},
	"send.submit":        {"发送", "Send"},
	"send.submit_hint":   {"同一个表单重复提交只会发送一次。", "Submitting this form twice sends once."},
	"send.preview":       {"预览", "Preview"},
	"send.preview_hint": {"粉丝在微信中看到的样子；输入时实时检查微信的格式规则。",
		"What the follower sees in WeChat; WeChat's value rules are checked as you type."},
	"send.preview_js": {"填写后点击“发送”前，可在此看到预览（需要 JavaScript）。",
		"The preview appears here as you type (needs JavaScript)."},
	"send.card_ok":      {"格式检查通过，可以发送。", "Every value follows WeChat's rules: ready to send."},
	"send.card_bad":     {"标红的内容不符合微信规则，发送会被拒绝。", "The values marked red break WeChat's rules; the send would be refused."},
	"send.card_foot":    {"详情", "Details"},
	"send.truncated":    {"已按别名设置截断：%s", "Shortened by the alias: %s"},
	"send.empty_value":  {"（未填写）", "(empty)"},
	"send.custom_empty": {"请填写消息内容。", "Type the message."},
	"send.already_sent": {"这个表单已经发送过，内容又被修改了。已为新消息准备好新的表单，请再次点击发送。",
		"This form was sent already and has been changed since. It is now a new message: press Send again to send it."},
	"send.internal":        {"服务器内部错误，已记录日志。", "Something went wrong on the server; it has been logged."},
	"send.progress_title":  {"发送进度", "Delivery progress"},
	"send.progress_intro":  {"每位接收者的状态会实时更新，直到送达或失败。", "Each recipient's state updates live until delivered or failed."},
	"send.message":         {"消息", "Message"},
	"send.created":         {"提交时间", "Sent at"},
	"send.total":           {"接收者", "Recipients"},
	"send.all_done":        {"全部处理完毕。", "Every recipient is done."},
	"send.recipient":       {"接收者", "Recipient"},
	"send.state":           {"状态", "State"},
	"send.reason":          {"原因", "Reason"},
	"send.attempts":        {"尝试次数", "Attempts"},
	"send.done_at":         {"完成时间", "Done at"},
	"send.again":           {"再发一条", "Send another"},
	"send.open_phone":      {"打开模拟器看手机", "Open the simulator's phone"},
	"send.message_details": {"消息记录", "Message log"},
	"send.status_blocked":  {"被拒收", "blocked"},
	"send.more_recipients": {"只显示前 200 位接收者。", "Only the first 200 recipients are shown."},
}
