package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// WindowChecker tells whose 48-hour customer-service window is open
// (*msglog.Windows).
type WindowChecker interface {
	OpenWindows(ctx context.Context, account string, openids []string, now time.Time) (map[string]bool, error)
}

// DeliveryReader lists the messages sent to a follower (*push.Service).
type DeliveryReader interface {
	DeliveriesTo(ctx context.Context, account, openid string, limit int) ([]push.Delivery, error)
}

// conversationEntry is one push from the follower (in) or one message to
// them (out).
type conversationEntry struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"` // in | out
	// in: the push, and how it was answered.
	MsgType     string `json:"msg_type,omitempty"`
	Event       string `json:"event,omitempty"`
	Text        string `json:"text,omitempty"`
	ReplyStatus string `json:"reply_status,omitempty"`
	// out: the message and its recipient's state.
	MessageID string `json:"message_id,omitempty"`
	Channel   string `json:"channel,omitempty"`
	Template  string `json:"template,omitempty"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// followerConversation is GET /api/v1/followers/{openid}/conversation
// ?account=&limit= (scope read): the follower's pushes and the messages
// sent to them, newest first, and whether a customer-service reply can be
// sent now.
func (h *handler) followerConversation(w http.ResponseWriter, r *http.Request) {
	if h.opts.Messages == nil || h.opts.Deliveries == nil {
		h.writeError(w, r, &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
			Message: "conversations are not available on this server — 此服务未启用会话记录"})
		return
	}
	q := r.URL.Query()
	account, openid := q.Get("account"), r.PathValue("openid")
	if err := h.tagAccount(account); err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	in, err := h.opts.Messages.ListByOpenID(r.Context(), account, openid, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out, err := h.opts.Deliveries.DeliveriesTo(r.Context(), account, openid, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	entries := make([]conversationEntry, 0, len(in)+len(out))
	for _, m := range in {
		entries = append(entries, conversationEntry{At: m.ReceivedAt, Direction: "in", MsgType: m.MsgType, Event: m.Event,
			Text: m.Words(), ReplyStatus: string(m.ReplyStatus)})
	}
	for _, d := range out {
		entries = append(entries, conversationEntry{At: d.QueuedAt, Direction: "out", MessageID: d.MessageID, Channel: d.Channel,
			Template: d.Template, Status: d.Status, Reason: d.Reason})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].At.After(entries[j].At) })
	if len(entries) > limit {
		entries = entries[:limit]
	}
	windowOpen := false
	if h.opts.Windows != nil {
		open, err := h.opts.Windows.OpenWindows(r.Context(), account, []string{openid}, h.now())
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		windowOpen = open[openid]
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "openid": openid, "window_open": windowOpen, "entries": entries})
}
