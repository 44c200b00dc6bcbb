package api

import (
	"net/http"
	"time"

	"github.com/wxgate/wxgate/internal/config"
)

// account is an entry of GET /api/v1/accounts.
type account struct {
	Name  string `json:"name"`
	AppID string `json:"app_id"`
	Kind  string `json:"kind"`
	// Mode is the message encryption mode: plaintext, compatible or safe.
	Mode        string `json:"mode"`
	TokenMode   string `json:"token_mode,omitempty"`
	CallbackURL string `json:"callback_url"`
}

// listAccounts is GET /api/v1/accounts (scope read).
func (h *handler) listAccounts(w http.ResponseWriter, r *http.Request) {
	base := h.baseURL(r)
	out := make([]account, 0, len(h.opts.Accounts))
	for _, a := range h.opts.Accounts {
		item := account{Name: a.Name, AppID: a.AppID, Kind: string(a.Kind), Mode: string(a.MessageMode),
			CallbackURL: base + a.CallbackPath()}
		if h.opts.Tokens != nil {
			if st, ok := h.opts.Tokens.Status(a.Name); ok {
				item.TokenMode = string(st.Mode)
			}
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
}

// tokenAnswer is the body of GET /api/v1/accounts/{name}/token.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresAt   string `json:"expires_at"`
	ExpiresIn   int64  `json:"expires_in"`
}

// accountToken is GET /api/v1/accounts/{name}/token (scope token): the
// 中控 endpoint other services use instead of fetching tokens themselves.
func (h *handler) accountToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := h.findAccount(name); !ok {
		h.writeError(w, r, config.UnknownAccount(name))
		return
	}
	tok, err := h.opts.Tokens.Token(r.Context(), name)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenAnswer{
		AccessToken: tok.Value,
		ExpiresAt:   tok.ExpiresAt.UTC().Format(time.RFC3339),
		ExpiresIn:   int64(tok.ExpiresIn(h.now()) / time.Second),
	})
}

func (h *handler) findAccount(name string) (config.Account, bool) {
	for _, a := range h.opts.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return config.Account{}, false
}

// baseURL is public_url, or the scheme and host the request came to.
func (h *handler) baseURL(r *http.Request) string { return config.BaseURL(h.opts.PublicURL, r) }
