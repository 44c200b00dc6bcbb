package schedule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/push"
)

// Audience kinds.
const (
	AudienceAll         = "all"          // every subscribed follower of the account
	AudienceTag         = "tag"          // subscribed followers with a WeChat tag
	AudienceOpenIDs     = "openids"      // these openids
	AudienceExternalIDs = "external_ids" // the openids bound to these external ids
)

// Audience is who a schedule sends to.
type Audience struct {
	Kind        string   `json:"kind"`
	TagID       int64    `json:"tag_id,omitempty"`
	OpenIDs     []string `json:"openids,omitempty"`
	ExternalIDs []string `json:"external_ids,omitempty"`
}

// Source types.
const (
	SourceStatic = "static" // no source: data templates use variables and helpers only
	SourceHTTP   = "http"   // a JSON API called per distinct URL
)

// Defaults and limits of a data source.
const (
	DefaultSourceTimeout = 5 * time.Second
	MaxSourceTimeout     = time.Minute
	DefaultSourceRetries = 2
	MaxSourceRetries     = 5
)

// Source is where the data of a run comes from, besides the recipient's
// own variables.
type Source struct {
	// Type is http, or static (the same as no source).
	Type string `json:"type"`
	// URL is a Go template rendered per recipient, e.g.
	// https://devapi.qweather.com/v7/weather/3d?location={{.Attr.location}}&key={{secret "QWEATHER_KEY"}}.
	// Recipients with the same rendered URL and headers share one call.
	URL string `json:"url,omitempty"`
	// Headers are Go templates too, e.g. {"X-QW-Api-Key": "{{secret \"QWEATHER_KEY\"}}"}.
	Headers map[string]string `json:"headers,omitempty"`
	// Expect maps JSON paths of the answer to the value they must have,
	// e.g. {"code": "200"}; a recipient whose answer differs is skipped.
	Expect map[string]string `json:"expect,omitempty"`
	// Timeout of one call (default 5s, at most 1m).
	Timeout Duration `json:"timeout,omitempty"`
	// Retries after a failed call: transport errors, timeouts, HTTP 429
	// and 5xx (default 2, at most 5).
	Retries *int `json:"retries,omitempty"`
}

// Spec is what a schedule sends: to whom, which template, with which data.
type Spec struct {
	Audience Audience `json:"audience"`
	// Channel is template (default for an official account), subscribe or
	// mp_subscribe; empty means the template's own channel.
	Channel string `json:"channel,omitempty"`
	// Template is an alias of the template registry or a template id.
	Template string `json:"template"`
	// Truncate shortens values that are too long (overrides the alias).
	Truncate *bool `json:"truncate,omitempty"`
	// Data maps alias fields or template keywords to Go templates rendered
	// per recipient: {"thing1": "{{.City}}", "phrase2": "{{get .Response \"daily.0.textDay\"}}"}.
	Data map[string]string `json:"data"`
	// URL, MiniProgram and Page are the jump of the message (the alias's
	// when empty).
	URL         string            `json:"url,omitempty"`
	MiniProgram *push.MiniProgram `json:"miniprogram,omitempty"`
	Page        string            `json:"page,omitempty"`
	// Source fills .Response; nil or type static means none.
	Source *Source `json:"source,omitempty"`
	// TagCities gives a city to followers by WeChat tag id, for those
	// without a city attribute: {"101": "北京"}.
	TagCities map[string]string `json:"tag_cities,omitempty"`
	// DefaultCity is the city of recipients who have none otherwise.
	DefaultCity string `json:"default_city,omitempty"`
	// Vars are constants the templates read as .Vars.name.
	Vars map[string]string `json:"vars,omitempty"`
}

// Schedule is a recurring push.
type Schedule struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Account string `json:"account"`
	// Cron is a 5-field expression or a descriptor, read in TimeZone.
	Cron     string `json:"cron"`
	TimeZone string `json:"timezone"`
	Enabled  bool   `json:"enabled"`
	// MisfireGrace: a due time the gateway missed (it was down) still runs
	// when it is noticed within this delay; later it is recorded as missed.
	MisfireGrace Duration `json:"misfire_grace"`
	Spec
	// NextRunAt is the next due time, in the schedule's zone; absent while
	// paused.
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Input is the body of a create or update: a Schedule without its state.
// An update replaces the whole schedule.
type Input struct {
	Name     string `json:"name"`
	Account  string `json:"account"`
	Cron     string `json:"cron"`
	TimeZone string `json:"timezone,omitempty"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// MisfireGrace defaults to DefaultMisfireGrace.
	MisfireGrace *Duration `json:"misfire_grace,omitempty"`
	Spec
}

// DefaultMisfireGrace is the misfire grace of a schedule that sets none.
const DefaultMisfireGrace = time.Hour

// Bounds of the misfire grace. The tick comes within a few seconds of a
// due time, so a grace under a minute would count normal runs as missed.
const (
	MinMisfireGrace = time.Minute
	MaxMisfireGrace = 7 * 24 * time.Hour
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("1h30m"); a number is read as seconds.
type Duration time.Duration

// MarshalJSON writes "1h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "90m", "1h" or 3600.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*d = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"90s\", \"30m\" or \"1h\"", s)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a duration such as \"30m\" or a number of seconds", b)
	}
	*d = Duration(n * float64(time.Second))
	return nil
}

// Run statuses.
const (
	RunQueued  = "queued"  // due; its job is waiting for a worker
	RunRunning = "running" // planning: audience, data source, data
	RunSending = "sending" // planned; messages being handed to the push pipeline
	RunDone    = "done"
	RunFailed  = "failed" // the run could not be done at all (see reason)
	RunMissed  = "missed" // the gateway was down at the due time and the grace passed
)

// Run kinds.
const (
	KindCron   = "cron"   // a due time of the expression
	KindManual = "manual" // run now
)

// Counts sum up a run's recipients. Sent includes Delivered; Failed
// includes blocked ones; Pending are planned or queued and not sent yet.
type Counts struct {
	Recipients int `json:"recipients"`
	Pending    int `json:"pending"`
	Sent       int `json:"sent"`
	Delivered  int `json:"delivered"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
}

// Run is one execution of a schedule.
type Run struct {
	ID         int64  `json:"id"`
	ScheduleID int64  `json:"schedule_id"`
	Kind       string `json:"kind"`
	// DueAt is the due time in the schedule's zone (the request time of a
	// manual run).
	DueAt       time.Time  `json:"due_at"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Counts      Counts     `json:"counts"`
	SourceCalls int        `json:"source_calls"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// RunRecipient is one recipient of a run and what became of them.
type RunRecipient struct {
	ExternalID string `json:"external_id,omitempty"`
	OpenID     string `json:"openid,omitempty"`
	// Status is pending, skipped, or the push status once handed over:
	// queued, sent, delivered, blocked, failed, skipped.
	Status    string            `json:"status"`
	Reason    string            `json:"reason,omitempty"`
	MessageID string            `json:"message_id,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
}

// RunDetail is a run with a page of its recipients.
type RunDetail struct {
	Run
	Recipients []RunRecipient `json:"recipients"`
	// NextAfter, when set, is the after= value of the next page.
	NextAfter int64 `json:"next_after,omitempty"`
}
