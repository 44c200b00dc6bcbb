package follower_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	simOA       = "wx0000000000005e01"
	simOASecret = "oa-secret-0123456789abcdef0123456"
	pathUserGet = "/cgi-bin/user/get"
	pathBatch   = "/cgi-bin/user/info/batchget"
)

// simWith starts a simulator with one official account (bound to an Open
// Platform account, so unionids are returned) and n followers.
func simWith(t *testing.T, n int) (*wechatsim.Simulator, string) {
	t.Helper()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{
		{AppID: simOA, AppSecret: simOASecret, OpenPlatform: "op-sync"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	for i := range n {
		if _, err := sim.CreateUser(t.Context(), wechatsim.CreateUserRequest{AppID: simOA, OpenID: fmt.Sprintf("o%027d", i), Follow: true}); err != nil {
			t.Fatal(err)
		}
	}
	return sim, srv.URL
}

// clientFor returns the API client of account "main" on d, with tokens
// from a broker as in the gateway.
func clientFor(t *testing.T, d *db.DB, simURL string) *wechat.Client {
	t.Helper()
	reg := token.NewRegistry(d, token.Options{})
	acct := config.Account{Name: "main", AppID: simOA, AppSecret: simOASecret, APIBaseURLs: []string{simURL}}
	if _, err := reg.AddAccount(acct, token.AccountOptions{Mode: token.ModeStable,
		HTTPClient: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := reg.Client("main")
	return c
}

// snapshot is the content of the followers table that a sync decides,
// without the times taken from the gateway's clock.
func snapshot(t *testing.T, d *db.DB) map[string]string {
	t.Helper()
	rows, err := d.QueryContext(t.Context(), `SELECT openid, COALESCE(unionid, ''), subscribed, subscribed_at, subscribe_scene,
    COALESCE(qr_scene, 0), qr_scene_str, language, remark, tag_ids FROM followers WHERE account = 'main'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var (
			openid, unionid, scene, sceneStr, lang, remark, tags string
			subscribed                                           bool
			at                                                   *time.Time
			qr                                                   int64
		)
		if err := rows.Scan(&openid, &unionid, &subscribed, &at, &scene, &qr, &sceneStr, &lang, &remark, &tags); err != nil {
			t.Fatal(err)
		}
		sub := ""
		if at != nil {
			sub = at.UTC().Format(time.RFC3339)
		}
		out[openid] = fmt.Sprint(unionid, subscribed, sub, scene, qr, sceneStr, lang, remark, len(tags) > 2)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// 25 000 followers: 3 user/get pages and 250 batchget calls; a sync
// stopped half-way and run again makes fewer calls and ends with the same
// table as a clean one; a second full sync changes nothing.
func TestSyncCountsAndResume(t *testing.T) {
	t.Parallel()
	const n = 25000
	sim, simURL := simWith(t, n)
	calls := func() (int, int) { return sim.CallCount(simOA, pathUserGet), sim.CallCount(simOA, pathBatch) }

	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		// Not parallel: the call counts are the simulator's, shared.
		ctx := t.Context()
		client := clientFor(t, d, simURL)
		syncer := follower.NewSyncer(d, nil, nil)
		followers := follower.NewStore(d, nil)

		// A clean sync.
		list0, batch0 := calls()
		st, err := syncer.Run(ctx, "main", client, follower.SyncOptions{Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		list1, batch1 := calls()
		if list1-list0 != 3 || batch1-batch0 != 250 {
			t.Errorf("clean sync made %d user/get and %d batchget calls, want 3 and 250", list1-list0, batch1-batch0)
		}
		if st.Status != follower.SyncCompleted || st.Pages != 3 || st.Listed != n || st.Profiled != n || st.Total != n ||
			st.ListCalls != 3 || st.BatchCalls != 250 || st.Resumed {
			t.Errorf("clean sync status = %+v", st)
		}
		if c, _ := followers.Count(ctx, "main", true); c != n {
			t.Errorf("%d subscribed followers, want %d", c, n)
		}
		f, err := followers.Get(ctx, "main", fmt.Sprintf("o%027d", 12345))
		if err != nil || !f.Subscribed || f.UnionID == "" || f.Language != "zh_CN" || f.SubscribedAt == nil || f.ProfileFetchedAt == nil {
			t.Errorf("a synced follower = %+v, %v", f, err)
		}
		clean := snapshot(t, d)

		// The same sync on a second database, cancelled once 12 000
		// profiles are saved (in the middle of the second page), then run
		// again.
		d2 := dbtest.SQLite(t)
		if d.Dialect == db.Postgres {
			d2 = dbtest.Postgres(t)
		}
		client2 := clientFor(t, d2, simURL)
		syncer2 := follower.NewSyncer(d2, nil, nil)
		stopCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err = syncer2.Run(stopCtx, "main", client2, follower.SyncOptions{Concurrency: 4, Progress: func(s follower.SyncStatus) {
			if s.Profiled >= 12000 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted sync: err = %v", err)
		}
		st2, err := syncer2.Status(ctx, "main")
		if err != nil || st2.Status != follower.SyncInterrupted || st2.Profiled < 12000 || st2.Profiled >= n || st2.Pages != 1 {
			t.Fatalf("after the interrupt: %+v, %v", st2, err)
		}
		list2, batch2 := calls()
		firstPart := batch2 - batch1

		st3, err := syncer2.Run(ctx, "main", client2, follower.SyncOptions{Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		list3, batch3 := calls()
		resumeList, resumeBatch := list3-list2, batch3-batch2
		// The resumed run fetches the interrupted page again and the one
		// after it, and only the profiles not saved yet.
		if resumeList != 2 || resumeBatch+firstPart > 250+4 || resumeBatch >= 250 || int64(resumeBatch) != st3.BatchCalls-st2.BatchCalls {
			t.Errorf("resumed sync made %d user/get and %d batchget calls (first part %d batchget)", resumeList, resumeBatch, firstPart)
		}
		if !st3.Resumed || st3.Status != follower.SyncCompleted || st3.Run != st2.Run || st3.Resumes != 1 || st3.Pages != 3 || st3.Listed != n || st3.Profiled < n {
			t.Errorf("resumed sync status = %+v", st3)
		}
		if got := snapshot(t, d2); !reflect.DeepEqual(got, clean) {
			t.Errorf("resumed sync differs from a clean one: %d vs %d rows", len(got), len(clean))
		}

		// A second full sync is a new run that changes nothing.
		st4, err := syncer.Run(ctx, "main", client, follower.SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st4.Run != st.Run+1 || st4.Resumed || st4.Unsubscribed != 0 {
			t.Errorf("second sync = %+v", st4)
		}
		if got := snapshot(t, d); !reflect.DeepEqual(got, clean) {
			t.Error("a second sync changed the followers")
		}
	})
}

// Followers who left without wxgate hearing of it are marked unsubscribed
// (kept, never deleted); a follower who subscribed after the sync started
// is not.
func TestSyncMarksMissingFollowersUnsubscribed(t *testing.T) {
	t.Parallel()
	_, simURL := simWith(t, 150)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		now := time.Now()
		clock := func() time.Time { return now }
		syncer := follower.NewSyncer(d, clock, nil)
		followers := follower.NewStore(d, clock)
		client := clientFor(t, d, simURL)

		// Known to wxgate from old events, gone at WeChat.
		old := &wechat.Message{FromUserName: "oGONE00000000000000000000000", CreateTime: now.Add(-48 * time.Hour).Unix(),
			MsgType: wechat.MsgTypeEvent, Event: wechat.EventSubscribe}
		if err := followers.ApplyEvent(ctx, "main", old); err != nil {
			t.Fatal(err)
		}
		st, err := syncer.Run(ctx, "main", client, follower.SyncOptions{Restart: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.Unsubscribed != 1 || st.Listed < 150 {
			t.Errorf("status = %+v", st)
		}
		f, err := followers.Get(ctx, "main", old.FromUserName)
		if err != nil || f.Subscribed || f.UnsubscribedAt == nil {
			t.Errorf("missing follower = %+v, %v", f, err)
		}
		if c, _ := followers.Count(ctx, "main", true); c < 150 {
			t.Errorf("%d subscribed", c)
		}
	})
}

// Two syncs of one account cannot run at once; the second is told who
// holds it.
func TestSyncLease(t *testing.T) {
	t.Parallel()
	_, simURL := simWith(t, 250)
	d := dbtest.SQLite(t)
	ctx := t.Context()
	client := clientFor(t, d, simURL)
	first, second := follower.NewSyncer(d, nil, nil), follower.NewSyncer(d, nil, nil)
	var inner error
	_, err := first.Run(ctx, "main", client, follower.SyncOptions{Concurrency: 1, Progress: func(follower.SyncStatus) {
		if inner == nil {
			// Another run of the same Syncer is refused too.
			_, inner = first.Run(ctx, "main", client, follower.SyncOptions{})
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	var running *follower.SyncRunningError
	if !errors.As(inner, &running) || running.Holder == "" {
		t.Errorf("concurrent sync: %v", inner)
	}
	// Released at the end: the second can run now.
	if _, err := second.Run(ctx, "main", client, follower.SyncOptions{}); err != nil {
		t.Error(err)
	}
}

// A list that ends with a full page is complete once user/get's total is
// reached: no call for the empty page after it.
func TestSyncStopsAtTheTotal(t *testing.T) {
	t.Parallel()
	sim, simURL := simWith(t, 10000)
	d := dbtest.SQLite(t)
	st, err := follower.NewSyncer(d, nil, nil).Run(t.Context(), "main", clientFor(t, d, simURL), follower.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.CallCount(simOA, pathUserGet); n != 1 || st.Pages != 1 || st.Listed != 10000 || sim.CallCount(simOA, pathBatch) != 100 {
		t.Errorf("%d user/get calls, status %+v", n, st)
	}
}

// A sync whose holder crashed is resumed once its lease expired (the
// lease says nothing about processes, so wherever the holder ran); one
// whose lease still runs only with TakeOver.
func TestSyncTakeOver(t *testing.T) {
	t.Parallel()
	_, simURL := simWith(t, 120)
	d := dbtest.SQLite(t)
	ctx := t.Context()
	client := clientFor(t, d, simURL)
	syncer := follower.NewSyncer(d, nil, nil)
	if _, err := syncer.Run(ctx, "main", client, follower.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	leases := db.NewLeases(d, nil)
	holdUntil := func(holder string, until time.Time) {
		t.Helper()
		if _, err := d.ExecContext(ctx, `UPDATE follower_syncs SET status = 'running'`); err != nil {
			t.Fatal(err)
		}
		name := follower.SyncLeaseName("main")
		cur, _, err := leases.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := leases.TakeOver(ctx, name, cur.Holder, holder, time.Until(until)); !ok || err != nil {
			t.Fatalf("holding the lease for %s: %v %v", holder, ok, err)
		}
	}
	hold := func(holder string) { t.Helper(); holdUntil(holder, time.Now().Add(time.Hour)) }
	// A holder that crashed a while ago: its lease has run out.
	holdUntil("crashed.example-4242-0badc0de", time.Now().Add(-time.Second))
	if st, err := syncer.Run(ctx, "main", client, follower.SyncOptions{}); err != nil || !st.Resumed {
		t.Errorf("after a dead local holder: %+v, %v", st, err)
	}
	hold("elsewhere.example-4242-0badc0de")
	var running *follower.SyncRunningError
	if _, err := syncer.Run(ctx, "main", client, follower.SyncOptions{}); !errors.As(err, &running) || running.Holder != "elsewhere.example-4242-0badc0de" {
		t.Errorf("held elsewhere: %v", err)
	}
	if _, err := syncer.Run(ctx, "main", client, follower.SyncOptions{TakeOver: true}); err != nil {
		t.Errorf("take over: %v", err)
	}
}
