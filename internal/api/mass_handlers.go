package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/wxgate/wxgate/internal/mass"
	"github.com/wxgate/wxgate/internal/problem"
)

// MassSender sends mass messages (*mass.Service).
type MassSender interface {
	Send(ctx context.Context, req mass.SendRequest) (mass.Send, error)
	Preview(ctx context.Context, account, openid string, m mass.Message) (int64, error)
	Quota(ctx context.Context, account string) (mass.Quota, error)
	List(ctx context.Context, account string) ([]mass.Send, error)
	Get(ctx context.Context, account string, id int64) (mass.Send, error)
	Delete(ctx context.Context, account string, id int64, articleIdx int) (mass.Send, error)
}

var errNoMass = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "mass sends are not available on this server — 此服务未启用群发功能"}

func massID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, problem.Invalidf("invalid_id", "id", "the mass send id must be a whole number — 群发 ID 必须是整数")
	}
	return id, nil
}

// sendMass is POST /api/v1/mass {"account","to":{"tag":ID}|{"all":true},
// "message":{…},"client_msg_id"} (scope send): 202 when WeChat took the
// job, 200 when the client_msg_id was sent before.
func (h *handler) sendMass(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	var in struct {
		Account     string        `json:"account"`
		To          mass.Audience `json:"to"`
		Message     mass.Message  `json:"message"`
		ClientMsgID string        `json:"client_msg_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Message.File != "" {
		h.writeError(w, r, problem.Invalidf("file_not_allowed", "message.file",
			"over the API name a media_id (POST /api/v1/media uploads the file) — 通过 API 群发请填写 media_id（先用 POST /api/v1/media 上传）"))
		return
	}
	sent, err := h.opts.Mass.Send(r.Context(), mass.SendRequest{Account: in.Account, To: in.To, Message: in.Message, ClientMsgID: in.ClientMsgID})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	status := http.StatusAccepted
	if sent.Reused {
		status = http.StatusOK
	}
	writeJSON(w, status, sent)
}

// previewMass is POST /api/v1/mass/preview {"account","openid","message"}
// (scope send).
func (h *handler) previewMass(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	var in struct {
		Account string       `json:"account"`
		OpenID  string       `json:"openid"`
		Message mass.Message `json:"message"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Message.File != "" {
		h.writeError(w, r, problem.Invalidf("file_not_allowed", "message.file",
			"over the API name a media_id (POST /api/v1/media uploads the file) — 通过 API 预览请填写 media_id"))
		return
	}
	msgID, err := h.opts.Mass.Preview(r.Context(), in.Account, in.OpenID, in.Message)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": in.Account, "openid": in.OpenID, "msg_id": msgID})
}

// massQuota is GET /api/v1/mass/quota?account= (scope read).
func (h *handler) massQuota(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	q, err := h.opts.Mass.Quota(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

// listMass is GET /api/v1/mass?account= (scope read).
func (h *handler) listMass(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	account := r.URL.Query().Get("account")
	list, err := h.opts.Mass.List(r.Context(), account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "sends": list})
}

// getMass is GET /api/v1/mass/{id}?account= (scope read).
func (h *handler) getMass(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	id, err := massID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		h.writeError(w, r, err)
		return
	}
	m, err := h.opts.Mass.Get(r.Context(), account, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// deleteMass is DELETE /api/v1/mass/{id}?account=&article_idx= (scope admin).
func (h *handler) deleteMass(w http.ResponseWriter, r *http.Request) {
	if h.opts.Mass == nil {
		h.writeError(w, r, errNoMass)
		return
	}
	id, err := massID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		h.writeError(w, r, err)
		return
	}
	idx := 0
	if v := r.URL.Query().Get("article_idx"); v != "" {
		if idx, err = strconv.Atoi(v); err != nil || idx < 0 {
			h.writeError(w, r, problem.Invalidf("invalid_article_idx", "article_idx", "article_idx must be 0 (all) or the article's number — article_idx 只能是 0（全部）或文章序号"))
			return
		}
	}
	m, err := h.opts.Mass.Delete(r.Context(), account, id, idx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
