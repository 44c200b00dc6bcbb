package auth

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wxgate/wxgate/internal/db"
)

// KeyLimiter holds a token bucket per API key: in the database when
// shared is set (PostgreSQL: the rate holds across every instance), in
// this process otherwise. A rate of 0 or below limits nothing.
type KeyLimiter struct {
	name   string // prefix of the shared buckets' names, one budget per use
	rate   rate.Limit
	burst  int
	shared *db.DB
	log    *slog.Logger

	mu sync.Mutex
	m  map[int64]*rate.Limiter
}

// NewKeyLimiter limits each key to perSecond requests (burst at once; twice
// the rate when burst ≤ 0). name keeps the buckets of one use (the API,
// the proxy) apart from another's in the shared table.
func NewKeyLimiter(name string, perSecond float64, burst int, shared *db.DB, log *slog.Logger) *KeyLimiter {
	if burst <= 0 {
		burst = max(int(perSecond*2), 1)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KeyLimiter{name: name, rate: rate.Limit(perSecond), burst: burst, shared: shared, log: log, m: map[int64]*rate.Limiter{}}
}

// Rate is the limit per key and second.
func (l *KeyLimiter) Rate() float64 { return float64(l.rate) }

// Allow takes a token for key id; when none is left it says how long to
// wait, and takes nothing.
func (l *KeyLimiter) Allow(ctx context.Context, id int64) (wait time.Duration, limited bool) {
	if l == nil || l.rate <= 0 {
		return 0, false
	}
	if l.shared != nil {
		bucket := l.name + ":" + strconv.FormatInt(id, 10)
		tokens, err := l.shared.TakeToken(ctx, bucket, float64(l.rate), float64(l.burst))
		if err != nil {
			// The request needs the database anyway; a failed take does
			// not refuse it.
			l.log.Warn("auth: key rate limit not applied", "err", err)
			return 0, false
		}
		if tokens >= 0 {
			return 0, false
		}
		if err := l.shared.GiveBackToken(ctx, bucket); err != nil {
			l.log.Warn("auth: key rate limit token not given back", "err", err)
		}
		return time.Duration(math.Ceil(-tokens / float64(l.rate) * float64(time.Second))), true
	}
	l.mu.Lock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[id] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, true
	}
	return 0, false
}
