package follower

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechat"
)

// recordingEvents keeps what was published (committed or not: the tests
// check the transaction outcome through the tables).
type recordingEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *recordingEvents) PublishTx(_ context.Context, _ *sql.Tx, eventType, account string, data any) error {
	raw, _ := json.Marshal(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventType+" "+account+" "+string(raw))
	return nil
}

func (r *recordingEvents) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

var t0 = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)

type bindBundle struct {
	d      *db.DB
	binder *Binder
	store  *Store
	events *recordingEvents
	now    time.Time
}

func setupBindings(t *testing.T, d *db.DB, manyToMany bool) *bindBundle {
	t.Helper()
	b := &bindBundle{d: d, events: &recordingEvents{}, now: t0}
	b.store = NewStore(d, func() time.Time { return b.now })
	b.binder = NewBinder(BinderOptions{Store: b.store, Events: b.events, Now: func() time.Time { return b.now }, Accounts: []config.Account{
		{Name: "main", Kind: config.KindOfficialAccount, Binding: config.BindingConfig{ManyToMany: manyToMany, Reply: "好了"}},
		{Name: "shop", Kind: config.KindMiniProgram},
	}})
	return b
}

// follower inserts a follower with a unionid ("" for none).
func (b *bindBundle) follower(t *testing.T, account, openid, unionid string, tags string) {
	t.Helper()
	var u any
	if unionid != "" {
		u = unionid
	}
	if _, err := b.d.ExecContext(t.Context(), `INSERT INTO followers (account, openid, unionid, subscribed, tag_ids, remark, created_at, updated_at)
VALUES ($1, $2, $3, TRUE, $4, $5, $6, $6)`, account, openid, u, tags, "remark of "+openid, t0); err != nil {
		t.Fatal(err)
	}
}

// token inserts a bind token as CreateQRCode would.
func (b *bindBundle) token(t *testing.T, scene, externalID string, ttl time.Duration) {
	t.Helper()
	if _, err := b.d.ExecContext(t.Context(), `INSERT INTO bind_tokens (account, external_id, scene, ticket, qr_url, poll_hash, expires_at, created_at)
VALUES ('main', $1, $2, $3, 'http://weixin.qq.com/q/x', $4, $5, $6)`, externalID, scene, "T-"+scene, hashToken("poll-"+scene),
		db.Timestamp(b.now.Add(ttl)), db.Timestamp(b.now)); err != nil {
		t.Fatal(err)
	}
}

