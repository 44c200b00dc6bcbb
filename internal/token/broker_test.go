package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechat"
)

// clock is a fake clock shared by the brokers and the fake WeChat.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeWeChat implements Fetcher with WeChat's token semantics: a stable
// token is handed back until its last 5 minutes; force_refresh and the
// classic endpoint issue a new one.
type fakeWeChat struct {
	now   func() time.Time
	delay time.Duration // widens race windows

	mu        sync.Mutex
	n         int
	stable    string
	stableExp time.Time
	err       error // returned by every call while set

	stableCalls, forceCalls, classicCalls atomic.Int32
}

func (f *fakeWeChat) newToken() string {
	f.n++
	return fmt.Sprintf("ACCESS-TOKEN-%03d", f.n)
}

func (f *fakeWeChat) GetStableToken(ctx context.Context, appID, secret string, force bool) (wechat.AccessToken, error) {
	if force {
		f.forceCalls.Add(1)
	} else {
		f.stableCalls.Add(1)
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return wechat.AccessToken{}, f.err
	}
	now := f.now()
	if force || f.stable == "" || f.stableExp.Sub(now) <= 5*time.Minute {
		f.stable, f.stableExp = f.newToken(), now.Add(7200*time.Second)
	}
	return wechat.AccessToken{Token: f.stable, ExpiresIn: f.stableExp.Sub(now).Truncate(time.Second), FetchedAt: now}, nil
}

func (f *fakeWeChat) GetToken(ctx context.Context, appID, secret string) (wechat.AccessToken, error) {
	f.classicCalls.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return wechat.AccessToken{}, f.err
	}
	return wechat.AccessToken{Token: f.newToken(), ExpiresIn: 7200 * time.Second, FetchedAt: f.now()}, nil
}

// foreignForceRefresh is another program force-refreshing the stable token.
func (f *fakeWeChat) foreignForceRefresh() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stable, f.stableExp = f.newToken(), f.now().Add(7200*time.Second)
	return f.stable
}

func (f *fakeWeChat) setErr(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }

func (f *fakeWeChat) upstream() int {
	return int(f.stableCalls.Load() + f.forceCalls.Load() + f.classicCalls.Load())
}

type bundle struct {
	db      *db.DB
	clock   *clock
	wechat  *fakeWeChat
	brokers []*Broker
}

var appSeq atomic.Int64

// setup returns n brokers of one account (distinct instances) sharing d.
func setup(t testing.TB, d *db.DB, n int, mode Mode) *bundle {
	t.Helper()
	c := newClock()
	f := &fakeWeChat{now: c.Now}
	appID := fmt.Sprintf("wxtest%010d", appSeq.Add(1))
	bd := &bundle{db: d, clock: c, wechat: f}
	for i := range n {
		b, err := New(d, f, Config{Account: "main", AppID: appID, AppSecret: "APP-SECRET", Mode: mode},
			Options{Now: c.Now, InstanceID: fmt.Sprintf("instance-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		bd.brokers = append(bd.brokers, b)
	}
	return bd
}

func mustToken(t testing.TB, b *Broker) string {
	t.Helper()
	tok, err := b.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenFetchedOnceAndShared(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 2, ModeStable)
		tok := mustToken(t, bd.brokers[0])
		for range 100 {
			if got := mustToken(t, bd.brokers[0]); got != tok {
				t.Fatalf("token changed to %s", got)
			}
		}
		// A second instance reads the database, not WeChat.
		if got := mustToken(t, bd.brokers[1]); got != tok {
			t.Fatalf("instance 2 got %s, want %s", got, tok)
		}
		if n := bd.wechat.upstream(); n != 1 {
			t.Fatalf("%d upstream calls, want 1", n)
		}
		cur, err := bd.brokers[1].Current(t.Context())
		if err != nil || cur.Version != 1 || !cur.ExpiresAt.Equal(bd.clock.Now().Add(7200*time.Second)) {
			t.Fatalf("Current = %+v, %v", cur, err)
		}
	})
}

// storm makes callers goroutines on every broker ask for a token at once
// and returns the number of upstream calls.
func storm(t testing.TB, bd *bundle, callers int) int {
	before := bd.wechat.upstream()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, callers)
	tokens := sync.Map{}
	for i := range callers {
		b := bd.brokers[i%len(bd.brokers)]
		wg.Go(func() {
			<-start
			tok, err := b.Token(context.Background())
			if err != nil {
				errs <- err
				return
			}
			tokens.Store(tok, true)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Token: %v", err)
	}
	n := 0
	tokens.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("callers got %d different tokens", n)
	}
	return bd.wechat.upstream() - before
}

func TestStormAtExpiry(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{ModeStable, ModeClassic} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				t.Parallel()
				bd := setup(t, d, 3, mode)
				bd.wechat.delay = 20 * time.Millisecond
				if n := storm(t, bd, 1000); n != 1 {
					t.Fatalf("first fetch: %d upstream calls, want 1", n)
				}
				// Every instance has the token in memory; now it expires.
				bd.clock.Advance(7200 * time.Second)
				if n := storm(t, bd, 1000); n != 1 {
					t.Fatalf("at expiry: %d upstream calls, want 1", n)
				}
			})
		})
	}
}

