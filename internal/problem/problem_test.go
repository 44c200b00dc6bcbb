package problem

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
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
