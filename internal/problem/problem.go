// Package problem is wxgate's one error vocabulary. A domain package that
// refuses a request returns an *Error with a kind (what sort of refusal),
// a stable machine code, the field it concerns and a message for people in
// English and Chinese; the HTTP layers (the JSON API, the callback, the
// admin console) turn the kind into a status with HTTPStatus and nothing
// else. The package is a leaf: it imports only the standard library.
package problem

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Kind sorts refusals. Its values are stable; HTTPStatus maps them.
type Kind string

const (
	// Invalid: the request is wrong (400).
	Invalid Kind = "invalid"
	// Unauthorized: no credentials, or ones that are not accepted (401).
	Unauthorized Kind = "unauthorized"
	// Forbidden: the credentials do not allow this (403).
	Forbidden Kind = "forbidden"
	// NotFound: a named thing does not exist (404).
	NotFound Kind = "not_found"
	// Conflict: the request contradicts stored state or work in progress (409).
	Conflict Kind = "conflict"
	// TooLarge: the request body is over a limit (413).
	TooLarge Kind = "too_large"
	// Unprocessable: well-formed but cannot be done, e.g. a template value
	// that breaks WeChat's rules (422).
	Unprocessable Kind = "unprocessable"
	// RateLimited: too many requests; RetryAfter says when to come back (429).
	RateLimited Kind = "rate_limited"
	// Upstream: WeChat (or another service wxgate depends on) answered
	// with an error (502).
	Upstream Kind = "upstream"
	// Unavailable: cannot be done now, try again (503).
	Unavailable Kind = "unavailable"
	// Internal: a fault of wxgate's own (500).
	Internal Kind = "internal"
)

// HTTPStatus is the one mapping of a kind to an HTTP status.
func HTTPStatus(k Kind) int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unprocessable:
		return http.StatusUnprocessableEntity
	case RateLimited:
		return http.StatusTooManyRequests
	case Upstream:
		return http.StatusBadGateway
	case Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is a refusal: what kind, a stable code for programs (part of the
// contract: clients, tests and docs rely on it), the request field it
// concerns (empty when none), and a message for people written as
// "English — 中文" (see In).
type Error struct {
	Kind    Kind
	Code    string
	Field   string
	Message string
	// RetryAfter, when set, tells a client when to try again.
	RetryAfter time.Duration
	// Err is the cause, when there is one worth unwrapping to.
	Err error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of e's kind.
func (e *Error) Status() int { return HTTPStatus(e.Kind) }

// languageSeparator joins the English and the Chinese half of a message.
const languageSeparator = " — "

// In returns the message in one language: "zh" for the Chinese half, any
// other value for the English half. A message written in one language
// only is returned whole.
func (e *Error) In(lang string) string {
	en, zh, ok := strings.Cut(e.Message, languageSeparator)
	if !ok {
		return e.Message
	}
	if strings.HasPrefix(lang, "zh") {
		return zh
	}
	return en
}

// New returns an error of kind with a fixed message.
func New(kind Kind, code, field, message string) *Error {
	return &Error{Kind: kind, Code: code, Field: field, Message: message}
}

// Newf returns an error of kind with a formatted message.
func Newf(kind Kind, code, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalidf is Newf(Invalid, …).
func Invalidf(code, field, format string, args ...any) *Error {
	return Newf(Invalid, code, field, format, args...)
}

// NotFoundf is Newf(NotFound, …).
func NotFoundf(code, field, format string, args ...any) *Error {
	return Newf(NotFound, code, field, format, args...)
}

// Conflictf is Newf(Conflict, …).
func Conflictf(code, field, format string, args ...any) *Error {
	return Newf(Conflict, code, field, format, args...)
}

// Unprocessablef is Newf(Unprocessable, …).
func Unprocessablef(code, field, format string, args ...any) *Error {
	return Newf(Unprocessable, code, field, format, args...)
}

// As finds the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Present lets a domain error that keeps fields of its own (a deadline,
// a cause whose class a retry loop reads) be a refusal too. Its As method
// calls Present(target, e): then As, KindOf and CodeOf find e in the
// domain error's place in the chain. A nil e presents nothing, so that a
// domain error can be a refusal only sometimes.
func Present(target any, e *Error) bool {
	p, ok := target.(**Error)
	if !ok || e == nil {
		return false
	}
	*p = e
	return true
}

// KindOf is the kind of the first *Error in err's chain, Internal when
// there is none.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// CodeOf is the code of the first *Error in err's chain, "" when there is
// none.
func CodeOf(err error) string {
	if e, ok := As(err); ok {
		return e.Code
	}
	return ""
}
