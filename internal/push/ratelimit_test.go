package push

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// BenchmarkRateLimiter is the cost of taking one send token: in the
// process (SQLite, one instance) and from the bucket row in PostgreSQL
// (every instance), one goroutine and 50 in parallel (a process's push
// workers) on one account. The rate is high enough never to wait.
func BenchmarkRateLimiter(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, l limiter) {
		b.Run("serial", func(b *testing.B) {
			for b.Loop() {
				if err := l.wait(ctx, "main"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel50", func(b *testing.B) {
			b.SetParallelism(25) // × GOMAXPROCS 2 = 50 goroutines here
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.wait(ctx, "main"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("process", func(b *testing.B) { run(b, newLocalLimiter(1e12, 1e9)) })
	b.Run("postgres", func(b *testing.B) {
		d := dbtest.Postgres(b)
		run(b, newLimiter(d, 1e12, 1e9))
	})
}

// The PostgreSQL bucket makes a caller wait once the burst is spent, and
// gives the turn back with a snooze when it is too far away.
func TestDBLimiterWaitsAndSnoozes(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	ctx := context.Background()
	l := newLimiter(d, 0.05, 2) // one token every 20 s
	for range 2 {
		if err := l.wait(ctx, "main"); err != nil {
			t.Fatalf("within the burst: %v", err)
		}
	}
	var snooze *rivertype.JobSnoozeError
	if err := l.wait(ctx, "main"); !errors.As(err, &snooze) || snooze.Duration < 19*time.Second || snooze.Duration > 21*time.Second {
		t.Fatalf("past the burst at 1 per 20 s: %v, want a snooze of about 20 s", err)
	}
	var tokens float64
	if err := d.QueryRowContext(ctx, `SELECT tokens FROM push_rate_buckets WHERE account = 'main'`).Scan(&tokens); err != nil {
		t.Fatal(err)
	}
	if tokens < -0.01 || tokens > 0.1 {
		t.Errorf("tokens after the snooze = %v, want ≈0 (the turn given back)", tokens)
	}
}