func (b *bindBundle) bind(t *testing.T, externalID, account, openid, unionid string, many bool) bindOutcome {
	t.Helper()
	var out bindOutcome
	err := inTx(t.Context(), b.d, func(tx *sql.Tx) error {
		var err error
		out, err = bindTx(t.Context(), tx, bindRequest{ExternalID: externalID, Account: account, OpenID: openid, UnionID: unionid,
			Source: SourceMiniProgram, ManyToMany: many, Now: db.Timestamp(b.now)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func scanMsg(openid, scene string, subscribe bool) *wechat.Message {
	m := &wechat.Message{FromUserName: openid, CreateTime: t0.Unix(), MsgType: wechat.MsgTypeEvent, Event: wechat.EventScan, EventKey: scene, Ticket: "T-" + scene}
	if subscribe {
		m.Event, m.EventKey = wechat.EventSubscribe, wechat.QRScenePrefix+scene
	}
	return m
}

func (b *bindBundle) respond(t *testing.T, m *wechat.Message) string {
	t.Helper()
	r, handled, err := b.binder.Respond(t.Context(), "main", m)
	if err != nil || !handled {
		t.Fatalf("handled %v, err %v", handled, err)
	}
	return r.(wechat.TextReply).Content
}

// One-to-one by default: a new binding of an external id or of a person
// (by openid or unionid across apps) ends the older ones, which stay as
// history; the same binding again changes nothing.
func TestBindOneToOne(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupBindings(t, d, false)
		ctx := t.Context()
		b.follower(t, "main", "oA", "uA", "[]")
		b.follower(t, "main", "oB", "", "[]")
		if _, err := b.store.RecordMiniProgramLogin(ctx, "shop", "mA", "uA"); err != nil {
			t.Fatal(err)
		}

		first := b.bind(t, "S-1", "main", "oA", "", false)
		if first.Binding.UnionID != "uA" || first.Existing || len(first.Replaced) != 0 || !first.Binding.Exclusive {
			t.Errorf("first = %+v", first)
		}
		if again := b.bind(t, "S-1", "main", "oA", "", false); !again.Existing || again.Binding.ID != first.Binding.ID {
			t.Errorf("the same binding again = %+v", again)
		}
		// The same external id for another person replaces it.
		b.now = b.now.Add(time.Minute)
		second := b.bind(t, "S-1", "main", "oB", "", false)
		if !slices.Equal(second.Replaced, []int64{first.Binding.ID}) {
			t.Errorf("second replaced %v", second.Replaced)
		}
		// The same person (by unionid, in the mini program) with another
		// external id: the person's older binding ends too.
		b.now = b.now.Add(time.Minute)
		b.bind(t, "S-2", "main", "oA", "", false)
		third := b.bind(t, "S-3", "shop", "mA", "uA", false)
		if len(third.Replaced) != 1 {
			t.Errorf("third replaced %v", third.Replaced)
		}
		active, _ := b.store.ListBindings(ctx, BindingFilter{})
		all, _ := b.store.ListBindings(ctx, BindingFilter{History: true})
		if len(active) != 2 || len(all) != 4 {
			t.Fatalf("active %+v, all %d", active, len(all))
		}
		old, _ := b.store.GetBinding(ctx, first.Binding.ID)
		if old.Active() || old.EndReason != EndReplaced || old.ReplacedBy == nil || *old.ReplacedBy != second.Binding.ID {
			t.Errorf("replaced binding = %+v", old)
		}
		// Lookups by the person: the OA openid finds the binding made in the
		// mini program (same unionid), and so does the unionid.
		for _, f := range []BindingFilter{{OpenID: "oA"}, {UnionID: "uA"}, {OpenID: "mA"}, {ExternalID: "S-3"}} {
			got, err := b.store.ListBindings(ctx, f)
			if err != nil || len(got) != 1 || got[0].ExternalID != "S-3" {
				t.Errorf("%+v: %+v, %v", f, got, err)
			}
		}
		// Sends to the official account reach the follower of that person.
		if ids, err := b.store.ResolveExternalID(ctx, "main", "S-3"); err != nil || !slices.Equal(ids, []string{"oA"}) {
			t.Errorf("resolve S-3 on main = %v, %v", ids, err)
		}
		if ids, _ := b.store.ResolveExternalID(ctx, "main", "S-1"); !slices.Equal(ids, []string{"oB"}) {
			t.Errorf("resolve S-1 on main = %v", ids)
		}
		// Delete: ended, kept, published once.
		n := b.events.count()
		del, err := b.binder.DeleteBinding(ctx, third.Binding.ID)
		if err != nil || del.Active() || del.EndReason != EndDeleted || b.events.count() != n+1 {
			t.Errorf("delete = %+v, %v", del, err)
		}
		if _, err := b.binder.DeleteBinding(ctx, third.Binding.ID); err != nil || b.events.count() != n+1 {
			t.Errorf("deleting twice: %v", err)
		}
		if _, err := b.binder.DeleteBinding(ctx, 424242); err != ErrBindingNotFound {
			t.Errorf("deleting a missing binding: %v", err)
		}
	})
}

// many_to_many adds bindings without ending any.
func TestBindManyToMany(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupBindings(t, d, true)
		b.bind(t, "S-1", "main", "oA", "", true)
		b.bind(t, "S-1", "main", "oB", "", true)
		out := b.bind(t, "S-2", "main", "oA", "", true)
		if len(out.Replaced) != 0 || out.Binding.Exclusive {
			t.Errorf("many-to-many = %+v", out)
		}
		if all, _ := b.store.ListBindings(t.Context(), BindingFilter{}); len(all) != 3 {
			t.Errorf("%d active bindings, want 3", len(all))
		}
	})
}

// The scan of a binding QR code: bound once, confirmed again to the same
// user, refused to another ("used") and after the expiry ("expired"); the
// poll says so.
func TestRespondToScans(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupBindings(t, d, false)
		ctx := t.Context()
		scene := BindScenePrefix + "abc"
		b.token(t, scene, "S-9", time.Minute)

		if r, handled, err := b.binder.Respond(ctx, "main", scanMsg("oA", "other-scene", true)); handled || r != nil || err != nil {
			t.Errorf("another scene was handled: %v %v", handled, err)
		}
		if got := b.respond(t, scanMsg("oA", scene, true)); got != "好了" {
			t.Errorf("first scan: %q", got)
		}
		if b.events.count() != 1 {
			t.Errorf("%d events", b.events.count())
		}
		if got := b.respond(t, scanMsg("oA", scene, false)); got != "好了" || b.events.count() != 1 {
			t.Errorf("same user again: %q, %d events", got, b.events.count())
		}
		if got := b.respond(t, scanMsg("oB", scene, false)); got != DefaultUsedReply {
			t.Errorf("another user: %q", got)
		}
		st, err := b.binder.QRCodeStatus(ctx, "T-"+scene)
		if err != nil || st.Status != QRCompleted || st.Binding == nil || st.Binding.OpenID != "oA" || st.RejectedScan == nil || st.RejectedScan.OpenID != "oB" {
			t.Errorf("status = %+v, %v", st, err)
		}
		if !b.binder.CheckPollToken(ctx, "T-"+scene, "poll-"+scene) || b.binder.CheckPollToken(ctx, "T-"+scene, "poll-x") {
			t.Error("poll token check")
		}

		late := BindScenePrefix + "late"
		b.token(t, late, "S-10", time.Minute)
		b.now = b.now.Add(2 * time.Minute)
		if got := b.respond(t, scanMsg("oB", late, true)); got != DefaultExpiredReply {
			t.Errorf("expired: %q", got)
		}
		if st, _ := b.binder.QRCodeStatus(ctx, "T-"+late); st.Status != QRExpired || st.RejectedScan == nil || st.RejectedScan.Reason != "expired" {
			t.Errorf("expired status = %+v", st)
		}
		if got := b.respond(t, scanMsg("oB", BindScenePrefix+"nope", true)); got != invalidBindReply {
			t.Errorf("unknown token: %q", got)
		}
		if list, _ := b.store.ListBindings(ctx, BindingFilter{History: true}); len(list) != 1 {
			t.Errorf("bindings = %+v", list)
		}
		if _, err := b.binder.QRCodeStatus(ctx, "T-none"); err != ErrQRCodeNotFound {
			t.Errorf("unknown ticket: %v", err)
		}
	})
}

