package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wxgate/wxgate/internal/menu"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// menuClient is the API client of the official account a menu request
// names.
func (h *handler) menuClient(name string) (*wechat.Client, error) {
	if err := h.tagAccount(name); err != nil {
		return nil, err
	}
	if h.opts.Clients == nil {
		return nil, problem.Newf(problem.Unavailable, "not_configured", "", "WeChat API calls are not available on this server — 此服务未启用微信接口调用")
	}
	c, ok := h.opts.Clients.Client(name)
	if !ok {
		return nil, problem.NotFoundf("account_not_found", "account", "account %q has no app_secret, so wxgate cannot call WeChat for it — 公众号 %q 未配置 app_secret", name, name)
	}
	return c, nil
}

// getMenu is GET /api/v1/menus?account= (scope read): WeChat's current
// default menu ({"button": []} when there is none).
func (h *handler) getMenu(w http.ResponseWriter, r *http.Request) {
	account := r.URL.Query().Get("account")
	c, err := h.menuClient(account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	m, err := menu.Current(r.Context(), c)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, menuAnswer(account, m))
}

// menuAnswer is a menu as the API writes it: "conditional" is [] when
// there are none.
func menuAnswer(account string, m menu.Menu) map[string]any {
	conditional := m.Conditional
	if conditional == nil {
		conditional = []menu.ConditionalMenu{}
	}
	return map[string]any{"account": account, "button": m.Buttons, "conditional": conditional}
}

// matchMenu is GET /api/v1/menus/match?account=&openid= (scope read): the
// buttons that follower sees, conditional menus considered.
func (h *handler) matchMenu(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	openid := q.Get("openid")
	if openid == "" {
		h.writeError(w, r, problem.Invalidf("openid_required", "openid", "openid is required — 请提供粉丝 openid"))
		return
	}
	c, err := h.menuClient(q.Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	buttons, err := menu.Match(r.Context(), c, openid)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": q.Get("account"), "openid": openid, "button": buttons})
}

// putMenu is PUT /api/v1/menus {"account","button":[…],"conditional":[…]}
// (scope admin): the menus are checked against WeChat's rules, then
// uploaded; a refused conditional menu leaves the previous menus.
func (h *handler) putMenu(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Account     string                 `json:"account"`
		Buttons     []menu.Button          `json:"button"`
		Conditional []menu.ConditionalMenu `json:"conditional"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := h.menuClient(in.Account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	m := menu.Menu{Buttons: in.Buttons, Conditional: in.Conditional}
	if err := menu.Apply(r.Context(), c, m); err != nil {
		var invalid *menu.ErrInvalid
		if errors.As(err, &invalid) {
			// Every breach in one answer, the first one's field.
			msgs := make([]string, len(invalid.Problems))
			for i, p := range invalid.Problems {
				msgs[i] = p.Message
			}
			err = problem.Invalidf("invalid_menu", invalid.Problems[0].Field, "%s", strings.Join(msgs, "; "))
		}
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, menuAnswer(in.Account, m))
}

// deleteMenu is DELETE /api/v1/menus?account= (scope admin).
func (h *handler) deleteMenu(w http.ResponseWriter, r *http.Request) {
	c, err := h.menuClient(r.URL.Query().Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := menu.Delete(r.Context(), c); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
