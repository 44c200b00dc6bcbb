package api

import (
	"net/http"

	"github.com/wxgate/wxgate/internal/push"
)

// Templates and aliases (the template registry) and the preview.

// maxTemplateBody bounds the small JSON bodies of this resource.
const maxTemplateBody = 256 << 10

// listTemplates is GET /api/v1/templates?account= (scope read): the
// account's templates with their keywords, and its aliases.
func (h *handler) listTemplates(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	account := r.URL.Query().Get("account")
	templates, err := h.opts.Push.Templates(r.Context(), account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	aliases, err := h.opts.Push.Aliases(r.Context(), account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "templates": templates, "aliases": aliases})
}

// putTemplate is POST /api/v1/templates (scope admin): registers a
// template by hand, {account, template_id, kind, title, content}.
func (h *handler) putTemplate(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var in struct {
		Account    string `json:"account"`
		TemplateID string `json:"template_id"`
		Kind       string `json:"kind"`
		Title      string `json:"title"`
		Content    string `json:"content"`
		Example    string `json:"example"`
	}
	if err := decodeSendBody(r, &in, maxTemplateBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	t, err := h.opts.Push.PutTemplate(r.Context(), push.Template{Account: in.Account, TemplateID: in.TemplateID, Kind: in.Kind,
		Title: in.Title, Content: in.Content, Example: in.Example})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// syncTemplates is POST /api/v1/templates/sync (scope admin): {account}.
func (h *handler) syncTemplates(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var in struct {
		Account string `json:"account"`
	}
	if err := decodeSendBody(r, &in, maxTemplateBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.opts.Push.SyncTemplates(r.Context(), in.Account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// previewTemplate is POST /api/v1/templates/preview (scope send):
// {account, template, data, channel?, truncate?} → the card as the
// follower will see it, or the error a send would get.
func (h *handler) previewTemplate(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var req push.PreviewRequest
	if err := decodeSendBody(r, &req, maxTemplateBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	p, err := h.opts.Push.Preview(r.Context(), req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// listAliases is GET /api/v1/templates/aliases?account= (scope read).
func (h *handler) listAliases(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	list, err := h.opts.Push.Aliases(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"aliases": list})
}

// getAlias is GET /api/v1/templates/aliases/{account}/{alias} (scope read).
func (h *handler) getAlias(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	a, err := h.opts.Push.GetAlias(r.Context(), r.PathValue("account"), r.PathValue("alias"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// putAlias is PUT /api/v1/templates/aliases/{account}/{alias} (scope
// admin): {template_id, fields, defaults, truncate, url, miniprogram,
// page, fallback, description}.
func (h *handler) putAlias(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var in struct {
		TemplateID  string            `json:"template_id"`
		Fields      map[string]string `json:"fields"`
		Defaults    map[string]string `json:"defaults"`
		Truncate    bool              `json:"truncate"`
		URL         string            `json:"url"`
		MiniProgram *push.MiniProgram `json:"miniprogram"`
		Page        string            `json:"page"`
		Fallback    string            `json:"fallback"`
		Description string            `json:"description"`
	}
	if err := decodeSendBody(r, &in, maxTemplateBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	a, err := h.opts.Push.PutAlias(r.Context(), push.Alias{Account: r.PathValue("account"), Alias: r.PathValue("alias"),
		TemplateID: in.TemplateID, Fields: in.Fields, Defaults: in.Defaults, Truncate: in.Truncate, URL: in.URL,
		MiniProgram: in.MiniProgram, Page: in.Page, Fallback: in.Fallback, Description: in.Description})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// deleteAlias is DELETE /api/v1/templates/aliases/{account}/{alias} (scope admin).
func (h *handler) deleteAlias(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	if err := h.opts.Push.DeleteAlias(r.Context(), r.PathValue("account"), r.PathValue("alias")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