func TestInvalidateComparesAndRefreshes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 2, ModeClassic)
		ctx := t.Context()
		b0, b1 := bd.brokers[0], bd.brokers[1]
		old := mustToken(t, b0)
		mustToken(t, b1)

		// A token that is not current anymore changes nothing.
		if err := b0.Invalidate(ctx, "SOME-OLD-TOKEN"); err != nil {
			t.Fatal(err)
		}
		if n := bd.wechat.upstream(); n != 1 {
			t.Fatalf("%d upstream calls after invalidating a stale token", n)
		}
		// Many concurrent rejections of the current token: one refresh.
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if err := b0.Invalidate(ctx, old); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		fresh := mustToken(t, b0)
		if fresh == old || bd.wechat.upstream() != 2 {
			t.Fatalf("after invalidation: token %s, %d upstream calls", fresh, bd.wechat.upstream())
		}
		// The other instance, still holding the old token, gets the new one
		// from the database when its call fails.
		if err := b1.Invalidate(ctx, old); err != nil {
			t.Fatal(err)
		}
		if got := mustToken(t, b1); got != fresh || bd.wechat.upstream() != 2 {
			t.Fatalf("instance 2: %s (want %s), %d upstream calls", got, fresh, bd.wechat.upstream())
		}
		// Both instances read the same history: two tokens fetched, no error.
		for _, b := range []*Broker{b0, b1} {
			if h, err := b.History(ctx); err != nil || h.Refreshes != 2 || h.LastRefreshAt.IsZero() || h.LastError != "" {
				t.Fatalf("history = %+v, %v", h, err)
			}
		}
	})
}

func TestForeignRefreshRecovered(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 1, ModeStable)
		b := bd.brokers[0]
		old := mustToken(t, b)
		foreign := bd.wechat.foreignForceRefresh()
		// Our token is now rejected; a normal stable_token call picks up
		// the foreign one without a force refresh of our own.
		if err := b.Invalidate(t.Context(), old); err != nil {
			t.Fatal(err)
		}
		if got := mustToken(t, b); got != foreign {
			t.Fatalf("token %s, want the foreign %s", got, foreign)
		}
		if bd.wechat.forceCalls.Load() != 0 || bd.wechat.stableCalls.Load() != 2 {
			t.Fatalf("stable calls %d, force calls %d", bd.wechat.stableCalls.Load(), bd.wechat.forceCalls.Load())
		}
	})
}

func TestRejectionEscalation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 1, ModeStable)
		b, ctx := bd.brokers[0], t.Context()
		a := mustToken(t, b)

		// 1st rejection: WeChat hands the same stable token back.
		if err := b.Invalidate(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got := mustToken(t, b); got != a || bd.wechat.forceCalls.Load() != 0 {
			t.Fatalf("after 1st rejection: %s, force %d", got, bd.wechat.forceCalls.Load())
		}
		// 2nd rejection of that same token: force_refresh.
		bd.clock.Advance(time.Second)
		if err := b.Invalidate(ctx, a); err != nil {
			t.Fatal(err)
		}
		forced := mustToken(t, b)
		if forced == a || bd.wechat.forceCalls.Load() != 1 {
			t.Fatalf("after 2nd rejection: %s, force %d", forced, bd.wechat.forceCalls.Load())
		}
		// The force-refreshed token rejected at once: the breaker opens and
		// says why; WeChat is not called again.
		calls := bd.wechat.upstream()
		err := b.Invalidate(ctx, forced)
		var open *BreakerOpenError
		var fresh *FreshTokenRejectedError
		if !errors.As(err, &open) || !errors.As(err, &fresh) {
			t.Fatalf("err = %v, want an open breaker over FreshTokenRejectedError", err)
		}
		if !strings.Contains(err.Error(), "same AppSecret") || wechat.ClassOf(err) != wechat.ClassRetryable {
			t.Errorf("message/class: %v / %s", err, wechat.ClassOf(err))
		}
		if err := b.Invalidate(ctx, forced); !errors.As(err, &open) {
			t.Fatalf("second call: %v", err)
		}
		if bd.wechat.upstream() != calls {
			t.Fatalf("upstream called while the breaker is open")
		}
		// The valid token is still served meanwhile.
		if got := mustToken(t, b); got != forced {
			t.Fatalf("token while paused: %s", got)
		}
		if s := b.Status(); s.PausedUntil.IsZero() || !strings.Contains(s.PausedBecause, "AppSecret") {
			t.Errorf("Status = %+v", s)
		}
	})
}

