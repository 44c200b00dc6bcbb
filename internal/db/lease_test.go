package db_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// clock is a settable clock shared by the Leases of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// eachLeases runs a lease test on SQLite and PostgreSQL, in parallel, with
// leases on a fake clock.
func eachLeases(t *testing.T, test func(t *testing.T, d *db.DB, l *db.Leases, clk *clock)) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		clk := newClock()
		test(t, d, db.NewLeases(d, clk.Now), clk)
	})
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Many instances race for one free lease: exactly one gets it, every
// other one is told who did.
func TestLeaseRace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock()
		const holders = 32
		for round := range 3 {
			name := fmt.Sprintf("race-%d", round)
			var (
				wins    atomic.Int32
				winner  atomic.Value
				start   = make(chan struct{})
				wg      sync.WaitGroup
				errs    = make(chan error, holders)
				seenBad atomic.Value
			)
			for i := range holders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// One Leases per instance, as each process has its own.
					l := db.NewLeases(d, clk.Now)
					me := fmt.Sprintf("instance-%d", i)
					<-start
					cur, ok, err := l.Acquire(ctx, name, me, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						wins.Add(1)
						winner.Store(me)
						if cur.Holder != me {
							seenBad.Store(fmt.Sprintf("winner %s told holder %q", me, cur.Holder))
						}
					} else if cur.Holder == me || cur.Holder == "" {
						seenBad.Store(fmt.Sprintf("loser %s told holder %q", me, cur.Holder))
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d holders got the lease, want exactly 1", round, n)
			}
			if bad := seenBad.Load(); bad != nil {
				t.Errorf("round %d: %s", round, bad)
			}
			cur, held, err := db.NewLeases(d, clk.Now).Get(ctx, name)
			if err != nil || !held || cur.Holder != winner.Load().(string) {
				t.Errorf("round %d: stored lease %+v held=%v (%v), winner %v", round, cur, held, err, winner.Load())
			}
		}
	})
}

// Many instances race for a lease that just expired: exactly one takes it.
func TestLeaseRaceForExpired(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock()
		if _, ok, err := db.NewLeases(d, clk.Now).Acquire(ctx, "job", "crashed", 30*time.Second); !ok || err != nil {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		clk.Advance(30 * time.Second)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, ok, err := db.NewLeases(d, clk.Now).Acquire(ctx, "job", fmt.Sprintf("instance-%d", i), 30*time.Second)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d instances took the expired lease, want 1", n)
		}
	})
}

func TestLeaseLifecycle(t *testing.T) {
	eachLeases(t, func(t *testing.T, d *db.DB, l *db.Leases, clk *clock) {
		ctx := t.Context()
		t0 := clk.Now()

		cur, ok, err := l.Acquire(ctx, "job", "a", time.Minute)
		if err != nil || !ok || cur.Holder != "a" || !cur.ExpiresAt.Equal(t0.Add(time.Minute)) || !cur.AcquiredAt.Equal(t0) {
			t.Fatalf("first acquire: %+v %v %v", cur, ok, err)
		}
		// Held: another holder is refused and told who holds it until when.
		clk.Advance(59 * time.Second)
		cur, ok, err = l.Acquire(ctx, "job", "b", time.Minute)
		if err != nil || ok || cur.Holder != "a" || !cur.ExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("acquire by b while a holds it: %+v %v %v", cur, ok, err)
		}
		// The holder acquiring again extends it and keeps its start.
		cur, ok, err = l.Acquire(ctx, "job", "a", time.Minute)
		if err != nil || !ok || !cur.ExpiresAt.Equal(t0.Add(119*time.Second)) || !cur.AcquiredAt.Equal(t0) {
			t.Fatalf("re-acquire by a: %+v %v %v", cur, ok, err)
		}

		// Renew by the holder extends it: still held past the first expiry.
		clk.Advance(50 * time.Second)
		if ok, err := l.Renew(ctx, "job", "a", time.Minute); !ok || err != nil {
			t.Fatalf("renew by a: %v %v", ok, err)
		}
		clk.Advance(50 * time.Second) // 159 s: past the expiry before the renewal
		if cur, held, err := l.Get(ctx, "job"); err != nil || !held || cur.Holder != "a" {
			t.Fatalf("after renew: %+v held=%v %v", cur, held, err)
		}
		if _, ok, _ := l.Acquire(ctx, "job", "b", time.Minute); ok {
			t.Fatal("b took a renewed lease")
		}
		// Renew by a non-holder fails and changes nothing.
		if ok, err := l.Renew(ctx, "job", "b", time.Hour); ok || err != nil {
			t.Fatalf("renew by b: %v %v", ok, err)
		}
		if cur, _, _ := l.Get(ctx, "job"); cur.Holder != "a" || !cur.ExpiresAt.Equal(t0.Add(169*time.Second)) {
			t.Fatalf("after b's renew: %+v", cur)
		}
		// Release by a non-holder does nothing; by the holder frees it.
		if ok, err := l.Release(ctx, "job", "b"); ok || err != nil {
			t.Fatalf("release by b: %v %v", ok, err)
		}
		if _, held, _ := l.Get(ctx, "job"); !held {
			t.Fatal("b's release freed a's lease")
		}
		if ok, err := l.Release(ctx, "job", "a"); !ok || err != nil {
			t.Fatalf("release by a: %v %v", ok, err)
		}
		if _, held, err := l.Get(ctx, "job"); held || err != nil {
			t.Fatalf("released lease still held (%v)", err)
		}
		if ok, _ := l.Renew(ctx, "job", "a", time.Minute); ok {
			t.Fatal("renewed a released lease")
		}
		// Free again: anyone gets it at once.
		if cur, ok, err := l.Acquire(ctx, "job", "b", time.Minute); !ok || err != nil || cur.Holder != "b" {
			t.Fatalf("acquire after release: %+v %v %v", cur, ok, err)
		}
		// Leases of other names are independent.
		if _, ok, err := l.Acquire(ctx, "other", "a", time.Minute); !ok || err != nil {
			t.Fatalf("another name: %v %v", ok, err)
		}
	})
}

