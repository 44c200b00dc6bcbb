package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Breaker pauses: 1 min after the first trip, doubling up to 30 min.
const (
	breakerFirstPause = time.Minute
	breakerMaxPause   = 30 * time.Minute
)

// breaker stops token refreshes for a while when they cannot succeed.
type breaker struct {
	mu     sync.Mutex
	until  time.Time
	reason error
	trips  int
}

// check returns a *BreakerOpenError while the breaker is open.
func (k *breaker) check(now time.Time, account string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.reason != nil && now.Before(k.until) {
		return &BreakerOpenError{Account: account, Until: k.until, Reason: k.reason}
	}
	return nil
}

// openUntil opens the breaker until a given time, without counting a trip
// (another instance tripped over the reason).
func (k *breaker) openUntil(until time.Time, account string, reason error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if until.After(k.until) {
		k.until = until
	}
	k.reason = reason
	return &BreakerOpenError{Account: account, Until: k.until, Reason: reason}
}

// open trips the breaker for reason and returns the error callers get.
func (k *breaker) open(now time.Time, account string, reason error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	pause := breakerFirstPause << min(k.trips, 5)
	k.trips++
	k.until = now.Add(min(pause, breakerMaxPause))
	k.reason = reason
	return &BreakerOpenError{Account: account, Until: k.until, Reason: reason}
}

func (k *breaker) reset() {
	k.mu.Lock()
	k.trips, k.until, k.reason = 0, time.Time{}, nil
	k.mu.Unlock()
}

func (k *breaker) state(now time.Time) (time.Time, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.reason != nil && now.Before(k.until) {
		return k.until, k.reason
	}
	return time.Time{}, nil
}

// opensBreaker reports whether a failed token fetch is one that retrying
// cannot fix soon: a wrong secret or appid, an IP not in the whitelist, a
// frozen secret, a used-up quota, an IP awaiting the admin's confirmation.
func opensBreaker(err error) bool {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return opensBreakerCode(apiErr.Code)
}

func opensBreakerCode(code int) bool {
	if code == 0 {
		return false
	}
	c := wechat.ClassOfCode(code)
	return c == wechat.ClassPermanent || c == wechat.ClassQuota || c == wechat.ClassTokenInvalid
}

// BreakerOpenError is returned while token refreshes are paused.
type BreakerOpenError struct {
	Account string
	Until   time.Time
	Reason  error
}

func (e *BreakerOpenError) Error() string {
	return fmt.Sprintf("token refreshes for account %q are paused until %s (暂停刷新 access_token 至 %s): %v",
		e.Account, e.Until.UTC().Format(time.RFC3339), e.Until.In(wechat.BeijingTime).Format("15:04:05"), e.Reason)
}

func (e *BreakerOpenError) Unwrap() error { return e.Reason }

// Class is retryable: the pause ends by itself; callers should back off.
func (e *BreakerOpenError) Class() wechat.ErrorClass { return wechat.ClassRetryable }

// As presents the pause as 503 token_refresh_paused, to retry when it ends.
func (e *BreakerOpenError) As(target any) bool {
	return problem.Present(target, &problem.Error{Kind: problem.Unavailable, Code: "token_refresh_paused",
		Message: e.Error(), RetryAfter: max(time.Until(e.Until), time.Second)})
}

// FreshTokenRejectedError: WeChat rejected a token that had just been
// fetched because the previous one was rejected.
type FreshTokenRejectedError struct {
	Account string
	Version int64
	Age     time.Duration
}

func (e *FreshTokenRejectedError) Error() string {
	return fmt.Sprintf("WeChat rejected the access_token of account %q (version %d) only %s after fetching it to replace a rejected one: "+
		"another program is probably fetching tokens with the same AppSecret (a second 中控, an SDK, a force_refresh elsewhere), "+
		"or the AppSecret was reset; let other services use GET /api/v1/accounts/%s/token instead "+
		"(刚获取的 access_token 也被微信拒绝：可能有其他程序在用同一 AppSecret 获取 token，或 AppSecret 已重置)",
		e.Account, e.Version, e.Age.Round(time.Second), e.Account)
}

// ForceRefreshError: a force_refresh was needed but WeChat's budget
// (20 a day, 30 s apart) does not allow one now.
type ForceRefreshError struct {
	Account string
	Reason  string
}

func (e *ForceRefreshError) Error() string {
	return fmt.Sprintf("account %q: the stable access_token is rejected but cannot be force-refreshed: %s (stable_token 强制刷新次数受限)", e.Account, e.Reason)
}

// Class is retryable: the budget frees up with time.
func (e *ForceRefreshError) Class() wechat.ErrorClass { return wechat.ClassRetryable }

// As presents the spent budget as 503 token_unavailable; WeChat allows a
// force refresh every 30 seconds.
func (e *ForceRefreshError) As(target any) bool {
	return problem.Present(target, &problem.Error{Kind: problem.Unavailable, Code: "token_unavailable",
		Message: e.Error(), RetryAfter: ForceRefreshSpacing})
}

// RefreshError is a failed token fetch. Remote is true when another
// instance made the call and this one read its outcome from the database
// (then Err is nil and Msg is that instance's error text).
type RefreshError struct {
	Account string
	Code    int
	Msg     string
	Remote  bool
	Err     error
}

func (e *RefreshError) Error() string {
	if e.Remote {
		return fmt.Sprintf("token refresh of account %q by another instance failed: %s", e.Account, e.Msg)
	}
	return fmt.Sprintf("token refresh of account %q failed: %s", e.Account, e.Msg)
}

func (e *RefreshError) Unwrap() error { return e.Err }

// Class follows the underlying error.
func (e *RefreshError) Class() wechat.ErrorClass {
	if e.Err != nil {
		return wechat.ClassOf(e.Err)
	}
	if e.Code != 0 {
		return wechat.ClassOfCode(e.Code)
	}
	return wechat.ClassRetryable
}

// As presents a refusal WeChat will repeat as 502 token_refresh_failed. A
// failure that may pass (busy, unreachable) or a canceled request is
// presented as nothing, so that it is reported as such.
func (e *RefreshError) As(target any) bool {
	if e.Class() == wechat.ClassRetryable || errors.Is(e.Err, context.Canceled) {
		return problem.Present(target, nil)
	}
	return problem.Present(target, problem.New(problem.Upstream, "token_refresh_failed", "", e.Error()))
}
