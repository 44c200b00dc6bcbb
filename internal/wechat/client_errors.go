package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// ErrorClass says what a caller should do about a failed call.
type ErrorClass string

const (
	// ClassRetryable: WeChat was busy or unreachable (-1, 45011, 5xx,
	// transport errors, timeouts); retry later with backoff.
	ClassRetryable ErrorClass = "retryable"
	// ClassTokenInvalid: the access_token was rejected (40001, 40014,
	// 42001); replace it and retry once. The client does this itself
	// when it has a TokenSource.
	ClassTokenInvalid ErrorClass = "token_invalid"
	// ClassQuota: a quota is used up (45009 daily quota, 45047 custom
	// message count); retrying now does not help.
	ClassQuota ErrorClass = "quota"
	// ClassPermanent: the request itself is wrong or not allowed
	// (40003, 40037, 43004, 43101, 47003, 40164, …); do not retry.
	ClassPermanent ErrorClass = "permanent"
)

// Errcodes with a special meaning to callers.
const (
	CodeSystemBusy         = -1
	CodeInvalidCredential  = 40001
	CodeInvalidOpenID      = 40003
	CodeInvalidAccessToken = 40014
	CodeInvalidTemplateID  = 40037
	CodeInvalidAppSecret   = 40125
	CodeIPNotInWhitelist   = 40164
	CodeAccessTokenExpired = 42001
	CodeRequireSubscribe   = 43004
	CodeUserRefused        = 43101
	CodeDailyQuota         = 45009
	CodeMinuteQuota        = 45011
	CodeOutOfWindow        = 45015
	CodeResponseCountLimit = 45047
	CodeArgumentInvalid    = 47003
)

// ClassOfCode returns the class of a WeChat errcode.
func ClassOfCode(code int) ErrorClass {
	switch code {
	case CodeSystemBusy, CodeMinuteQuota:
		return ClassRetryable
	case CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired:
		return ClassTokenInvalid
	case CodeDailyQuota, CodeResponseCountLimit:
		return ClassQuota
	}
	return ClassPermanent
}

// ClassOf returns the class of any error a Client method returned:
// retryable for timeouts and transport failures, permanent for anything
// it does not recognise. A canceled context is permanent (the caller gave
// up); a deadline is retryable.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return ""
	}
	var c interface{ Class() ErrorClass }
	if errors.As(err, &c) {
		return c.Class()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassRetryable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassRetryable
	}
	return ClassPermanent
}

// APIError is an answer from WeChat with a non-zero errcode.
type APIError struct {
	Code int
	// Msg is errmsg without its trailing request id.
	Msg string
	// RID is WeChat's request id from the errmsg suffix (" rid: …",
	// " hint: […]"), useful when asking Tencent support.
	RID string
	// Path is the API path, e.g. /cgi-bin/message/template/send (never the query).
	Path string
}

// Class returns what a caller should do about the error.
func (e *APIError) Class() ErrorClass { return ClassOfCode(e.Code) }

// Temporary reports whether retrying later may succeed.
func (e *APIError) Temporary() bool { return e.Class() == ClassRetryable }

// IP returns the caller IP named by a 40164 errmsg, or "".
func (e *APIError) IP() string {
	if e.Code != CodeIPNotInWhitelist {
		return ""
	}
	return whitelistIP(e.Msg)
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wechat %s: errcode %d: %s", e.Path, e.Code, e.Msg)
	if e.RID != "" {
		fmt.Fprintf(&b, " (rid %s)", e.RID)
	}
	if e.Code == CodeIPNotInWhitelist {
		ip := e.IP()
		if ip == "" {
			ip = "this server's outbound IP"
		}
		fmt.Fprintf(&b, " — add %s to the account's API IP whitelist: mp.weixin.qq.com → 开发 → 基本配置 → IP白名单 "+
			"(请将 %s 加入 开发 → 基本配置 → IP白名单)", ip, ip)
	}
	return b.String()
}

var (
	ridPattern  = regexp.MustCompile(`(?:,\s*|\s+)(?:rid:\s*([0-9a-fA-F]+(?:-[0-9a-fA-F]+)*)|hints?:\s*\[\s*(?:req_id:\s*)?([^\]\s]+)\s*\])\s*$`)
	ipv4Pattern = regexp.MustCompile(`invalid ip\s+([0-9]{1,3}(?:\.[0-9]{1,3}){3})`)
	ipAnyPatt   = regexp.MustCompile(`invalid ip\s+([0-9A-Fa-f:.]+)`)
)

