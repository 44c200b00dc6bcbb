package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// Pusher is what the messages, templates and subscriptions resources need
// (*push.Service).
type Pusher interface {
	Send(ctx context.Context, req push.Request, o push.SendOptions) (*push.SendResult, error)
	GetMessage(ctx context.Context, id string, page push.RecipientPage) (push.Message, error)
	ListMessages(ctx context.Context, f push.ListFilter) (push.MessageList, error)
	Resend(ctx context.Context, messageID string, seq int) (push.Recipient, error)

	Templates(ctx context.Context, account string) ([]push.Template, error)
	PutTemplate(ctx context.Context, t push.Template) (push.Template, error)
	SyncTemplates(ctx context.Context, account string) (push.SyncResult, error)
	Aliases(ctx context.Context, account string) ([]push.Alias, error)
	GetAlias(ctx context.Context, account, name string) (push.Alias, error)
	PutAlias(ctx context.Context, a push.Alias) (push.Alias, error)
	DeleteAlias(ctx context.Context, account, name string) error
	Preview(ctx context.Context, req push.PreviewRequest) (push.Preview, error)

	ReportGrants(ctx context.Context, r push.GrantReport) (push.GrantSummary, error)
	Grants(ctx context.Context, account, openid string) (push.GrantSummary, error)
}

var errNoPush = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "sending is not available on this server — 此服务未启用消息发送"}

// maxSendBody bounds a send request: 100 000 openids are about 3 MB.
const maxSendBody = 16 << 20

// decodeSendBody reads a JSON body of at most limit bytes into v,
// refusing unknown fields.
func decodeSendBody(r *http.Request, v any, limit int64) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return errBadRequest("invalid_body", "the body could not be read: "+err.Error()+" — 无法读取请求体")
	}
	if int64(len(body)) > limit {
		return &problem.Error{Kind: problem.TooLarge, Code: "body_too_large",
			Message: "the body is larger than " + strconv.FormatInt(limit>>20, 10) + " MiB — 请求体过大"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("invalid_json", "the body is not the expected JSON: "+err.Error()+" — 请求体不是有效的 JSON")
	}
	return nil
}

// sendMessage is POST /api/v1/messages (scope send). The answer is 202
// with the message id and each recipient's status; a repeated
// Idempotency-Key gets the first answer again (header Idempotent-Replayed:
// true) and sends nothing.
func (h *handler) sendMessage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	var req push.Request
	if err := decodeSendBody(r, &req, maxSendBody); err != nil {
		h.writeError(w, r, err)
		return
	}
	o := push.SendOptions{IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if k, ok := auth.KeyFrom(r.Context()); ok {
		o.APIKeyID = k.ID
	}
	res, err := h.opts.Push.Send(r.Context(), req, o)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Location", "/api/v1/messages/"+res.Accepted.ID)
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(res.Body, '\n'))
}

// getMessage is GET /api/v1/messages/{id} (scope read): the message, its
// counts and its recipients (?after=SEQ&limit=N pages through them,
// limit 1000 by default).
func (h *handler) getMessage(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	after, err := intParam(q.Get("after"), "after")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	m, err := h.opts.Push.GetMessage(r.Context(), r.PathValue("id"), push.RecipientPage{After: after, Limit: min(limit, 10000)})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// listMessages is GET /api/v1/messages (scope read), newest first:
// ?account=&channel=&template=&status=&since=&until=&before=&limit=. since
// and until are RFC 3339 times; before is the next value of the previous
// page; status keeps messages with a recipient in that status.
func (h *handler) listMessages(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	q := r.URL.Query()
	f := push.ListFilter{Account: q.Get("account"), Channel: q.Get("channel"), Template: q.Get("template"),
		Status: q.Get("status"), Before: q.Get("before")}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), "limit"); err != nil {
		h.writeError(w, r, err)
		return
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, perr := time.Parse(time.RFC3339, v)
			if perr != nil {
				h.writeError(w, r, errBadRequest("invalid_"+p.name, p.name+" must be an RFC 3339 time such as 2026-11-24T10:00:00+08:00 — "+p.name+" 须为 RFC 3339 时间"))
				return
			}
			*p.dst = t
		}
	}
	list, err := h.opts.Push.ListMessages(r.Context(), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// resendRecipient is POST /api/v1/messages/{id}/recipients/{seq}/resend
// (scope send): a failed recipient is queued again with the message's own
// content; any other state answers 409 not_resendable.
func (h *handler) resendRecipient(w http.ResponseWriter, r *http.Request) {
	if h.opts.Push == nil {
		h.writeError(w, r, errNoPush)
		return
	}
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || seq < 1 {
		h.writeError(w, r, problem.Invalidf("invalid_seq", "seq", "seq must be a recipient's number (1, 2, …) — seq 必须是接收人的序号"))
		return
	}
	rec, err := h.opts.Push.Resend(r.Context(), r.PathValue("id"), seq)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rec)
}