func TestForceRefreshBudget(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 1, ModeStable)
		b, ctx := bd.brokers[0], t.Context()
		mustToken(t, b)
		now := bd.clock.Now()
		tests := []struct {
			name     string
			used     int
			last     time.Time
			wantDeny string
		}{
			{"spacing", 1, now.Add(-10 * time.Second), "needs 30s between two"},
			{"daily budget", 20, now.Add(-time.Hour), "20 force refreshes of today"},
			{"allowed", 19, now.Add(-31 * time.Second), ""},
		}
		for _, tt := range tests {
			_, err := d.ExecContext(ctx, `UPDATE tokens SET force_day = $1, force_count = $2, last_force_at = $3 WHERE app_id = $4`,
				wechat.QuotaDay(now), tt.used, db.Timestamp(tt.last), b.cfg.AppID)
			if err != nil {
				t.Fatal(err)
			}
			cur := b.cur.Load()
			b.cur.Store(&current{Token: cur.Token, origin: originReconfirmed})
			err = b.Invalidate(ctx, cur.Value)
			var fe *ForceRefreshError
			if tt.wantDeny != "" {
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.wantDeny) {
					t.Errorf("%s: err = %v", tt.name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			r, _ := b.st.load(ctx)
			if r.ForceCount != 20 {
				t.Errorf("force_count = %d, want 20", r.ForceCount)
			}
		}
		if n := bd.wechat.forceCalls.Load(); n != 1 {
			t.Fatalf("%d force calls, want 1", n)
		}
	})
}

func TestBreakerOnFetchError(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 2, ModeStable)
		ctx := t.Context()
		bd.wechat.setErr(&wechat.APIError{Code: 40164, Path: "/cgi-bin/stable_token",
			Msg: "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist"})

		_, err := bd.brokers[0].Token(ctx)
		var open *BreakerOpenError
		var apiErr *wechat.APIError
		if !errors.As(err, &open) || !errors.As(err, &apiErr) || apiErr.Code != 40164 {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "203.0.113.9") || !strings.Contains(err.Error(), "IP白名单") {
			t.Errorf("message does not say which IP to add where: %v", err)
		}
		// Paused: no more calls from this instance.
		for range 5 {
			if _, err := bd.brokers[0].Token(ctx); !errors.As(err, &open) {
				t.Fatalf("err = %v", err)
			}
		}
		// The other instance reads the failure from the row instead of calling.
		_, err = bd.brokers[1].Token(ctx)
		if n := bd.wechat.upstream(); n != 1 {
			t.Fatalf("%d upstream calls, want 1 (err %v)", n, err)
		}
		// After the pause, the next attempt goes out and succeeds.
		bd.wechat.setErr(nil)
		bd.clock.Advance(61 * time.Second)
		if _, err := bd.brokers[0].Token(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoserReportsWinnersError(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 1, ModeStable)
		b, ctx := bd.brokers[0], t.Context()
		other := store{db: d, appID: b.cfg.AppID, mode: ModeStable}
		if ok, err := other.acquire(ctx, "other-instance", bd.clock.Now(), time.Minute); !ok || err != nil {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		waiting := make(chan struct{})
		var once sync.Once
		b.onWait = func() { once.Do(func() { close(waiting) }) }
		done := make(chan error, 1)
		go func() { _, err := b.Token(ctx); done <- err }()
		<-waiting
		if err := other.release(ctx, "other-instance", bd.clock.Now(), "wechat /cgi-bin/stable_token: errcode -1: system error", -1); err != nil {
			t.Fatal(err)
		}
		err := <-done
		var re *RefreshError
		if !errors.As(err, &re) || !re.Remote || wechat.ClassOf(err) != wechat.ClassRetryable {
			t.Fatalf("err = %v", err)
		}
		if n := bd.wechat.upstream(); n != 0 {
			t.Fatalf("the waiting instance called WeChat %d times", n)
		}
		// The console shows the failure from the shared row.
		h, err := b.History(ctx)
		if err != nil || h.Refreshes != 0 || h.LastErrcode != -1 || !strings.Contains(h.LastError, "system error") || h.LastErrorAt.IsZero() {
			t.Fatalf("history = %+v, %v", h, err)
		}
	})
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 1, ModeStable)
		b, ctx := bd.brokers[0], t.Context()
		dead := store{db: d, appID: b.cfg.AppID, mode: ModeStable}
		if ok, _ := dead.acquire(ctx, "crashed-instance", bd.clock.Now(), 30*time.Second); !ok {
			t.Fatal("acquire")
		}
		go func() { time.Sleep(50 * time.Millisecond); bd.clock.Advance(31 * time.Second) }()
		if _, err := b.Token(ctx); err != nil {
			t.Fatal(err)
		}
		if n := bd.wechat.upstream(); n != 1 {
			t.Fatalf("%d upstream calls", n)
		}
	})
}

