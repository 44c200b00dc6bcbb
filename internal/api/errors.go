package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/webhook"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Error is an API error: a stable code for programs, an HTTP status, and
// a message for people (English and Chinese).
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errNotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: msg}
}

// toError maps any error a handler or the auth middleware returns to an
// *Error. It is the only place where errors become statuses.
func (h *handler) toError(err error) *Error {
	var (
		apiErr     *Error
		authErr    *auth.Error
		unknown    *token.UnknownAccountError
		paused     *token.BreakerOpenError
		wechatErr  *wechat.APIError
		forceLimit *token.ForceRefreshError
		refresh    *token.RefreshError
		input      *follower.InputError
		hookInput  *webhook.InputError
		noAccount  *follower.UnknownAccountError
		syncing    *follower.SyncRunningError
	)
	// Domains whose refusals carry their own code and kind map them in
	// their handlers' file.
	for _, domain := range []func(error) (*Error, bool){pushError, scheduleError} {
		if e, ok := domain(err); ok {
			return e
		}
	}
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &input):
		return &Error{Status: http.StatusBadRequest, Code: input.Code, Message: input.Message}
	case errors.As(err, &hookInput):
		return &Error{Status: http.StatusBadRequest, Code: hookInput.Code, Message: hookInput.Message}
	case errors.As(err, &noAccount):
		return &Error{Status: http.StatusNotFound, Code: "account_not_found", Message: noAccount.Error()}
	case errors.As(err, &syncing):
		return &Error{Status: http.StatusConflict, Code: "sync_running", Message: syncing.Error()}
	case errors.Is(err, follower.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "follower_not_found", Message: "no such follower of this account — 该账号没有这个粉丝"}
	case errors.Is(err, follower.ErrBindingNotFound):
		return &Error{Status: http.StatusNotFound, Code: "binding_not_found", Message: "no such binding — 绑定不存在"}
	case errors.Is(err, follower.ErrQRCodeNotFound):
		return &Error{Status: http.StatusNotFound, Code: "qrcode_not_found", Message: "wxgate made no binding QR code with this ticket — 没有该 ticket 的绑定二维码"}
	case errors.Is(err, webhook.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "webhook_not_found", Message: "no such webhook — Webhook 不存在"}
	case errors.As(err, &authErr):
		return &Error{Status: authErr.Status, Code: authErr.Code, Message: authErr.Message}
	case errors.As(err, &unknown):
		return &Error{Status: http.StatusNotFound, Code: "account_not_found", Message: unknown.Error()}
	case errors.As(err, &paused):
		return &Error{Status: http.StatusServiceUnavailable, Code: "token_refresh_paused", Message: paused.Error(),
			RetryAfter: max(time.Until(paused.Until), time.Second)}
	case errors.As(err, &forceLimit):
		return &Error{Status: http.StatusServiceUnavailable, Code: "token_unavailable", Message: forceLimit.Error(), RetryAfter: 30 * time.Second}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: "timeout", Message: "the request timed out — 请求超时", RetryAfter: time.Second}
	case wechat.ClassOf(err) == wechat.ClassRetryable:
		return &Error{Status: http.StatusServiceUnavailable, Code: "wechat_unavailable",
			Message: "WeChat is busy or unreachable, retry later — 微信接口暂时不可用，请稍后重试: " + err.Error(), RetryAfter: 5 * time.Second}
	case errors.As(err, &refresh):
		return &Error{Status: http.StatusBadGateway, Code: "token_refresh_failed", Message: refresh.Error()}
	case errors.As(err, &wechatErr):
		return &Error{Status: http.StatusBadGateway, Code: "wechat_error",
			Message: fmt.Sprintf("WeChat answered errcode %d — 微信返回错误码 %d: %s", wechatErr.Code, wechatErr.Code, err.Error())}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error, see the gateway log — 内部错误，请查看网关日志"}
}

// writeError answers err as {"error":{"code":"…","message":"…"}}.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := h.toError(err)
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	h.log.LogAttrs(r.Context(), level, "api: request failed", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("error", err.Error()))
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxgate"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// writeJSON writes v without HTML escaping.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
