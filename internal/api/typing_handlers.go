package api

import (
	"errors"
	"net/http"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// followerTyping is POST /api/v1/followers/{openid}/typing
// {"account","typing":true|false} (scope send): the "typing…" indicator
// (正在输入) a customer-service agent shows while writing a reply. WeChat
// allows it within the follower's 48-hour window only.
func (h *handler) followerTyping(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Account string `json:"account"`
		Typing  *bool  `json:"typing"`
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
	typing := in.Typing == nil || *in.Typing
	openid := r.PathValue("openid")
	if err := c.CustomTyping(r.Context(), openid, typing); err != nil {
		var apiErr *wechat.APIError
		if errors.As(err, &apiErr) && apiErr.Code == wechat.CodeOutOfWindow {
			err = errors.Join(problem.Conflictf("outside_window", "openid",
				"the follower has not written or pressed anything in the last 48 hours, so WeChat takes no customer-service message or typing (45015) — 超出 48 小时客服消息窗口（45015）"), err)
		}
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": in.Account, "openid": openid, "typing": typing})
}
