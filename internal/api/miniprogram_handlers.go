package api

import (
	"net/http"

	"github.com/wxgate/wxgate/internal/follower"
)

// miniProgramLogin is POST /api/v1/miniprogram/login (scope send):
// {account, code, external_id?}. It exchanges the wx.login code with
// sns/jscode2session and answers the openid, the unionid if any, the
// person's official-account openids (or why there are none) and the
// binding when external_id is given. The session_key never leaves wxgate.
func (h *handler) miniProgramLogin(w http.ResponseWriter, r *http.Request) {
	if h.opts.Binder == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	var in struct {
		Account    string `json:"account"`
		Code       string `json:"code"`
		ExternalID string `json:"external_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Account == "" {
		h.writeError(w, r, errBadRequest("missing_account", "account is required — 缺少 account"))
		return
	}
	res, err := h.opts.Binder.MiniProgramLogin(r.Context(), follower.LoginRequest{Account: in.Account, Code: in.Code, ExternalID: in.ExternalID})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, res)
}