// A crashed holder stops renewing: once its lease expired another holder
// takes it, and the crashed one's late renewal fails.
func TestLeaseExpiredIsTakenOver(t *testing.T) {
	eachLeases(t, func(t *testing.T, d *db.DB, l *db.Leases, clk *clock) {
		ctx := t.Context()
		if _, ok, _ := l.Acquire(ctx, "job", "crashed", 30*time.Second); !ok {
			t.Fatal("acquire")
		}
		clk.Advance(29 * time.Second)
		if _, ok, _ := l.Acquire(ctx, "job", "b", 30*time.Second); ok {
			t.Fatal("taken before it expired")
		}
		clk.Advance(time.Second)
		if _, held, _ := l.Get(ctx, "job"); held {
			t.Fatal("Get says an expired lease is held")
		}
		cur, ok, err := l.Acquire(ctx, "job", "b", 30*time.Second)
		if err != nil || !ok || cur.Holder != "b" || !cur.AcquiredAt.Equal(clk.Now()) {
			t.Fatalf("acquire of the expired lease: %+v %v %v", cur, ok, err)
		}
		if ok, _ := l.Renew(ctx, "job", "crashed", time.Minute); ok {
			t.Fatal("the crashed holder renewed a lease taken over")
		}
		if ok, _ := l.Release(ctx, "job", "crashed"); ok {
			t.Fatal("the crashed holder released a lease taken over")
		}
	})
}

// TakeOver takes a lease its holder still has (it crashed elsewhere), but
// only from the holder named: of two take-overs one wins.
func TestLeaseTakeOver(t *testing.T) {
	eachLeases(t, func(t *testing.T, d *db.DB, l *db.Leases, clk *clock) {
		ctx := t.Context()
		if _, ok, _ := l.Acquire(ctx, "job", "crashed", time.Hour); !ok {
			t.Fatal("acquire")
		}
		if _, ok, _ := l.TakeOver(ctx, "job", "someone-else", "b", time.Minute); ok {
			t.Fatal("took over from a holder that does not hold it")
		}
		cur, ok, err := l.TakeOver(ctx, "job", "crashed", "b", time.Minute)
		if err != nil || !ok || cur.Holder != "b" || !cur.ExpiresAt.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("take over: %+v %v %v", cur, ok, err)
		}
		if ok, _ := l.Renew(ctx, "job", "crashed", time.Hour); ok {
			t.Fatal("the old holder renewed after the take-over")
		}
		// A second take-over of the same old holder loses.
		cur, ok, err = l.TakeOver(ctx, "job", "crashed", "c", time.Minute)
		if err != nil || ok || cur.Holder != "b" {
			t.Fatalf("second take over: %+v %v %v", cur, ok, err)
		}
		// Concurrent take-overs of one holder: exactly one wins.
		if _, ok, _ := l.TakeOver(ctx, "job", "b", "stuck", time.Hour); !ok {
			t.Fatal("take over from b")
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, ok, err := db.NewLeases(d, clk.Now).TakeOver(ctx, "job", "stuck", fmt.Sprintf("rescuer-%d", i), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d concurrent take-overs won, want 1", n)
		}
		// A free lease is simply taken.
		if _, ok, err := l.TakeOver(ctx, "free", "nobody", "d", time.Minute); !ok || err != nil {
			t.Fatalf("take over of a free lease: %v %v", ok, err)
		}
	})
}

// In a transaction, a write is made only while the lease is held: the
// renewal locks the lease, so a take-over waits for the commit.
func TestLeaseInTransaction(t *testing.T) {
	eachLeases(t, func(t *testing.T, d *db.DB, l *db.Leases, clk *clock) {
		ctx := t.Context()
		if _, ok, _ := l.Acquire(ctx, "job", "a", time.Minute); !ok {
			t.Fatal("acquire")
		}
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := l.In(tx).Renew(ctx, "job", "b", time.Minute); ok || err != nil {
			t.Fatalf("renew by b in tx: %v %v", ok, err)
		}
		if ok, err := l.In(tx).Renew(ctx, "job", "a", 2*time.Minute); !ok || err != nil {
			t.Fatalf("renew by a in tx: %v %v", ok, err)
		}
		if ok, err := l.In(tx).Release(ctx, "job", "a"); !ok || err != nil {
			t.Fatalf("release by a in tx: %v %v", ok, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		// Rolled back: still a's, with the first expiry.
		if cur, held, _ := l.Get(ctx, "job"); !held || cur.Holder != "a" || !cur.ExpiresAt.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("after rollback: %+v held=%v", cur, held)
		}
	})
}
