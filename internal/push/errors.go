package push

import "fmt"

// ErrorKind sorts push errors for the API's one error mapping.
type ErrorKind string

const (
	// KindInvalid: the request is wrong (400).
	KindInvalid ErrorKind = "invalid"
	// KindNotFound: a named thing does not exist (404).
	KindNotFound ErrorKind = "not_found"
	// KindConflict: the request contradicts stored state (409), e.g. an
	// Idempotency-Key reused with another body.
	KindConflict ErrorKind = "conflict"
	// KindUnprocessable: well-formed but cannot be done (422), e.g. a
	// template value that breaks WeChat's rules.
	KindUnprocessable ErrorKind = "unprocessable"
)

// Error is a request the push package refuses: a stable code for
// programs, the field it concerns, and a message in English and Chinese
// that names the field.
type Error struct {
	Kind    ErrorKind
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(code, field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(code, field, format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func unprocessable(code, field, format string, args ...any) *Error {
	return &Error{Kind: KindUnprocessable, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}