func TestBackgroundSchedule(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		bd := setup(t, d, 2, ModeStable)
		ctx := t.Context()
		b0, b1 := bd.brokers[0], bd.brokers[1]
		wait, err := b0.RefreshIfDue(ctx)
		if err != nil || wait != maxCheck {
			t.Fatalf("first step: wait %s, %v", wait, err)
		}
		first := mustToken(t, b0)
		// Just before the margin: nothing to do, wake at the margin.
		bd.clock.Advance(7200*time.Second - DefaultRefreshMargin - 30*time.Second)
		if wait, _ := b0.RefreshIfDue(ctx); wait != 30*time.Second {
			t.Fatalf("wait %s, want 30s", wait)
		}
		// At the margin (4 min left, inside WeChat's 5-minute rotation
		// window): a new stable token, before any caller needs one.
		bd.clock.Advance(30 * time.Second)
		if _, err := b0.RefreshIfDue(ctx); err != nil {
			t.Fatal(err)
		}
		second := mustToken(t, b0)
		if second == first || bd.wechat.upstream() != 2 {
			t.Fatalf("no rotation at the margin: %s, %d calls", second, bd.wechat.upstream())
		}
		// The other instance still serves the old (valid) token from memory
		// until its own loop step reads the row.
		if _, err := b1.RefreshIfDue(ctx); err != nil {
			t.Fatal(err)
		}
		if got := mustToken(t, b1); got != second || bd.wechat.upstream() != 2 {
			t.Fatalf("instance 2: %s, %d calls", got, bd.wechat.upstream())
		}
	})
}

func TestStableSameTokenRetriesLater(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	bd := setup(t, d, 1, ModeStable)
	b, ctx := bd.brokers[0], t.Context()
	mustToken(t, b)
	// WeChat's clock is 2 minutes behind ours: at our margin it still has
	// 6 minutes left and hands back the same token.
	bd.wechat.mu.Lock()
	bd.wechat.stableExp = bd.wechat.stableExp.Add(2 * time.Minute)
	bd.wechat.mu.Unlock()
	bd.clock.Advance(7200*time.Second - DefaultRefreshMargin)
	wait, err := b.RefreshIfDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.cur.Load(); got.Version != 1 || wait > maxCheck {
		t.Fatalf("version %d, wait %s", got.Version, wait)
	}
	// The corrected expiry says 6 min left: not due, so no 15 s retry.
	if wait != maxCheck {
		t.Fatalf("wait %s, want %s", wait, maxCheck)
	}
}

func TestMarginCappedInStableMode(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	tests := []struct {
		mode   Mode
		margin time.Duration
		want   time.Duration
	}{
		{ModeStable, 0, DefaultRefreshMargin},
		{ModeStable, 10 * time.Minute, MaxStableRefreshMargin},
		{ModeClassic, 10 * time.Minute, 10 * time.Minute},
	}
	for _, tt := range tests {
		b, err := New(d, &fakeWeChat{}, Config{Account: "a", AppID: "wx1", AppSecret: "s", Mode: tt.mode, RefreshMargin: tt.margin}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if b.margin != tt.want {
			t.Errorf("%s %s: margin %s, want %s", tt.mode, tt.margin, b.margin, tt.want)
		}
	}
	if _, err := ParseMode("weekly"); err == nil {
		t.Error("ParseMode accepted weekly")
	}
}
