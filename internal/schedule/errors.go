package schedule

import "fmt"

// ErrorKind sorts schedule errors for the API's one error mapping.
type ErrorKind string

const (
	// KindInvalid: the request is wrong (400).
	KindInvalid ErrorKind = "invalid"
	// KindNotFound: a named thing does not exist (404).
	KindNotFound ErrorKind = "not_found"
	// KindConflict: the request contradicts stored state (409).
	KindConflict ErrorKind = "conflict"
)

// Error is a request the schedule package refuses: a stable code for
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

// ErrNotFound is returned for an unknown schedule id.
var ErrNotFound = notFound("schedule_not_found", "id", "no such schedule — 定时任务不存在")

// ErrRunNotFound is returned for an unknown run id.
var ErrRunNotFound = notFound("run_not_found", "run_id", "no such run of this schedule — 该定时任务没有这次运行")
