package web

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/wechat"
)

// followerView is one follower's page.
type followerView struct {
	Follower   follower.Follower
	Person     follower.Person
	Bindings   []follower.Binding
	Attributes []attribute
	HasAttrs   bool
	Timeline   []timelineEntry
	// WindowOpen tells whether a customer-service reply can be sent now
	// (the follower wrote or pressed something in the last 48 hours);
	// Reply is the text of a reply the page shows again with its error.
	WindowOpen bool
	CanReply   bool
	Reply      string
	ReplyIdem  string
}

type attribute struct{ Name, Value string }

// timelineEntry is a push from the follower (In) or a message to them.
type timelineEntry struct {
	At  time.Time
	In  *msglog.Message
	Out *push.Delivery
	// Text is what the follower wrote (text messages), or the event key.
	Text string
}

// timelineLength is how many pushes and how many messages the page shows.
const timelineLength = 50

// followerPage is GET /admin/followers/{account}/{openid}.
func (c *Console) followerPage(w http.ResponseWriter, r *http.Request) {
	c.showFollower(w, r, http.StatusOK, "", nil)
}

// followerReply is POST /admin/followers/{account}/{openid}/reply: a
// customer-service text to the follower, sent through the push pipeline
// (channel custom); outside the 48-hour window the page says so and keeps
// the text.
func (c *Console) followerReply(w http.ResponseWriter, r *http.Request) {
	if c.opts.Push == nil {
		c.fail(w, r, errNoPush)
		return
	}
	_ = r.ParseForm()
	account, openid := r.PathValue("account"), r.PathValue("openid")
	text, idem := strings.TrimSpace(r.PostForm.Get("text")), r.PostForm.Get("idem")
	l := lang(r)
	if text == "" {
		c.showFollower(w, r, http.StatusBadRequest, text, map[string]string{"text": c.text(l, "follower.reply_empty")})
		return
	}
	if idem == "" {
		idem = newIdempotencyKey()
	}
	sess := sessionFrom(r.Context())
	res, err := c.opts.Push.Send(r.Context(), push.Request{Account: account, Channel: push.ChannelCustom,
		To: push.Recipients{OpenIDs: []string{openid}}, Text: text}, push.SendOptions{IdempotencyKey: idem, APIKeyID: push.ConsoleScope(sess.User.ID)})
	if err != nil {
		p, ok := problem.As(err)
		if !ok || p.Kind == problem.Internal || p.Kind == problem.Unavailable {
			c.fail(w, r, err)
			return
		}
		c.showFollower(w, r, p.Status(), text, map[string]string{"text": p.In(l)})
		return
	}
	if len(res.Accepted.Recipients) == 1 && res.Accepted.Recipients[0].Reason == push.ReasonOutsideWindow {
		c.showFollower(w, r, http.StatusConflict, text, map[string]string{"text": c.text(l, "follower.reply_outside_window")})
		return
	}
	c.audit(r, "message.reply", res.Accepted.ID, "account="+account+" openid="+openid)
	http.Redirect(w, r, "/admin/followers/"+url.PathEscape(account)+"/"+url.PathEscape(openid)+"#timeline", http.StatusSeeOther)
}

