package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/webhook"
)

// keyRoutes registers the API keys and webhooks pages.
func (c *Console) keyRoutes() {
	c.page("GET /admin/keys", c.keysPage)
	c.page("POST /admin/keys", c.createKey)
	c.page("POST /admin/keys/{id}/revoke", c.revokeKey)
	c.page("POST /admin/webhooks", c.createWebhook)
	c.page("GET /admin/webhooks/{id}", c.webhookPage)
	c.page("POST /admin/webhooks/{id}/delete", c.deleteWebhook)
	c.page("POST /admin/webhooks/{id}/deliveries/{delivery}/redeliver", c.redeliver)
}

var errKeyNotFound = problem.NotFoundf("key_not_found", "id", "no such API key — API 密钥不存在")

// keysView is the page: keys, webhooks, the two forms, and a secret just
// made (shown this once).
type keysView struct {
	Keys     []auth.APIKey
	Webhooks []webhook.Endpoint
	Scopes   []auth.Scope
	// KeyName and KeyScopes are the key form as typed.
	KeyName   string
	KeyScopes map[auth.Scope]bool
	// NewKey is the plaintext of the key just created.
	NewKey string
	// HookURL, HookEvents, HookAccount and HookDescription are the webhook
	// form as typed; NewSecret is the secret of the webhook just created.
	HookURL, HookEvents, HookAccount, HookDescription string
	NewSecret                                         string
}

func (c *Console) loadKeys(r *http.Request, v *keysView) error {
	v.Scopes = auth.AllScopes
	if v.KeyScopes == nil {
		v.KeyScopes = map[auth.Scope]bool{auth.ScopeSend: true}
	}
	var err error
	if v.Keys, err = c.opts.Keys.List(r.Context()); err != nil {
		return err
	}
	if c.opts.Webhooks != nil {
		if v.Webhooks, err = c.opts.Webhooks.List(r.Context()); err != nil {
			return err
		}
	}
	return nil
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Keys == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	var v keysView
	if err := c.loadKeys(r, &v); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "keys", "keys.title", v, nil)
}

// createKey is POST /admin/keys (name, scope…): the page again with the
// new key shown once.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request) {
	if c.opts.Keys == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, problem.Invalidf("invalid_form", "", "the form could not be read — 表单无法解析"))
		return
	}
	v := keysView{KeyName: r.PostForm.Get("name"), KeyScopes: map[auth.Scope]bool{}}
	var scopes []auth.Scope
	for _, s := range r.PostForm["scope"] {
		v.KeyScopes[auth.Scope(s)] = true
		scopes = append(scopes, auth.Scope(s))
	}
	plain, key, err := c.opts.Keys.Create(r.Context(), v.KeyName, scopes)
	if lerr := c.loadKeys(r, &v); lerr != nil {
		c.fail(w, r, lerr)
		return
	}
	if err != nil {
		c.failForm(w, r, "keys", "keys.title", v, err)
		return
	}
	c.audit(r, "apikey.create", key.Prefix, key.Name)
	v.NewKey, v.KeyName = plain, ""
	c.render(w, r, http.StatusCreated, "keys", "keys.title", v, nil)
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request) {
	if c.opts.Keys == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		err = c.opts.Keys.Revoke(r.Context(), id)
	}
	if err != nil {
		if errors.Is(err, auth.ErrNotFound) || errors.Is(err, strconv.ErrSyntax) {
			err = errKeyNotFound
		}
		c.fail(w, r, err)
		return
	}
	c.audit(r, "apikey.revoke", strconv.FormatInt(id, 10), "")
	http.Redirect(w, r, "/admin/keys?done=saved", http.StatusSeeOther)
}

// createWebhook is POST /admin/webhooks: the page again with the signing
// secret shown once.
func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request) {
	if c.opts.Webhooks == nil || c.opts.Keys == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	v := keysView{HookURL: r.PostFormValue("url"), HookEvents: r.PostFormValue("events"), HookAccount: r.PostFormValue("account"),
		HookDescription: r.PostFormValue("description")}
	var events []string
	for _, e := range strings.FieldsFunc(v.HookEvents, func(r rune) bool { return r == ',' || r == ' ' || r == '，' || r == '\n' }) {
		events = append(events, strings.TrimSpace(e))
	}
	ep, err := c.opts.Webhooks.Create(r.Context(), webhook.EndpointInput{URL: v.HookURL, Events: events, Account: v.HookAccount,
		Description: strings.TrimSpace(v.HookDescription)})
	if lerr := c.loadKeys(r, &v); lerr != nil {
		c.fail(w, r, lerr)
		return
	}
	if err != nil {
		c.failForm(w, r, "keys", "keys.title", v, prefixField("hook_", err))
		return
	}
	c.audit(r, "webhook.create", strconv.FormatInt(ep.ID, 10), ep.URL)
	v.NewSecret = ep.Secret
	v.HookURL, v.HookEvents, v.HookAccount, v.HookDescription = "", "", "", ""
	c.render(w, r, http.StatusCreated, "keys", "keys.title", v, nil)
}

// prefixField renames the field of a problem, for a page with two forms
// that both have a "url" or "name".
func prefixField(prefix string, err error) error {
	p, ok := problem.As(err)
	if !ok || p.Field == "" {
		return err
	}
	cp := *p
	cp.Field = prefix + p.Field
	return &cp
}

