package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/problem"
)

// bindingRoutes registers the bindings pages.
func (c *Console) bindingRoutes() {
	c.page("GET /admin/bindings", c.bindingsPage)
	c.page("POST /admin/bindings/qrcode", c.createBindQRCode)
	c.page("GET /admin/bindings/qrcode/{ticket}", c.bindQRCodePage)
	c.page("GET /admin/bindings/qrcode/{ticket}/status", c.bindQRCodeFragment)
	c.page("GET /admin/bindings/qrcode/{ticket}/png", c.bindQRCodePNG)
	c.page("POST /admin/bindings/{id}/delete", c.deleteBinding)
}

var errNoBindings = problem.New(problem.Unavailable, "bindings_not_configured", "",
	"this server does not bind followers — 此服务未启用绑定")

// bindingsView is the bindings page: the QR code form and the list.
type bindingsView struct {
	// Form values of the QR code form.
	Account, ExternalID string
	// OAs are the official accounts (QR codes are theirs only).
	OAs []config.Account
	// Query filters the list by external id; History adds ended bindings.
	Query    string
	History  bool
	Bindings []follower.Binding
	Next     string
}

func (c *Console) officialAccounts() []config.Account {
	var out []config.Account
	for _, a := range c.opts.Accounts {
		if a.Kind != config.KindMiniProgram {
			out = append(out, a)
		}
	}
	return out
}

func (c *Console) loadBindings(r *http.Request, v *bindingsView) error {
	q := r.URL.Query()
	v.OAs = c.officialAccounts()
	v.Query, v.History = strings.TrimSpace(q.Get("q")), q.Get("history") == "1"
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	list, err := c.opts.Followers.ListBindings(r.Context(), follower.BindingFilter{ExternalID: v.Query, History: v.History,
		BeforeID: before, Limit: 50})
	if err != nil {
		return err
	}
	v.Bindings = list
	if len(list) == 50 {
		nq := url.Values{"before": {strconv.FormatInt(list[len(list)-1].ID, 10)}}
		if v.Query != "" {
			nq.Set("q", v.Query)
		}
		if v.History {
			nq.Set("history", "1")
		}
		v.Next = "/admin/bindings?" + nq.Encode()
	}
	return nil
}

func (c *Console) bindingsPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Followers == nil || c.opts.Binder == nil {
		c.fail(w, r, errNoBindings)
		return
	}
	var v bindingsView
	if err := c.loadBindings(r, &v); err != nil {
		c.fail(w, r, err)
		return
	}
	if len(v.OAs) > 0 {
		v.Account = v.OAs[0].Name
	}
	c.render(w, r, http.StatusOK, "bindings", "bindings.title", v, nil)
}

// createBindQRCode is POST /admin/bindings/qrcode (account, external_id).
func (c *Console) createBindQRCode(w http.ResponseWriter, r *http.Request) {
	if c.opts.Followers == nil || c.opts.Binder == nil {
		c.fail(w, r, errNoBindings)
		return
	}
	v := bindingsView{Account: r.PostFormValue("account"), ExternalID: strings.TrimSpace(r.PostFormValue("external_id"))}
	qr, err := c.opts.Binder.CreateQRCode(r.Context(), follower.QRCodeRequest{Account: v.Account, ExternalID: v.ExternalID})
	if err != nil {
		if lerr := c.loadBindings(r, &v); lerr != nil {
			c.fail(w, r, lerr)
			return
		}
		c.failForm(w, r, "bindings", "bindings.title", v, err)
		return
	}
	c.audit(r, "binding.qrcode", v.ExternalID, v.Account)
	http.Redirect(w, r, "/admin/bindings/qrcode/"+url.PathEscape(qr.Ticket), http.StatusSeeOther)
}

// qrView is a binding QR code as it waits for its scan.
type qrView struct {
	Status follower.QRCodeStatus
	// TicketPath is the ticket escaped for a path segment (tickets may
	// hold "/" and "+").
	TicketPath string
	Pending    bool
	Simulator  string
}

func (c *Console) loadQRCode(r *http.Request) (qrView, error) {
	if c.opts.Binder == nil {
		return qrView{}, errNoBindings
	}
	st, err := c.opts.Binder.QRCodeStatus(r.Context(), r.PathValue("ticket"))
	if err != nil {
		if errors.Is(err, follower.ErrQRCodeNotFound) {
			return qrView{}, errPageNotFound
		}
		return qrView{}, err
	}
	return qrView{Status: st, TicketPath: url.PathEscape(st.Ticket), Pending: st.Status == follower.QRPending, Simulator: c.opts.SimulatorURL}, nil
}

