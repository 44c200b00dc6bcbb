package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/problem"
)

// FollowerReader is what the follower and binding routes read
// (*follower.Store).
type FollowerReader interface {
	Search(ctx context.Context, f follower.FollowerFilter) ([]follower.Follower, string, error)
	Get(ctx context.Context, account, openid string) (follower.Follower, error)
	Person(ctx context.Context, unionid string) (follower.Person, error)
	ListBindings(ctx context.Context, f follower.BindingFilter) ([]follower.Binding, error)
	GetBinding(ctx context.Context, id int64) (follower.Binding, error)
}

// MessageReader reads the inbound message log (*msglog.Store).
type MessageReader interface {
	ListByOpenID(ctx context.Context, account, openid string, limit int) ([]msglog.Message, error)
}

var errNoFollowers = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "followers are not available on this server — 此服务未启用粉丝功能"}

// listFollowers is GET /api/v1/followers (scope read): filters account,
// subscribed, bound, tag, text; limit and cursor page.
func (h *handler) listFollowers(w http.ResponseWriter, r *http.Request) {
	if h.opts.Followers == nil {
		h.writeError(w, r, errNoFollowers)
		return
	}
	q := r.URL.Query()
	f := follower.FollowerFilter{Account: q.Get("account"), Text: q.Get("text"), Cursor: q.Get("cursor")}
	var err error
	if f.Account != "" {
		if _, ok := h.findAccount(f.Account); !ok {
			h.writeError(w, r, config.UnknownAccount(f.Account))
			return
		}
	}
	if f.Subscribed, err = boolParam(q.Get("subscribed"), "subscribed"); err != nil {
		h.writeError(w, r, err)
		return
	}
	if f.Bound, err = boolParam(q.Get("bound"), "bound"); err != nil {
		h.writeError(w, r, err)
		return
	}
	if v := q.Get("tag"); v != "" {
		id, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			h.writeError(w, r, errBadRequest("invalid_tag", "tag must be a numeric WeChat tag id — tag 须为数字标签 ID"))
			return
		}
		f.TagID = &id
	}
	if f.Limit, err = intParam(q.Get("limit"), "limit"); err != nil {
		h.writeError(w, r, err)
		return
	}
	list, next, err := h.opts.Followers.Search(r.Context(), f)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"followers": list, "next_cursor": next})
}

// messageView is a logged push as the follower view shows it.
type messageView struct {
	ID          int64           `json:"id"`
	MsgType     string          `json:"msg_type"`
	Event       string          `json:"event,omitempty"`
	MsgID       int64           `json:"msg_id,omitempty,string"`
	Fields      json.RawMessage `json:"fields"`
	ReceivedAt  time.Time       `json:"received_at"`
	ReplyStatus msglog.Status   `json:"reply_status"`
}

// followerDetail is the answer of GET /api/v1/followers/{openid}.
type followerDetail struct {
	Follower follower.Follower `json:"follower"`
	// Person is the follower's unionid and every openid known with it;
	// null without a unionid ("not linked").
	Person         *follower.Person   `json:"person"`
	Link           string             `json:"link"`
	Bindings       []follower.Binding `json:"bindings"`
	RecentMessages []messageView      `json:"recent_messages"`
}

