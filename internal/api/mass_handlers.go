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

// withMass answers 503 when the server has no mass sender, and writes the
// error f returns.
func (h *handler) withMass(f func(w http.ResponseWriter, r *http.Request, m MassSender) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Mass == nil {
			h.writeError(w, r, errNoMass)
			return
		}
		if err := f(w, r, h.opts.Mass); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// massTarget reads the {id} and ?account= of one send's routes.
func (h *handler) massTarget(r *http.Request) (string, int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return "", 0, problem.Invalidf("invalid_id", "id", "the mass send id must be a whole number — 群发 ID 必须是整数")
	}
	account := r.URL.Query().Get("account")
	return account, id, h.tagAccount(account)
}

var errFileOverAPI = problem.Invalidf("file_not_allowed", "message.file",
	"over the API name a media_id (POST /api/v1/media uploads the file) — 通过 API 群发请填写 media_id（先用 POST /api/v1/media 上传）")

// sendMass is POST /api/v1/mass {"account","to":{"tag":ID}|{"all":true},
// "message":{…},"client_msg_id"} (scope send): 202 when WeChat took the
// job, 200 when the client_msg_id was sent before.
func (h *handler) sendMass(w http.ResponseWriter, r *http.Request, m MassSender) error {
	var in struct {
		Account     string        `json:"account"`
		To          mass.Audience `json:"to"`
		Message     mass.Message  `json:"message"`
		ClientMsgID string        `json:"client_msg_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Message.File != "" {
		return errFileOverAPI
	}
	sent, err := m.Send(r.Context(), mass.SendRequest{Account: in.Account, To: in.To, Message: in.Message, ClientMsgID: in.ClientMsgID})
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if sent.Reused {
		status = http.StatusOK
	}
	writeJSON(w, status, sent)
	return nil
}

// previewMass is POST /api/v1/mass/preview {"account","openid","message"}
// (scope send).
func (h *handler) previewMass(w http.ResponseWriter, r *http.Request, m MassSender) error {
	var in struct {
		Account string       `json:"account"`
		OpenID  string       `json:"openid"`
		Message mass.Message `json:"message"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Message.File != "" {
		return errFileOverAPI
	}
	msgID, err := m.Preview(r.Context(), in.Account, in.OpenID, in.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": in.Account, "openid": in.OpenID, "msg_id": msgID})
	return nil
}

// massQuota is GET /api/v1/mass/quota?account= (scope read).
func (h *handler) massQuota(w http.ResponseWriter, r *http.Request, m MassSender) error {
	q, err := m.Quota(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, q)
	return nil
}

// listMass is GET /api/v1/mass?account= (scope read).
func (h *handler) listMass(w http.ResponseWriter, r *http.Request, m MassSender) error {
	account := r.URL.Query().Get("account")
	list, err := m.List(r.Context(), account)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "sends": list})
	return nil
}

// getMass is GET /api/v1/mass/{id}?account= (scope read).
func (h *handler) getMass(w http.ResponseWriter, r *http.Request, m MassSender) error {
	account, id, err := h.massTarget(r)
	if err != nil {
		return err
	}
	sent, err := m.Get(r.Context(), account, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sent)
	return nil
}

// deleteMass is DELETE /api/v1/mass/{id}?account=&article_idx= (scope admin).
func (h *handler) deleteMass(w http.ResponseWriter, r *http.Request, m MassSender) error {
	account, id, err := h.massTarget(r)
	if err != nil {
		return err
	}
	idx := 0
	if v := r.URL.Query().Get("article_idx"); v != "" {
		if idx, err = strconv.Atoi(v); err != nil || idx < 0 {
			return problem.Invalidf("invalid_article_idx", "article_idx", "article_idx must be 0 (all) or the article's number — article_idx 只能是 0（全部）或文章序号")
		}
	}
	sent, err := m.Delete(r.Context(), account, id, idx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sent)
	return nil
}