// bindQRCodePage shows the code to scan; it updates by itself when the
// phone has scanned it.
func (c *Console) bindQRCodePage(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadQRCode(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "binding_qrcode", "bindings.qr_title", v, nil)
}

func (c *Console) bindQRCodeFragment(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadQRCode(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "binding_qrcode", "qr-state", v, !v.Pending)
}

// bindQRCodePNG draws the code; the page's <img> loads it with the
// session, so the poll token is never needed in the console.
func (c *Console) bindQRCodePNG(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadQRCode(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	png, err := qrcode.Encode(v.Status.URL, qrcode.Medium, 280)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(png)
}

// deleteBinding is POST /admin/bindings/{id}/delete: the binding ends
// (kept as history) and binding.deleted is published.
func (c *Console) deleteBinding(w http.ResponseWriter, r *http.Request) {
	if c.opts.Binder == nil {
		c.fail(w, r, errNoBindings)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	b, err := c.opts.Binder.DeleteBinding(r.Context(), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "binding.delete", b.ExternalID, b.Account+" "+b.OpenID)
	http.Redirect(w, r, "/admin/bindings?done=deleted", http.StatusSeeOther)
}

// bindingTexts are the bindings pages' texts.
var bindingTexts = texts{
	"bindings.title": {"绑定", "Bindings"},
	"bindings.intro": {"把业务系统里的人（销售、客户，用外部 ID 表示）和粉丝绑定：生成带参数二维码，对方用微信扫码即完成绑定，之后可以按外部 ID 给他发消息。",
		"Bind people of your own system (a salesperson, a customer: an external id) to followers: make a QR code, they scan it with WeChat, and from then on messages can be sent to the external id."},
	"bindings.new":           {"生成绑定二维码", "Make a binding QR code"},
	"bindings.account":       {"公众号", "Official account"},
	"bindings.external_id":   {"外部 ID", "External id"},
	"bindings.external_hint": {"例如 CRM 里的客户编号 S-1024", "e.g. the customer number in your CRM, S-1024"},
	"bindings.create":        {"生成二维码", "Make the QR code"},
	"bindings.list":          {"绑定列表", "Bindings"},
	"bindings.search":        {"按外部 ID 查找", "Find by external id"},
	"bindings.history":       {"包括已结束的", "Include ended ones"},
	"bindings.openid":        {"粉丝 openid", "Follower openid"},
	"bindings.source":        {"来源", "Source"},
	"bindings.created":       {"绑定时间", "Bound at"},
	"bindings.state":         {"状态", "State"},
	"bindings.active":        {"有效", "active"},
	"bindings.ended":         {"已结束：%s", "ended: %s"},
	"bindings.delete":        {"解除绑定", "Unbind"},
	"bindings.none":          {"没有绑定。", "No binding."},
	"bindings.no_oa":         {"没有配置公众号：二维码只能由公众号生成。", "No official account is configured: only official accounts make QR codes."},
	"bindings.qr_title":      {"绑定二维码", "Binding QR code"},
	"bindings.qr_scan":       {"请 %s 用微信扫描这个二维码。扫码后本页会自动更新。", "Ask %s to scan this code with WeChat. This page updates by itself after the scan."},
	"bindings.qr_expires":    {"有效期至 %s", "Valid until %s"},
	"bindings.qr_ticket":     {"ticket（在模拟器手机页的“扫码”里粘贴）", "ticket (paste it into Scan on the simulator's phone page)"},
	"bindings.qr_pending":    {"等待扫码…", "Waiting for the scan…"},
	"bindings.qr_bound":      {"已绑定：外部 ID %s ↔ 粉丝 %s", "Bound: external id %s ↔ follower %s"},
	"bindings.qr_expired":    {"二维码已过期，未绑定。", "The code expired without a binding."},
	"bindings.qr_another":    {"再生成一个", "Make another"},
	"bindings.open_phone":    {"打开模拟器手机扫码", "Scan it on the simulator's phone"},
	"bindings.qr_alt":        {"绑定二维码", "binding QR code"},
}
