package token

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// BenchmarkTokenRead measures Token served from memory, from all
// GOMAXPROCS goroutines at once; it fails if a read reaches WeChat.
func BenchmarkTokenRead(b *testing.B) {
	d := dbtest.SQLite(b)
	bd := setup(b, d, 1, ModeStable)
	br := bd.brokers[0]
	br.now = time.Now // the real clock, as in production
	bd.wechat.now = time.Now
	if _, err := br.Token(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := b.Context()
		for pb.Next() {
			if _, err := br.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := bd.wechat.upstream(); n != 1 {
		b.Fatalf("%d upstream calls, want 1", n)
	}
}

// BenchmarkRefreshStorm: each iteration is one refresh window: the token
// expires and 1000 callers spread over N instances sharing one database
// ask for it at once. upstream/window must be 1 whatever N.
func BenchmarkRefreshStorm(b *testing.B) {
	dialects := []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}}
	for _, dl := range dialects {
		for _, n := range []int{1, 3, 10} {
			b.Run(fmt.Sprintf("%s/instances=%d", dl.name, n), func(b *testing.B) {
				d := dl.open(b)
				bd := setup(b, d, n, ModeStable)
				bd.wechat.delay = 5 * time.Millisecond // a WeChat round trip, shortened
				storm(b, bd, 1000)
				before := bd.wechat.upstream()
				b.ResetTimer()
				for b.Loop() {
					bd.clock.Advance(7200 * time.Second)
					storm(b, bd, 1000)
				}
				b.StopTimer()
				windows := float64(b.N)
				b.ReportMetric(float64(bd.wechat.upstream()-before)/windows, "upstream/window")
				if got := bd.wechat.upstream() - before; got != b.N {
					b.Fatalf("%d upstream calls in %d windows", got, b.N)
				}
			})
		}
	}
}