// getFollower is GET /api/v1/followers/{openid}?account= (scope read):
// the follower, their person across apps, bindings and recent messages
// (messages=N, default 20, at most 100).
func (h *handler) getFollower(w http.ResponseWriter, r *http.Request) {
	if h.opts.Followers == nil {
		h.writeError(w, r, errNoFollowers)
		return
	}
	q := r.URL.Query()
	account, err := h.officialAccount(q.Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit := 20
	if v := q.Get("messages"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			h.writeError(w, r, errBadRequest("invalid_messages", "messages must be 0..100 — messages 须为 0..100"))
			return
		}
		limit = n
	}
	ctx := r.Context()
	openid := r.PathValue("openid")
	f, err := h.opts.Followers.Get(ctx, account, openid)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := followerDetail{Follower: f, Link: follower.LinkNotLinked, RecentMessages: []messageView{}}
	if f.UnionID != "" {
		p, err := h.opts.Followers.Person(ctx, f.UnionID)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		out.Person = &p
		out.Link = follower.LinkLinked
	}
	if out.Bindings, err = h.opts.Followers.ListBindings(ctx, follower.BindingFilter{OpenID: openid}); err != nil {
		h.writeError(w, r, err)
		return
	}
	if h.opts.Messages != nil && limit > 0 {
		msgs, err := h.opts.Messages.ListByOpenID(ctx, account, openid, limit)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		for _, m := range msgs {
			out.RecentMessages = append(out.RecentMessages, messageView{ID: m.ID, MsgType: m.MsgType, Event: m.Event, MsgID: m.MsgID,
				Fields: m.Fields, ReceivedAt: m.ReceivedAt, ReplyStatus: m.ReplyStatus})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// officialAccount resolves the account= parameter of a follower route:
// required unless exactly one official account is configured.
func (h *handler) officialAccount(name string) (string, error) {
	if name != "" {
		a, ok := h.findAccount(name)
		if !ok {
			return "", config.UnknownAccount(name)
		}
		if a.Kind == config.KindMiniProgram {
			return "", errBadRequest("wrong_account_kind", "account "+name+" is a mini program, which has no followers — 小程序没有粉丝")
		}
		return name, nil
	}
	var only string
	for _, a := range h.opts.Accounts {
		if a.Kind != config.KindMiniProgram {
			if only != "" {
				return "", errBadRequest("missing_account", "several official accounts are configured: name one with account= — 请用 account= 指定公众号")
			}
			only = a.Name
		}
	}
	if only == "" {
		return "", errBadRequest("missing_account", "no official account is configured — 未配置公众号")
	}
	return only, nil
}

// boolParam reads true/false/1/0; "" is nil.
func boolParam(v, name string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, errBadRequest("invalid_"+name, name+" must be true or false — "+name+" 须为 true 或 false")
	}
	return &b, nil
}

// intParam reads a non-negative integer; "" is 0.
func intParam(v, name string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errBadRequest("invalid_"+name, name+" must be a non-negative integer — "+name+" 须为非负整数")
	}
	return n, nil
}

// FollowerSyncs starts full syncs through the queue and reports them
// (*follower.SyncJobs).
type FollowerSyncs interface {
	Start(ctx context.Context, account string) (jobID int64, running bool, err error)
	Status(ctx context.Context, account string) (follower.SyncStatus, error)
}

// startFollowerSync is POST /api/v1/followers/sync (scope admin):
// {account} queues a full sync (resuming an unfinished one); 202 with the
// job id, and running true when one was queued or running already.
func (h *handler) startFollowerSync(w http.ResponseWriter, r *http.Request) {
	if h.opts.Syncs == nil {
		h.writeError(w, r, errNoFollowers)
		return
	}
	var in struct {
		Account string `json:"account"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.writeError(w, r, err)
		return
	}
	account, err := h.officialAccount(in.Account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id, running, err := h.opts.Syncs.Start(r.Context(), account)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"account": account, "job_id": id, "already_queued": running})
}

// followerSyncStatus is GET /api/v1/followers/sync?account= (scope read):
// the last or current full sync.
func (h *handler) followerSyncStatus(w http.ResponseWriter, r *http.Request) {
	if h.opts.Syncs == nil {
		h.writeError(w, r, errNoFollowers)
		return
	}
	account, err := h.officialAccount(r.URL.Query().Get("account"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.opts.Syncs.Status(r.Context(), account)
	if err == follower.ErrNotFound {
		writeJSON(w, http.StatusOK, map[string]any{"account": account, "status": "never"})
		return
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
