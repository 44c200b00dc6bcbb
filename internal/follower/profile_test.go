package follower_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/wechat"
)

// tick is a clock that advances a millisecond at every reading, as a real
// one would between writes.
type tick struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tick) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func tickingStore(d *db.DB) *follower.Store {
	c := &tick{t: time.Unix(base+1000, 0)}
	return follower.NewStore(d, c.Now)
}

func profile(openid string, subscribeTime int64) *wechat.UserInfo {
	return &wechat.UserInfo{
		Subscribe: 1, OpenID: openid, UnionID: "u-" + openid, Language: "en", Remark: "VIP",
		SubscribeTime: wechat.Int64(subscribeTime), TagIDs: []wechat.Int64{2, 102},
		SubscribeScene: follower.SceneQRCode, QRSceneStr: "S-1024",
	}
}

func TestApplyProfile(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := tickingStore(d)
		ctx := t.Context()
		apply := func(m *wechat.Message) {
			t.Helper()
			if err := s.ApplyEvent(ctx, "main", m); err != nil {
				t.Fatal(err)
			}
		}
		get := func(openid string) follower.Follower {
			t.Helper()
			f, err := s.Get(ctx, "main", openid)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		store := func(openid string, info *wechat.UserInfo, calledAt int64, between func()) follower.ProfileOutcome {
			t.Helper()
			snap, err := s.Snapshot(ctx, "main", openid)
			if err != nil {
				t.Fatal(err)
			}
			if between != nil {
				between()
			}
			out, err := s.ApplyProfile(ctx, "main", snap, info, time.Unix(calledAt, 0))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}

		t.Run("unchanged row gets the whole profile", func(t *testing.T) {
			apply(event(wechat.EventSubscribe, "o1", base, "qrscene_S-1024", "T1"))
			if out := store("o1", profile("o1", base), base+1, nil); out != follower.ProfileApplied {
				t.Errorf("outcome %s", out)
			}
			f := get("o1")
			if !f.Subscribed || f.UnionID != "u-o1" || f.Language != "en" || f.Remark != "VIP" || !slices.Equal(f.TagIDs, []int64{2, 102}) ||
				f.SubscribeScene != follower.SceneQRCode || f.QRSceneStr != "S-1024" || f.QRScene != nil ||
				f.SubscribedAt.Unix() != base || f.ProfileFetchedAt == nil || f.LastTicket != "T1" {
				t.Errorf("after the profile: %+v", f)
			}
		})

		t.Run("subscribe_time and scene from user/info win over the event's", func(t *testing.T) {
			apply(event(wechat.EventSubscribe, "o2", base, "", ""))
			info := profile("o2", base-1)
			info.SubscribeScene, info.QRSceneStr = "ADD_SCENE_SEARCH", ""
			store("o2", info, base+1, nil)
			if f := get("o2"); f.SubscribedAt.Unix() != base-1 || f.SubscribeScene != "ADD_SCENE_SEARCH" {
				t.Errorf("subscribed_at %v scene %q", f.SubscribedAt, f.SubscribeScene)
			}
		})

		t.Run("an unsubscribe during the call is not undone", func(t *testing.T) {
			apply(event(wechat.EventSubscribe, "o3", base, "", ""))
			out := store("o3", profile("o3", base), base+1, func() {
				apply(event(wechat.EventUnsubscribe, "o3", base+2, "", ""))
			})
			if out != follower.ProfileOnly {
				t.Errorf("outcome %s, want %s", out, follower.ProfileOnly)
			}
			f := get("o3")
			if f.Subscribed || f.UnsubscribedAt.Unix() != base+2 || f.UnionID != "u-o3" || f.Language != "en" || f.SubscribeScene != "" {
				t.Errorf("after a stale profile: %+v", f)
			}
		})

		t.Run("WeChat says the follower left", func(t *testing.T) {
			apply(event(wechat.EventSubscribe, "o4", base, "", ""))
			left := &wechat.UserInfo{Subscribe: 0, OpenID: "o4", UnionID: "u-o4"}
			if out := store("o4", left, base+50, nil); out != follower.ProfileNotFollowing {
				t.Errorf("outcome %s", out)
			}
			f := get("o4")
			if f.Subscribed || f.UnsubscribedAt == nil || f.UnsubscribedAt.Unix() != base+50 || f.UnionID != "u-o4" {
				t.Errorf("after subscribe=0: %+v", f)
			}
			// A follow after the call still applies.
			apply(event(wechat.EventSubscribe, "o4", base+50, "", ""))
			if f := get("o4"); !f.Subscribed {
				t.Errorf("a later follow is refused: %+v", f)
			}
		})

		t.Run("no row: a follower is added, a non-follower is not", func(t *testing.T) {
			if out := store("o5", profile("o5", base), base+1, nil); out != follower.ProfileApplied {
				t.Errorf("outcome %s", out)
			}
			if f := get("o5"); !f.Subscribed || f.SubscribedAt.Unix() != base || f.UnionID != "u-o5" {
				t.Errorf("added: %+v", f)
			}
			if out := store("o6", &wechat.UserInfo{OpenID: "o6"}, base+1, nil); out != follower.ProfileNoFollower {
				t.Errorf("outcome %s", out)
			}
			if _, err := s.Get(ctx, "main", "o6"); !errors.Is(err, follower.ErrNotFound) {
				t.Errorf("a non-follower was added: %v", err)
			}
		})

		t.Run("a row created during the call keeps the event's state", func(t *testing.T) {
			out := store("o7", profile("o7", base), base+1, func() {
				apply(event(wechat.EventUnsubscribe, "o7", base+2, "", ""))
			})
			if f := get("o7"); out != follower.ProfileOnly || f.Subscribed || f.UnionID != "u-o7" {
				t.Errorf("outcome %s, row %+v", out, f)
			}
		})

		t.Run("no unionid keeps the known one", func(t *testing.T) {
			info := profile("o1", base)
			info.UnionID = ""
			store("o1", info, base+3, nil)
			if f := get("o1"); f.UnionID != "u-o1" {
				t.Errorf("unionid %q", f.UnionID)
			}
		})
	})
}

// A follower that never had a profile reads as no tags, not null.
func TestGetWithoutProfile(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	s := tickingStore(d)
	ctx := context.Background()
	if err := s.ApplyEvent(ctx, "main", event(wechat.EventSubscribe, "o1", base, "", "")); err != nil {
		t.Fatal(err)
	}
	f, err := s.Get(ctx, "main", "o1")
	if err != nil || f.TagIDs == nil || len(f.TagIDs) != 0 || f.ProfileFetchedAt != nil {
		t.Errorf("%+v, %v", f, err)
	}
}
