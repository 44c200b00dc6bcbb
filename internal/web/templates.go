package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxgate/wxgate/internal/push"
)

// templateRoutes registers the templates and aliases page.
func (c *Console) templateRoutes() {
	c.page("GET /admin/templates", c.templatesPage)
	c.page("POST /admin/templates/sync", c.syncTemplates)
	c.page("POST /admin/templates/aliases", c.saveAlias)
	c.page("POST /admin/templates/aliases/{alias}/delete", c.deleteAlias)
}

// templatesView is one account's templates and aliases, and the alias
// form.
type templatesView struct {
	Account   string
	Templates []push.Template
	Aliases   []push.Alias
	Form      aliasForm
	// Synced is the last sync's outcome, shown after the button.
	Synced *push.SyncResult
}

type aliasForm struct {
	Alias, TemplateID, Fields, Defaults, URL, Description string
	Truncate                                              bool
	Editing                                               bool
}

func (c *Console) loadTemplates(r *http.Request, account string) (templatesView, error) {
	v := templatesView{Account: account}
	if _, ok := c.accountNamed(account); !ok {
		v.Account = ""
		if len(c.opts.Accounts) > 0 {
			v.Account = c.opts.Accounts[0].Name
		}
	}
	if v.Account == "" {
		return v, nil
	}
	var err error
	if v.Templates, err = c.opts.Push.Templates(r.Context(), v.Account); err != nil {
		return v, err
	}
	if v.Aliases, err = c.opts.Push.Aliases(r.Context(), v.Account); err != nil {
		return v, err
	}
	return v, nil
}

func (c *Console) templatesPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	v, err := c.loadTemplates(r, q.Get("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if name := q.Get("edit"); name != "" {
		for _, a := range v.Aliases {
			if a.Alias == name {
				v.Form = aliasForm{Alias: a.Alias, TemplateID: a.TemplateID, Fields: pairLines(a.Fields), Defaults: pairLines(a.Defaults),
					URL: a.URL, Description: a.Description, Truncate: a.Truncate, Editing: true}
			}
		}
	}
	c.render(w, r, http.StatusOK, "templates", "templates.title", v, nil)
}

// syncTemplates is the "sync from WeChat" button.
func (c *Console) syncTemplates(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	res, err := c.opts.Push.SyncTemplates(r.Context(), r.PostFormValue("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "templates.sync", res.Account, fmt.Sprintf("%d synced, %d added, %d removed", res.Synced, len(res.Added), len(res.Removed)))
	v, err := c.loadTemplates(r, res.Account)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.Synced = &res
	c.render(w, r, http.StatusOK, "templates", "templates.title", v, nil)
}

// saveAlias creates or replaces an alias from the form.
func (c *Console) saveAlias(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	v, err := c.loadTemplates(r, r.PostFormValue("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pf := r.PostFormValue
	v.Form = aliasForm{Alias: strings.TrimSpace(pf("alias")), TemplateID: pf("template_id"), Fields: pf("fields"), Defaults: pf("defaults"),
		URL: strings.TrimSpace(pf("url")), Description: strings.TrimSpace(pf("description")), Truncate: pf("truncate") == "1", Editing: pf("editing") == "1"}
	a := push.Alias{Account: v.Account, Alias: v.Form.Alias, TemplateID: v.Form.TemplateID, URL: v.Form.URL,
		Description: v.Form.Description, Truncate: v.Form.Truncate}
	if a.Fields, err = parsePairs(v.Form.Fields, "fields"); err == nil {
		a.Defaults, err = parsePairs(v.Form.Defaults, "defaults")
	}
	if err == nil {
		_, err = c.opts.Push.PutAlias(r.Context(), a)
	}
	if err != nil {
		c.failForm(w, r, "templates", "templates.title", v, err)
		return
	}
	c.audit(r, "alias.save", v.Account+"/"+a.Alias, a.TemplateID)
	http.Redirect(w, r, "/admin/templates?done=saved&account="+url.QueryEscape(v.Account), http.StatusSeeOther)
}

func (c *Console) deleteAlias(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	account, name := r.PostFormValue("account"), r.PathValue("alias")
	if err := c.opts.Push.DeleteAlias(r.Context(), account, name); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "alias.delete", account+"/"+name, "")
	http.Redirect(w, r, "/admin/templates?done=deleted&account="+url.QueryEscape(account), http.StatusSeeOther)
}

// templateTexts are the templates pages' texts.
var templateTexts = texts{
	"templates.title": {"模板与别名", "Templates & aliases"},
	"templates.intro": {"模板从微信同步（也可以用 API 手动登记）；别名给一类业务消息起个固定名字，并把业务字段对应到模板关键词，测试号和正式号用同一个请求。",
		"Templates are synced from WeChat (or registered through the API); an alias gives a kind of business message a stable name and maps your fields to the template's keywords, so the same request works on the test and the live account."},
	"templates.account":        {"账号", "Account"},
	"templates.sync":           {"从微信同步", "Sync from WeChat"},
	"templates.synced":         {"同步完成：共 %d 个模板，新增 %d 个，移除 %d 个。", "Synced: %d templates, %d added, %d removed."},
	"templates.templates":      {"模板", "Templates"},
	"templates.name":           {"标题", "Title"},
	"templates.id":             {"模板 ID", "Template id"},
	"templates.kind":           {"类型", "Kind"},
	"templates.kind.template":  {"模板消息", "template message"},
	"templates.kind.subscribe": {"订阅消息", "subscription"},
	"templates.keywords":       {"关键词", "Keywords"},
	"templates.source":         {"来源", "Source"},
	"templates.removed":        {"已在微信删除", "removed at WeChat"},
	"templates.none":           {"没有模板：点「从微信同步」。", "No template: press Sync from WeChat."},
	"templates.aliases":        {"别名", "Aliases"},
	"templates.alias":          {"别名", "Alias"},
	"templates.fields":         {"字段对应（每行「业务字段 = 关键词」）", "Field mapping (one \"field = keyword\" per line)"},
	"templates.defaults":       {"默认值（每行「关键词 = 值」）", "Defaults (one \"keyword = value\" per line)"},
	"templates.url":            {"点击跳转的网址", "Link when tapped"},
	"templates.truncate":       {"过长的值自动截断（否则拒绝发送）", "Shorten values that are too long (else refuse the send)"},
	"templates.description":    {"说明", "Description"},
	"templates.save_alias":     {"保存别名", "Save the alias"},
	"templates.new_alias":      {"新建别名", "New alias"},
	"templates.edit_alias":     {"编辑别名 %s", "Edit alias %s"},
	"templates.edit":           {"编辑", "Edit"},
	"templates.no_aliases":     {"还没有别名。", "No alias yet."},
	"done.synced":              {"已同步。", "Synced."},
}