// followerTyping is POST /admin/followers/{account}/{openid}/typing (the
// reply box's script): the follower's phone shows "typing…". 204, or the
// problem (409 outside_window) as JSON.
func (c *Console) followerTyping(w http.ResponseWriter, r *http.Request) {
	account, openid := r.PathValue("account"), r.PathValue("openid")
	if c.opts.Tokens == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	client, ok := c.opts.Tokens.Client(account)
	if !ok {
		c.fail(w, r, errPageNotFound)
		return
	}
	if err := client.CustomTyping(r.Context(), openid, true); err != nil {
		var apiErr *wechat.APIError
		if errors.As(err, &apiErr) && apiErr.Code == wechat.CodeOutOfWindow {
			err = problem.Conflictf("outside_window", "", "outside the 48-hour window (45015) — 超出 48 小时客服消息窗口")
		}
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) showFollower(w http.ResponseWriter, r *http.Request, status int, reply string, errs map[string]string) {
	if c.opts.Followers == nil {
		c.fail(w, r, errPageNotFound)
		return
	}
	ctx := r.Context()
	account, openid := r.PathValue("account"), r.PathValue("openid")
	f, err := c.opts.Followers.Get(ctx, account, openid)
	if err != nil {
		if errors.Is(err, follower.ErrNotFound) {
			err = errPageNotFound
		}
		c.fail(w, r, err)
		return
	}
	v := followerView{Follower: f, Reply: reply, ReplyIdem: newIdempotencyKey(), CanReply: c.opts.Push != nil}
	if c.opts.Windows != nil {
		open, err := c.opts.Windows.OpenWindows(ctx, account, []string{openid}, c.now())
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.WindowOpen = open[openid]
	}
	if f.UnionID != "" {
		if v.Person, err = c.opts.Followers.Person(ctx, f.UnionID); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if v.Bindings, err = c.opts.Followers.ListBindings(ctx, follower.BindingFilter{Account: account, OpenID: openid, Limit: 100}); err != nil {
		c.fail(w, r, err)
		return
	}
	if c.opts.Schedules != nil {
		attrs, err := c.opts.Schedules.Attributes(ctx, account, openid)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.HasAttrs = true
		for k, val := range attrs {
			v.Attributes = append(v.Attributes, attribute{Name: k, Value: val})
		}
		sort.Slice(v.Attributes, func(i, j int) bool { return v.Attributes[i].Name < v.Attributes[j].Name })
	}
	if c.opts.Messages != nil {
		in, err := c.opts.Messages.ListByOpenID(ctx, account, openid, timelineLength)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := range in {
			m := &in[i]
			v.Timeline = append(v.Timeline, timelineEntry{At: m.ReceivedAt, In: m, Text: m.Words()})
		}
	}
	if c.opts.Push != nil {
		out, err := c.opts.Push.DeliveriesTo(ctx, account, openid, timelineLength)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := range out {
			v.Timeline = append(v.Timeline, timelineEntry{At: out[i].QueuedAt, Out: &out[i]})
		}
	}
	sort.SliceStable(v.Timeline, func(i, j int) bool { return v.Timeline[i].At.After(v.Timeline[j].At) })
	c.render(w, r, status, "follower", "follower.title", v, errs)
}

// syncView is the state of an account's full sync.
type syncView struct {
	Account string
	Status  follower.SyncStatus
	Never   bool
	// Since (Unix ms) is when the page's sync was started: Done is set once
	// a run has finished after it (0: any finished run).
	Since int64
	Done  bool
}

func (c *Console) loadSync(r *http.Request, account string) (syncView, error) {
	if c.opts.Syncs == nil {
		return syncView{}, errPageNotFound
	}
	if _, ok := c.accountNamed(account); !ok {
		return syncView{}, problem.NotFoundf("account_not_found", "account", "unknown account %q — 账号 %q 不存在", account, account)
	}
	v := syncView{Account: account}
	v.Since, _ = strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	st, err := c.opts.Syncs.Status(r.Context(), account)
	switch {
	case errors.Is(err, follower.ErrNotFound):
		v.Never = true
	case err != nil:
		return syncView{}, err
	default:
		v.Status = st
	}
	v.Done = !v.Never && st.Status != follower.SyncRunning && st.UpdatedAt.UnixMilli() >= v.Since
	return v, nil
}

// syncPage is GET /admin/followers/sync?account=: the sync's progress,
// live while it runs.
func (c *Console) syncPage(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadSync(r, r.URL.Query().Get("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "follower_sync", "follower.sync_title", v, nil)
}

// syncFragment is the live region of the sync page. A sync queued but not
// yet started shows the previous run; polling goes on until a run has
// finished after Since.
func (c *Console) syncFragment(w http.ResponseWriter, r *http.Request) {
	v, err := c.loadSync(r, r.URL.Query().Get("account"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "follower_sync", "sync-progress", v, v.Done)
}

// startSync is POST /admin/followers/sync (form field account).
func (c *Console) startSync(w http.ResponseWriter, r *http.Request) {
	account := r.PostFormValue("account")
	if _, err := c.loadSync(r, account); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, _, err := c.opts.Syncs.Start(r.Context(), account); err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "followers.sync", account, "")
	q := url.Values{"account": {account}, "since": {strconv.FormatInt(c.now().UnixMilli(), 10)}}
	http.Redirect(w, r, "/admin/followers/sync?"+q.Encode(), http.StatusSeeOther)
}
