package push

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// limiters hold one token bucket per account, so a burst of sends does
// not trip WeChat's limits. They are per process: with several instances
// each gets the rate.
type limiters struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	l := rate.Limit(perSecond)
	if perSecond < 0 {
		l = rate.Inf
	}
	return &limiters{rate: l, burst: burst, m: map[string]*rate.Limiter{}}
}

// wait blocks until the account may send once more.
func (l *limiters) wait(ctx context.Context, account string) error {
	if l.rate == rate.Inf {
		return nil
	}
	l.mu.Lock()
	lim, ok := l.m[account]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[account] = lim
	}
	l.mu.Unlock()
	return lim.Wait(ctx)
}
