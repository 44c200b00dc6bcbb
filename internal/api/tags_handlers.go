package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Tagger manages user tags (*follower.Tags).
type Tagger interface {
	List(ctx context.Context, account string) ([]wechat.Tag, error)
	Create(ctx context.Context, account, name string) (wechat.Tag, error)
	Rename(ctx context.Context, account string, id int64, name string) (wechat.Tag, error)
	Delete(ctx context.Context, account string, id int64) error
	Change(ctx context.Context, account string, id int64, add, remove []string) (follower.TagChange, error)
}

var errNoTags = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "user tags are not available on this server — 此服务未启用用户标签功能"}

// tagAccount checks the account named by a request: an official account.
func (h *handler) tagAccount(name string) error {
	if name == "" {
		return problem.Invalidf("account_required", "account", "name the account — 请指定公众号 account")
	}
	a, ok := h.findAccount(name)
	if !ok {
		return config.UnknownAccount(name)
	}
	if a.Kind == config.KindMiniProgram {
		return problem.Invalidf("not_an_official_account", "account", "%s is a mini program; user tags belong to official accounts — 小程序没有用户标签", name)
	}
	return nil
}

func tagID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 0 {
		return 0, problem.Invalidf("invalid_tag_id", "id", "the tag id must be a whole number — 标签 ID 必须是整数")
	}
	return id, nil
}

// listTags is GET /api/v1/tags?account= (scope read).
func (h *handler) listTags(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tags == nil {
		h.writeError(w, r, errNoTags)
		return
	}
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		h.writeError(w, r, err)
		return
	}
	tags, err := h.opts.Tags.List(r.Context(), account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "tags": tags})
}

type tagBody struct {
	Account string `json:"account"`
	Name    string `json:"name"`
}

// createTag is POST /api/v1/tags {"account","name"} (scope admin).
func (h *handler) createTag(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tags == nil {
		h.writeError(w, r, errNoTags)
		return
	}
	var in tagBody
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.tagAccount(in.Account); err != nil {
		h.writeError(w, r, err)
		return
	}
	tag, err := h.opts.Tags.Create(r.Context(), in.Account, in.Name)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tag)
}

// renameTag is PUT /api/v1/tags/{id} {"account","name"} (scope admin).
func (h *handler) renameTag(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tags == nil {
		h.writeError(w, r, errNoTags)
		return
	}
	id, err := tagID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var in tagBody
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.tagAccount(in.Account); err != nil {
		h.writeError(w, r, err)
		return
	}
	tag, err := h.opts.Tags.Rename(r.Context(), in.Account, id, in.Name)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tag)
}

// deleteTag is DELETE /api/v1/tags/{id}?account= (scope admin).
func (h *handler) deleteTag(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tags == nil {
		h.writeError(w, r, errNoTags)
		return
	}
	id, err := tagID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.opts.Tags.Delete(r.Context(), account, id); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// changeTagMembers is POST /api/v1/tags/{id}/members
// {"account","add":[openid…],"remove":[openid…]} (scope admin).
func (h *handler) changeTagMembers(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tags == nil {
		h.writeError(w, r, errNoTags)
		return
	}
	id, err := tagID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var in struct {
		Account string   `json:"account"`
		Add     []string `json:"add"`
		Remove  []string `json:"remove"`
	}
	if err := decodeBodyLimit(r, &in, 1<<20); err != nil {
		h.writeError(w, r, err)
		return
	}
	if err := h.tagAccount(in.Account); err != nil {
		h.writeError(w, r, err)
		return
	}
	res, err := h.opts.Tags.Change(r.Context(), in.Account, id, in.Add, in.Remove)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
