package problem

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestHTTPStatusOfEveryKind(t *testing.T) {
	t.Parallel()
	for kind, want := range map[Kind]int{
		Invalid:       http.StatusBadRequest,
		Unauthorized:  http.StatusUnauthorized,
		Forbidden:     http.StatusForbidden,
		NotFound:      http.StatusNotFound,
		Conflict:      http.StatusConflict,
		TooLarge:      http.StatusRequestEntityTooLarge,
		Unprocessable: http.StatusUnprocessableEntity,
		RateLimited:   http.StatusTooManyRequests,
		Upstream:      http.StatusBadGateway,
		Unavailable:   http.StatusServiceUnavailable,
		Internal:      http.StatusInternalServerError,
		Kind("typo"):  http.StatusInternalServerError,
	} {
		if got := HTTPStatus(kind); got != want {
			t.Errorf("HTTPStatus(%q) = %d, want %d", kind, got, want)
		}
	}
}

func TestFoundThroughWrapping(t *testing.T) {
	t.Parallel()
	sentinel := NotFoundf("schedule_not_found", "id", "no such schedule — 定时任务不存在")
	wrapped := fmt.Errorf("load schedule 7: %w", sentinel)
	if !errors.Is(wrapped, sentinel) {
		t.Fatal("errors.Is does not see the sentinel through %w")
	}
	e, ok := As(wrapped)
	if !ok || e.Code != "schedule_not_found" || e.Field != "id" || e.Status() != http.StatusNotFound {
		t.Fatalf("As(wrapped) = %+v, %v", e, ok)
	}
	if KindOf(wrapped) != NotFound || CodeOf(wrapped) != "schedule_not_found" {
		t.Fatalf("KindOf/CodeOf = %q/%q", KindOf(wrapped), CodeOf(wrapped))
	}
	if KindOf(errors.New("disk full")) != Internal || CodeOf(errors.New("x")) != "" {
		t.Fatal("a plain error must be Internal with no code")
	}
}

func TestCauseIsUnwrapped(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection refused")
	e := &Error{Kind: Unavailable, Code: "wechat_unavailable", Message: "busy — 忙", Err: cause}
	if !errors.Is(e, cause) {
		t.Fatal("the cause is not reachable with errors.Is")
	}
}

func TestMessageInOneLanguage(t *testing.T) {
	t.Parallel()
	e := Invalidf("template_required", "template", "%s is required — 必须填写 %s", "template", "template")
	if got := e.In("zh-CN"); got != "必须填写 template" {
		t.Errorf("In(zh-CN) = %q", got)
	}
	if got := e.In("en"); got != "template is required" {
		t.Errorf("In(en) = %q", got)
	}
	if e.Error() != "template_required: template is required — 必须填写 template" {
		t.Errorf("Error() = %q", e.Error())
	}
	single := New(Invalid, "x", "", "only English")
	if single.In("zh") != "only English" {
		t.Errorf("a one-language message must come back whole, got %q", single.In("zh"))
	}
}

// paused keeps its own deadline and presents itself as a refusal only
// while it has one.
type paused struct{ left time.Duration }

func (p *paused) Error() string { return "paused" }

func (p *paused) As(target any) bool {
	if p.left == 0 {
		return Present(target, nil)
	}
	return Present(target, &Error{Kind: Unavailable, Code: "paused", Message: "paused — 暂停", RetryAfter: p.left})
}

func TestDomainErrorPresentsItself(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("get token: %w", &paused{left: time.Minute})
	e, ok := As(wrapped)
	if !ok || e.Code != "paused" || e.RetryAfter != time.Minute || e.Status() != http.StatusServiceUnavailable {
		t.Fatalf("As(wrapped) = %+v, %v", e, ok)
	}
	var own *paused
	if !errors.As(wrapped, &own) || own.left != time.Minute {
		t.Fatal("the domain error itself must still be found")
	}
	if _, ok := As(fmt.Errorf("get token: %w", &paused{})); ok {
		t.Fatal("a domain error that presents nil is not a refusal")
	}
	inner := NotFoundf("account_not_found", "account", "no such account — 账号不存在")
	if CodeOf(fmt.Errorf("outer: %w", errors.Join(&paused{}, inner))) != "account_not_found" {
		t.Fatal("As must go on past a domain error that presents nil")
	}
}