// webhookView is one endpoint with its latest deliveries.
type webhookView struct {
	Endpoint   webhook.Endpoint
	Deliveries []webhook.Delivery
	CanResend  bool
}

func (c *Console) webhookByID(w http.ResponseWriter, r *http.Request) (webhook.Endpoint, bool) {
	if c.opts.Webhooks == nil {
		c.fail(w, r, errPageNotFound)
		return webhook.Endpoint{}, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, errPageNotFound)
		return webhook.Endpoint{}, false
	}
	ep, err := c.opts.Webhooks.Get(r.Context(), id)
	if err != nil {
		c.fail(w, r, notFoundPage(err))
		return webhook.Endpoint{}, false
	}
	return ep, true
}

func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request) {
	ep, ok := c.webhookByID(w, r)
	if !ok {
		return
	}
	list, err := c.opts.Webhooks.Deliveries(r.Context(), ep.ID, 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhook", "keys.webhook_title", webhookView{Endpoint: ep, Deliveries: list, CanResend: c.opts.WebhookEvents != nil}, nil)
}

func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	ep, ok := c.webhookByID(w, r)
	if !ok {
		return
	}
	if err := c.opts.Webhooks.Delete(r.Context(), ep.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "webhook.delete", strconv.FormatInt(ep.ID, 10), ep.URL)
	http.Redirect(w, r, "/admin/keys?done=deleted", http.StatusSeeOther)
}

// redeliver sends a delivery of the endpoint again.
func (c *Console) redeliver(w http.ResponseWriter, r *http.Request) {
	ep, ok := c.webhookByID(w, r)
	if !ok {
		return
	}
	if c.opts.WebhookEvents == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	d, err := c.opts.Webhooks.Delivery(r.Context(), id)
	if err != nil || d.WebhookID != ep.ID {
		c.fail(w, r, errPageNotFound)
		return
	}
	if _, err := c.opts.WebhookEvents.Redeliver(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "webhook.redeliver", strconv.FormatInt(id, 10), d.EventType)
	http.Redirect(w, r, fmt.Sprintf("/admin/webhooks/%d?done=resent", ep.ID), http.StatusSeeOther)
}

// keyTexts are the API keys and webhooks pages' texts.
var keyTexts = texts{
	"keys.title":          {"API 密钥与 Webhook", "API keys & webhooks"},
	"keys.intro":          {"业务系统用 API 密钥调用 /api/v1（Authorization: Bearer …）；wxgate 把事件（绑定、送达、失败…）推送到 Webhook 地址，带签名。", "Your systems call /api/v1 with an API key (Authorization: Bearer …); wxgate posts events (bindings, deliveries, failures, …) to webhook URLs, signed."},
	"keys.keys":           {"API 密钥", "API keys"},
	"keys.name":           {"名称", "Name"},
	"keys.prefix":         {"前缀", "Prefix"},
	"keys.scopes":         {"权限", "Scopes"},
	"keys.scope.send":     {"send：发消息、生成二维码", "send: send messages, make QR codes"},
	"keys.scope.read":     {"read：读粉丝、消息、绑定", "read: read followers, messages, bindings"},
	"keys.scope.token":    {"token：取 access_token", "token: get the access_token"},
	"keys.scope.proxy":    {"proxy：经代理调用微信接口", "proxy: call WeChat's API through the proxy"},
	"keys.scope.admin":    {"admin：全部权限", "admin: everything"},
	"keys.created":        {"创建时间", "Created"},
	"keys.last_used":      {"最近使用", "Last used"},
	"keys.state":          {"状态", "State"},
	"keys.revoked":        {"已吊销", "revoked"},
	"keys.active":         {"有效", "active"},
	"keys.revoke":         {"吊销", "Revoke"},
	"keys.create":         {"创建 API 密钥", "Create an API key"},
	"keys.new_key":        {"新密钥（只显示这一次，请立即保存）：", "The new key (shown this once; save it now):"},
	"keys.none":           {"还没有 API 密钥。", "No API key yet."},
	"keys.webhooks":       {"Webhook", "Webhooks"},
	"keys.url":            {"地址", "URL"},
	"keys.events":         {"事件", "Events"},
	"keys.events_hint":    {"逗号分隔，如 binding.completed, message.failed；留空为全部", "comma-separated, e.g. binding.completed, message.failed; empty for all"},
	"keys.account":        {"账号（留空为全部）", "Account (empty for all)"},
	"keys.description":    {"说明", "Description"},
	"keys.secret":         {"签名密钥", "Signing secret"},
	"keys.new_secret":     {"签名密钥（只显示这一次，用它验证 X-Wxgate-Signature）：", "The signing secret (shown this once; verify X-Wxgate-Signature with it):"},
	"keys.add_webhook":    {"添加 Webhook", "Add a webhook"},
	"keys.no_webhooks":    {"还没有 Webhook。", "No webhook yet."},
	"keys.deliveries":     {"投递记录", "Deliveries"},
	"keys.webhook_title":  {"Webhook 投递", "Webhook deliveries"},
	"keys.event":          {"事件", "Event"},
	"keys.attempts":       {"尝试次数", "Attempts"},
	"keys.last":           {"最近结果", "Last result"},
	"keys.redeliver":      {"重新投递", "Redeliver"},
	"keys.no_deliveries":  {"还没有投递。", "No delivery yet."},
	"keys.delete_webhook": {"删除这个 Webhook", "Delete this webhook"},
	"keys.back":           {"返回 API 密钥与 Webhook", "Back to API keys & webhooks"},
}
