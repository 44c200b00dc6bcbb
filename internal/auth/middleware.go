package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wxgate/wxgate/internal/problem"
)

// The failures RequireScope reports.
var (
	ErrMissingKey = problem.New(problem.Unauthorized, "unauthorized", "Authorization",
		"missing API key: send the header Authorization: Bearer wxg_… (create one with `wxgate apikey create`) — 缺少 API 密钥：请在请求头中携带 Authorization: Bearer wxg_…")
	ErrRejectedKey = problem.New(problem.Unauthorized, "unauthorized", "Authorization",
		"invalid or revoked API key — API 密钥无效或已吊销")
)

// ForbiddenError says which scope a key lacks.
func ForbiddenError(scope Scope) *problem.Error {
	return problem.Newf(problem.Forbidden, "forbidden", "", "this API key lacks the %q scope — 此 API 密钥没有 %q 权限", scope, scope)
}

type ctxKey struct{}

// KeyFrom returns the API key RequireScope accepted for this request.
func KeyFrom(ctx context.Context) (APIKey, bool) {
	k, ok := ctx.Value(ctxKey{}).(APIKey)
	return k, ok
}

// WithKey returns ctx carrying k, for handlers tested without the middleware.
func WithKey(ctx context.Context, k APIKey) context.Context {
	return context.WithValue(ctx, ctxKey{}, k)
}

// ErrorWriter writes an error answer; the API package passes its own so
// that all errors share one mapping to HTTP.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// RequireScope lets a request through only with a valid key
// (Authorization: Bearer <key>) that has scope. Failures are *problem.Error values
// (401 or 403) handed to onError; nil writes them as
// {"error":{"code":"…","message":"…"}}.
func (s *Store) RequireScope(scope Scope, onError ErrorWriter) func(http.Handler) http.Handler {
	if onError == nil {
		onError = WriteError
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			plain, ok := bearer(r)
			if !ok {
				onError(w, r, ErrMissingKey)
				return
			}
			k, err := s.Verify(r.Context(), plain)
			switch {
			case errors.Is(err, ErrInvalidKey):
				onError(w, r, ErrRejectedKey)
				return
			case err != nil:
				onError(w, r, err)
				return
			case !k.Has(scope):
				onError(w, r, ForbiddenError(scope))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithKey(r.Context(), k)))
		})
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// WriteError writes a *problem.Error as JSON (500 for any other error).
func WriteError(w http.ResponseWriter, _ *http.Request, err error) {
	e, ok := problem.As(err)
	if !ok {
		e = problem.New(problem.Internal, "internal", "", "internal error — 内部错误")
	}
	if e.Kind == problem.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wxgate"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status())
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}