func newAPIError(path string, code int, errmsg string) *APIError {
	msg, rid := splitRID(errmsg)
	return &APIError{Code: code, Msg: msg, RID: rid, Path: path}
}

// splitRID separates the request id WeChat appends to errmsg.
func splitRID(errmsg string) (msg, rid string) {
	m := ridPattern.FindStringSubmatchIndex(errmsg)
	if m == nil {
		return errmsg, ""
	}
	msg = strings.TrimSpace(errmsg[:m[0]])
	for g := 1; g <= 2; g++ {
		if m[2*g] >= 0 {
			rid = errmsg[m[2*g]:m[2*g+1]]
		}
	}
	return msg, rid
}

// whitelistIP pulls the caller IP out of "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist".
func whitelistIP(msg string) string {
	if m := ipv4Pattern.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	if m := ipAnyPatt.FindStringSubmatch(msg); m != nil {
		return strings.TrimRight(m[1], ".:,")
	}
	return ""
}

// HTTPError is a non-2xx HTTP answer (WeChat reports API errors with
// status 200, so this comes from the edge or a proxy).
type HTTPError struct {
	Path       string
	Host       string
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("wechat %s: %s answered HTTP %d", e.Path, e.Host, e.StatusCode)
}

// Class is retryable for 5xx and 429, permanent otherwise.
func (e *HTTPError) Class() ErrorClass {
	if e.StatusCode >= 500 || e.StatusCode == 429 {
		return ClassRetryable
	}
	return ClassPermanent
}

// TransportError is a failure to get an answer at all: DNS, connection,
// TLS, reset, timeout. Its text never contains the access_token.
type TransportError struct {
	Path string
	Host string
	Err  error
	// Sent: the request had been written when the exchange failed, so
	// WeChat may have acted on it (a timeout waiting for the answer, a
	// connection reset after the write). False when it never left (a
	// refused connection, a failed DNS lookup).
	Sent bool
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("wechat %s: %s unreachable: %v", e.Path, e.Host, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Class is always retryable.
func (e *TransportError) Class() ErrorClass { return ClassRetryable }

// Timeout reports whether the failure was a timeout.
func (e *TransportError) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// OutcomeUnknown reports whether a failed call may nevertheless have taken
// effect at WeChat: the request was sent and no answer came. Resending
// such a call is safe only where WeChat de-duplicates (a template message
// with client_msg_id); a subscription or customer-service message sent
// again may arrive twice.
func OutcomeUnknown(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && te.Sent
}

// DecodeError is a 2xx answer that is not the JSON expected.
type DecodeError struct {
	Path    string
	Err     error
	Snippet string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("wechat %s: unreadable answer (%v): %q", e.Path, e.Err, e.Snippet)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Class is permanent: retrying the same request gets the same answer.
func (e *DecodeError) Class() ErrorClass { return ClassPermanent }

// lenientInt reads a JSON number or a numeric string; missing or null is 0.
func lenientInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return 0, nil
		}
		return strconv.ParseInt(s, 10, 64)
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil
	}
	// A number written as 4.0001e4 or 40001.0: accept it when it is integral.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("not an integer: %s", raw)
	}
	return int64(f), nil
}

// lenientString reads a JSON string, or the text of any other JSON value.
func lenientString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Int64 is an int64 that decodes from a JSON number or a numeric string,
// exactly (never through float64): WeChat's msgid values exceed 2^53.
type Int64 int64

// UnmarshalJSON accepts 123, "123", null and "".
func (n *Int64) UnmarshalJSON(b []byte) error {
	v, err := lenientInt(b)
	if err != nil {
		return err
	}
	*n = Int64(v)
	return nil
}

// FlexString is a string that also decodes from a JSON number: WeChat
// writes some ids ("tag_id":"2") either way.
type FlexString string

// UnmarshalJSON accepts "2", 2 and null.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	*s = FlexString(strings.TrimSpace(lenientString(b)))
	return nil
}