// Concurrent scans of one code by different users bind it once.
func TestConcurrentRedeem(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupBindings(t, d, false)
		scene := BindScenePrefix + "race"
		b.token(t, scene, "S-R", time.Minute)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			replies = map[string]int{}
		)
		for i := range 6 {
			wg.Go(func() {
				r, _, err := b.binder.Respond(context.Background(), "main", scanMsg(fmt.Sprintf("o%d", i), scene, false))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					replies["error: "+err.Error()]++
					return
				}
				replies[r.(wechat.TextReply).Content]++
			})
		}
		wg.Wait()
		if replies["好了"] != 1 || replies[DefaultUsedReply] != 5 {
			t.Errorf("replies = %v", replies)
		}
	})
}

// Persons and the follower search filters.
func TestPersonsAndSearch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupBindings(t, d, false)
		ctx := t.Context()
		b.follower(t, "main", "oA", "uA", "[2,128]")
		b.follower(t, "main", "oB", "", "[2]")
		b.follower(t, "main", "oC_x%", "uC", "[]")
		if _, err := d.ExecContext(ctx, `UPDATE followers SET subscribed = FALSE WHERE openid = 'oB'`); err != nil {
			t.Fatal(err)
		}
		u, err := b.store.RecordMiniProgramLogin(ctx, "shop", "mA", "uA")
		if err != nil || u.Logins != 1 {
			t.Fatal(u, err)
		}
		// A later login without unionid keeps the one known.
		if u, _ = b.store.RecordMiniProgramLogin(ctx, "shop", "mA", ""); u.UnionID != "uA" || u.Logins != 2 {
			t.Errorf("second login = %+v", u)
		}
		p, err := b.store.Person(ctx, "uA")
		if err != nil || len(p.Identities) != 2 || p.Identities[0].OpenID != "oA" || p.Identities[0].Subscribed == nil ||
			p.Identities[1].Kind != KindMiniProgram {
			t.Errorf("person = %+v, %v", p, err)
		}
		b.bind(t, "Sales-7", "shop", "mA", "uA", false)

		yes, no := true, false
		tag := int64(128)
		tag2 := int64(2)
		cases := []struct {
			name string
			f    FollowerFilter
			want []string
		}{
			{"all", FollowerFilter{Account: "main"}, []string{"oA", "oB", "oC_x%"}},
			{"subscribed", FollowerFilter{Subscribed: &yes}, []string{"oA", "oC_x%"}},
			{"unsubscribed", FollowerFilter{Subscribed: &no}, []string{"oB"}},
			{"bound", FollowerFilter{Bound: &yes}, []string{"oA"}},
			{"unbound", FollowerFilter{Bound: &no}, []string{"oB", "oC_x%"}},
			{"tag 128", FollowerFilter{TagID: &tag}, []string{"oA"}},
			{"tag 2", FollowerFilter{TagID: &tag2}, []string{"oA", "oB"}},
			{"text openid", FollowerFilter{Text: "OB"}, []string{"oB"}},
			{"text literal %", FollowerFilter{Text: "x%"}, []string{"oC_x%"}},
			{"text external id", FollowerFilter{Text: "sales"}, []string{"oA"}},
			{"text remark", FollowerFilter{Text: "remark of oc"}, []string{"oC_x%"}},
			{"other account", FollowerFilter{Account: "other"}, nil},
		}
		for _, tc := range cases {
			got, _, err := b.store.Search(ctx, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var ids []string
			for _, f := range got {
				ids = append(ids, f.OpenID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
			}
		}
		// Paging with the cursor.
		var pages [][]string
		cursor := ""
		for {
			got, next, err := b.store.Search(ctx, FollowerFilter{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, f := range got {
				ids = append(ids, f.OpenID)
			}
			pages = append(pages, ids)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(pages) != 2 || len(pages[0]) != 2 || len(pages[1]) != 1 {
			t.Errorf("pages = %v", pages)
		}
		if _, _, err := b.store.Search(ctx, FollowerFilter{Cursor: "!!"}); err != ErrBadCursor {
			t.Errorf("bad cursor: %v", err)
		}
		if got, _, _ := b.store.Search(ctx, FollowerFilter{Text: "oA"}); len(got) != 1 || !slices.Equal(got[0].TagIDs, []int64{2, 128}) {
			t.Errorf("tags = %+v", got)
		}
	})
}
