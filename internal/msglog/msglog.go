// Package msglog is the inbound message log: every push WeChat delivers is
// recorded once, keyed by its de-duplication key, with the reply it got, so
// WeChat's retries are recognised (across instances, through the database's
// unique index) and answered with the same reply.
package msglog

import (
	"encoding/json"
	"errors"
	"time"
)

// Status is what happened to a push's reply.
type Status string

const (
	// StatusPending: recorded, not yet answered.
	StatusPending Status = "pending"
	// StatusReplied: answered with the stored reply body.
	StatusReplied Status = "replied"
	// StatusEmpty: answered "success" (no rule, or a rule saying none).
	StatusEmpty Status = "empty"
	// StatusDeferred: the reply deadline passed, "success" was answered and
	// the work finished in the background.
	StatusDeferred Status = "deferred"
)

// Valid reports whether s is one of the statuses the log stores.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusReplied, StatusEmpty, StatusDeferred:
		return true
	}
	return false
}

// Entry is a push to record.
type Entry struct {
	Account  string
	DedupKey string
	OpenID   string
	MsgType  string
	Event    string
	// MsgID is the message's MsgId (or a job-finish event's MsgID); 0 when
	// the push has none.
	MsgID int64
	// Fields is the parsed push as a JSON object.
	Fields []byte
	// RawXML is the push as WeChat wrote it (decrypted in encrypted modes).
	RawXML     []byte
	ReceivedAt time.Time
	// Status and ReplyBody are the reply decided before recording, so the
	// common path is one write.
	Status    Status
	ReplyBody []byte
}

// Result says whether a push was new and, for a retry, the reply the first
// delivery got.
type Result struct {
	ID        int64
	Duplicate bool
	// Status and ReplyBody are the stored outcome: for a new push what was
	// recorded, for a duplicate the first delivery's.
	Status    Status
	ReplyBody []byte
}

// Message is a row of the log.
type Message struct {
	ID          int64           `json:"id"`
	Account     string          `json:"account"`
	DedupKey    string          `json:"dedup_key"`
	OpenID      string          `json:"openid"`
	MsgType     string          `json:"msg_type"`
	Event       string          `json:"event,omitempty"`
	MsgID       int64           `json:"msg_id,omitempty,string"`
	Fields      json.RawMessage `json:"fields"`
	RawXML      string          `json:"raw_xml"`
	ReceivedAt  time.Time       `json:"received_at"`
	ReplyStatus Status          `json:"reply_status"`
	ReplyBody   string          `json:"reply_body,omitempty"`
	HandledAt   *time.Time      `json:"handled_at,omitempty"`
}

// Words is what the push says, for a conversation view: a text's content,
// an event's key (a menu button, a scan's scene), a location's label.
func (m Message) Words() string {
	var f struct {
		Content  string `json:"Content"`
		EventKey string `json:"EventKey"`
		Label    string `json:"Label"`
	}
	_ = json.Unmarshal(m.Fields, &f)
	switch {
	case f.Content != "":
		return f.Content
	case f.EventKey != "":
		return f.EventKey
	}
	return f.Label
}

// ErrNotFound is returned when no row matches.
var ErrNotFound = errors.New("msglog: message not found")

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("msglog: store closed")
