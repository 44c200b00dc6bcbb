package api

import (
	"net/http"

	"github.com/wxgate/wxgate/internal/push"
)

// reportGrants is POST /api/v1/subscriptions/grants (scope send): the mini
// program reports what wx.requestSubscribeMessage returned,
// {account, openid, results: {"TEMPLATE_ID": "accept" | "reject" | …}};
// each accept allows one subscription message. The answer is the user's
// unused grants.
func (h *handler) reportGrants(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var in push.GrantReport
	if err := decodeSendBody(r, &in, maxTemplateBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	g, err := h.opts.Push.ReportGrants(r.Context(), in)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// listGrants is GET /api/v1/subscriptions/grants?account=&openid= (scope
// read): a user's unused grants per template.
func (h *handler) listGrants(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	g, err := h.opts.Push.Grants(r.Context(), q.Get("account"), q.Get("openid"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}
