package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/webhook"
)

// Webhooks manages the outgoing event endpoints (*webhook.Store).
type Webhooks interface {
	Create(ctx context.Context, in webhook.EndpointInput) (webhook.Endpoint, error)
	List(ctx context.Context) ([]webhook.Endpoint, error)
	Get(ctx context.Context, id int64) (webhook.Endpoint, error)
	Delete(ctx context.Context, id int64) error
	Deliveries(ctx context.Context, webhookID int64, limit int) ([]webhook.Delivery, error)
	Delivery(ctx context.Context, id int64) (webhook.Delivery, error)
}

// WebhookRedeliverer sends a delivery again; *webhook.Publisher is one.
type WebhookRedeliverer interface {
	Redeliver(ctx context.Context, deliveryID int64) (webhook.Delivery, error)
}

var errNoWebhooks = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "webhooks are not available on this server — 此服务未启用 Webhook"}

func webhookID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, webhook.ErrNotFound
	}
	return id, nil
}

// listWebhooks is GET /api/v1/webhooks (scope admin); secrets are not shown.
func (h *handler) listWebhooks(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	list, err := h.opts.Webhooks.List(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": list})
}

// createWebhook is POST /api/v1/webhooks (scope admin): {url, events,
// account, description, secret}; the answer shows the secret, once.
func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	var in webhook.EndpointInput
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Account != "" {
		if _, ok := h.findAccount(in.Account); !ok {
			h.writeError(w, r, errBadRequest("account_not_found", "no account named "+in.Account+" — 账号不存在"))
			return
		}
	}
	ep, err := h.opts.Webhooks.Create(r.Context(), in)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, ep)
}

// getWebhook is GET /api/v1/webhooks/{id} (scope admin).
func (h *handler) getWebhook(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	id, err := webhookID(r)
	if err == nil {
		var ep webhook.Endpoint
		if ep, err = h.opts.Webhooks.Get(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, ep)
			return
		}
	}
	h.writeError(w, r, err)
}

// deleteWebhook is DELETE /api/v1/webhooks/{id} (scope admin); its
// pending deliveries are cancelled.
func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	id, err := webhookID(r)
	if err == nil {
		if err = h.opts.Webhooks.Delete(r.Context(), id); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	h.writeError(w, r, err)
}

// webhookDeliveries is GET /api/v1/webhooks/{id}/deliveries (scope
// admin): the latest deliveries with their attempts and outcome.
func (h *handler) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	id, err := webhookID(r)
	if err == nil {
		_, err = h.opts.Webhooks.Get(r.Context(), id)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list, err := h.opts.Webhooks.Deliveries(r.Context(), id, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": list})
}

// redeliverWebhook is POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver
// (scope admin): the delivery goes out again with its payload and event id
// unchanged; one still pending answers 409 delivery_pending.
func (h *handler) redeliverWebhook(w http.ResponseWriter, r *http.Request) {
	if h.opts.Webhooks == nil || h.opts.WebhookEvents == nil {
		h.writeError(w, r, errNoWebhooks)
		return
	}
	id, err := webhookID(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	deliveryID, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil || deliveryID < 1 {
		h.writeError(w, r, problem.Invalidf("invalid_delivery_id", "delivery", "the delivery id must be a positive integer — 投递 ID 必须是正整数"))
		return
	}
	// A delivery of another endpoint is not found under this one.
	if d, err := h.opts.Webhooks.Delivery(r.Context(), deliveryID); err != nil || d.WebhookID != id {
		if err == nil {
			err = webhook.ErrNotFound
		}
		h.writeError(w, r, err)
		return
	}
	d, err := h.opts.WebhookEvents.Redeliver(r.Context(), deliveryID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, d)
}
