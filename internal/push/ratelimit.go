package push

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/wxgate/wxgate/internal/db"
)

// limiter paces the sends of each account, so a burst of sends does not
// trip WeChat's limits. wait returns once the account may send once more,
// or a snooze (river.JobSnooze) when its turn is too far away to hold a
// worker for it.
type limiter interface {
	wait(ctx context.Context, account string) error
}

// maxLimiterWait is the longest a worker sleeps for its turn; beyond it
// the job gives its turn back and is snoozed.
const maxLimiterWait = 10 * time.Second

// newLimiter is the database's token bucket on PostgreSQL, where several
// instances share the rate, and one in the process on SQLite (one instance
// per file).
func newLimiter(d *db.DB, perSecond float64, burst int) limiter {
	if perSecond < 0 {
		return unlimited{}
	}
	if d.Dialect == db.Postgres {
		return &dbLimiter{db: d, rate: perSecond, burst: float64(burst)}
	}
	return newLocalLimiter(perSecond, burst)
}

type unlimited struct{}

func (unlimited) wait(context.Context, string) error { return nil }

// localLimiter holds one token bucket per account in this process.
type localLimiter struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLocalLimiter(perSecond float64, burst int) *localLimiter {
	return &localLimiter{rate: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *localLimiter) wait(ctx context.Context, account string) error {
	l.mu.Lock()
	lim, ok := l.m[account]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[account] = lim
	}
	l.mu.Unlock()
	return lim.Wait(ctx)
}

// dbLimiter keeps each account's token bucket in the database
// (db.TakeToken), shared by every instance; a negative balance is a
// reservation: the caller waits until the bucket has refilled to it.
type dbLimiter struct {
	db    *db.DB
	rate  float64
	burst float64
}

func (l *dbLimiter) wait(ctx context.Context, account string) error {
	tokens, err := l.db.TakeToken(ctx, account, l.rate, l.burst)
	if err != nil {
		return fmt.Errorf("push: send rate of account %q: %w", account, err)
	}
	if tokens >= 0 {
		return nil
	}
	d := time.Duration(math.Ceil(-tokens / l.rate * float64(time.Second)))
	if d > maxLimiterWait {
		if err := l.giveBack(ctx, account); err != nil {
			return err
		}
		return river.JobSnooze(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// The turn is lost: the bucket stays one token lower, which errs
		// on the safe side.
		return ctx.Err()
	}
}

// giveBack returns a token taken but not used.
func (l *dbLimiter) giveBack(ctx context.Context, account string) error {
	if err := l.db.GiveBackToken(ctx, account); err != nil {
		return fmt.Errorf("push: send rate of account %q: %w", account, err)
	}
	return nil
}
