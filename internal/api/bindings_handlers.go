package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/problem"
)

// Binder is what the binding and mini-program routes need
// (*follower.Binder).
type Binder interface {
	CreateQRCode(ctx context.Context, r follower.QRCodeRequest) (follower.BindQRCode, error)
	QRCodeStatus(ctx context.Context, ticket string) (follower.QRCodeStatus, error)
	CheckPollToken(ctx context.Context, ticket, pollToken string) bool
	DeleteBinding(ctx context.Context, id int64) (follower.Binding, error)
	MiniProgramLogin(ctx context.Context, r follower.LoginRequest) (follower.LoginResult, error)
}

var errNoBindings = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "bindings are not available on this server — 此服务未启用绑定功能"}

// qrPNGSize is the side of the PNG of a binding QR code, in pixels.
const qrPNGSize = 320

// decodeBody reads a JSON body (at most 64 KiB) into v, refusing unknown
// fields.
func decodeBody(r *http.Request, v any) error { return decodeBodyLimit(r, v, 64<<10) }

// decodeBodyLimit is decodeBody with a size limit of its own (lists of
// openids).
func decodeBodyLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("invalid_json", "the body is not the expected JSON: "+err.Error()+" — 请求体不是有效的 JSON")
	}
	return nil
}

// qrCodeAnswer is the answer of POST /api/v1/bindings/qrcode.
type qrCodeAnswer struct {
	follower.BindQRCode
	// PNG is the QR code image, base64 (also served at PNGURL).
	PNG    string `json:"png_base64"`
	PNGURL string `json:"png_url"`
	// PollURL answers the code's state without an API key.
	PollURL string `json:"poll_url"`
}

// createBindQRCode is POST /api/v1/bindings/qrcode (scope send):
// {account, external_id, expires_in (seconds)}.
func (h *handler) createBindQRCode(w http.ResponseWriter, r *http.Request) {
	if h.opts.Binder == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	var in struct {
		Account    string `json:"account"`
		ExternalID string `json:"external_id"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Account == "" {
		h.writeError(w, r, errBadRequest("missing_account", "account is required — 缺少 account"))
		return
	}
	if in.ExpiresIn < 0 || in.ExpiresIn > 1<<31 {
		h.writeError(w, r, errBadRequest("invalid_expires_in", "expires_in must be a number of seconds — expires_in 须为秒数"))
		return
	}
	qr, err := h.opts.Binder.CreateQRCode(r.Context(), follower.QRCodeRequest{Account: in.Account, ExternalID: in.ExternalID,
		ExpiresIn: time.Duration(in.ExpiresIn) * time.Second})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	png, err := qrcode.Encode(qr.URL, qrcode.Medium, qrPNGSize)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	base := h.baseURL(r) + "/api/v1/bindings/qrcode/" + url.PathEscape(qr.Ticket)
	poll := "?poll_token=" + url.QueryEscape(qr.PollToken)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, qrCodeAnswer{BindQRCode: qr, PNG: base64.StdEncoding.EncodeToString(png),
		PNGURL: base + "/png" + poll, PollURL: base + poll})
}

// withPollToken lets a request through with the code's poll_token (a page
// without an API key) or else with an API key of scope read.
func (h *handler) withPollToken(withKey http.Handler, f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("poll_token")
		if token == "" || r.Header.Get("Authorization") != "" {
			withKey.ServeHTTP(w, r)
			return
		}
		if h.opts.Binder == nil || !h.opts.Binder.CheckPollToken(r.Context(), r.PathValue("ticket"), token) {
			h.writeError(w, r, &problem.Error{Kind: problem.Unauthorized, Code: "unauthorized",
				Message: "invalid poll_token for this QR code — poll_token 无效"})
			return
		}
		// A page on another origin may poll.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		f(w, r)
	})
}

// bindQRCodeStatus is GET /api/v1/bindings/qrcode/{ticket} (scope read,
// or the code's poll_token): pending, completed (with the binding) or
// expired, and why.
func (h *handler) bindQRCodeStatus(w http.ResponseWriter, r *http.Request) {
	if h.opts.Binder == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	st, err := h.opts.Binder.QRCodeStatus(r.Context(), r.PathValue("ticket"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

// bindQRCodePNG is GET /api/v1/bindings/qrcode/{ticket}/png (scope read,
// or the code's poll_token): the code as an image, rendered by wxgate
// (no call to WeChat).
func (h *handler) bindQRCodePNG(w http.ResponseWriter, r *http.Request) {
	if h.opts.Binder == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	st, err := h.opts.Binder.QRCodeStatus(r.Context(), r.PathValue("ticket"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	size := qrPNGSize
	if v := r.URL.Query().Get("size"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 64 && n <= 1024 {
			size = n
		}
	}
	png, err := qrcode.Encode(st.URL, qrcode.Medium, size)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, max-age=60")
	_, _ = w.Write(png)
}

// listBindings is GET /api/v1/bindings (scope read): by external_id,
// openid or unionid (of the person, on any app), account; history=true
// adds replaced and deleted bindings; limit, before (an id) page.
func (h *handler) listBindings(w http.ResponseWriter, r *http.Request) {
	if h.opts.Followers == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	q := r.URL.Query()
	f := follower.BindingFilter{ExternalID: q.Get("external_id"), Account: q.Get("account"), OpenID: q.Get("openid"), UnionID: q.Get("unionid")}
	history, err := boolParam(q.Get("history"), "history")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f.History = history != nil && *history
	if f.Limit, err = intParam(q.Get("limit"), "limit"); err != nil {
		h.writeError(w, r, err)
		return
	}
	before, err := intParam(q.Get("before"), "before")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	f.BeforeID = int64(before)
	list, err := h.opts.Followers.ListBindings(r.Context(), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bindings": list})
}

func bindingID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound("no binding " + r.PathValue("id") + " — 绑定不存在")
	}
	return id, nil
}

// getBinding is GET /api/v1/bindings/{id} (scope read).
func (h *handler) getBinding(w http.ResponseWriter, r *http.Request) {
	if h.opts.Followers == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	id, err := bindingID(r)
	if err == nil {
		var b follower.Binding
		if b, err = h.opts.Followers.GetBinding(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	h.writeError(w, r, err)
}

// deleteBinding is DELETE /api/v1/bindings/{id} (scope send): the binding
// ends (kept in the history) and binding.deleted is published.
func (h *handler) deleteBinding(w http.ResponseWriter, r *http.Request) {
	if h.opts.Binder == nil {
		h.writeError(w, r, errNoBindings)
		return
	}
	id, err := bindingID(r)
	if err == nil {
		var b follower.Binding
		if b, err = h.opts.Binder.DeleteBinding(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	if errors.Is(err, follower.ErrBindingNotFound) {
		err = errNotFound("no binding " + r.PathValue("id") + " — 绑定不存在")
	}
	h.writeError(w, r, err)
}
