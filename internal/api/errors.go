package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

func errNotFound(msg string) *problem.Error {
	return problem.New(problem.NotFound, "not_found", "", msg)
}

func errBadRequest(code, msg string) *problem.Error {
	return problem.New(problem.Invalid, code, "", msg)
}

// toError maps any error a handler or the auth middleware returns to a
// *problem.Error, whose kind gives the status. It is the only place where
// errors become statuses: a domain's refusal is already one; what is left
// are the failures of a call, by how a client should take them.
func (h *handler) toError(err error) *problem.Error {
	var wechatErr *wechat.APIError
	if e, ok := problem.As(err); ok {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &problem.Error{Kind: problem.Unavailable, Code: "timeout", Message: "the request timed out — 请求超时", RetryAfter: time.Second}
	case wechat.ClassOf(err) == wechat.ClassRetryable:
		return &problem.Error{Kind: problem.Unavailable, Code: "wechat_unavailable",
			Message: "WeChat is busy or unreachable, retry later — 微信接口暂时不可用，请稍后重试: " + err.Error(), RetryAfter: 5 * time.Second}
	case errors.As(err, &wechatErr):
		return problem.Newf(problem.Upstream, "wechat_error", "", "WeChat answered errcode %d — 微信返回错误码 %d: %s", wechatErr.Code, wechatErr.Code, err.Error())
	}
	return problem.New(problem.Internal, "internal", "", "internal error, see the gateway log — 内部错误，请查看网关日志")
}

// writeError answers err as {"error":{"code":"…","message":"…"}}.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := h.toError(err)
	status := e.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	h.log.LogAttrs(r.Context(), level, "api: request failed", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", status), slog.String("code", e.Code), slog.String("error", err.Error()))
	if e.Kind == problem.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxgate"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// writeJSON writes v without HTML escaping.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
