package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones work on hosts and images without a zoneinfo database

	"github.com/robfig/cron/v3"
	"github.com/wxgate/wxgate/internal/problem"
)

// DefaultTimeZone is the zone of a schedule that names none.
const DefaultTimeZone = "Asia/Shanghai"

// minEvery is the shortest @every interval: the tick runs once a minute.
const minEvery = time.Minute

// cronParser reads the five standard fields (minute hour day-of-month
// month day-of-week) and the descriptors (@yearly @monthly @weekly @daily
// @hourly @every 1h30m).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// allHours is the Hour field of a spec that runs every hour.
const allHours = 1<<24 - 1

// Cron is a cron expression read in a time zone.
//
// Daylight saving time: local times are what count ("30 7 * * *" is 07:30
// on the wall clock in winter and in summer). When the clocks go forward,
// a time that does not exist that day (02:30 in America/New_York on the
// spring change) runs once at the moment of the change (03:00 new time);
// when they go back, a time that occurs twice runs once, at its first
// occurrence. A schedule with a wildcard hour ("*/15 * * * *") simply
// follows the clock: it runs at every quarter that exists.
type Cron struct {
	expr  string
	loc   *time.Location
	spec  *cron.SpecSchedule // nil for @every
	every time.Duration
}

// LoadZone loads an IANA time zone; "" is DefaultTimeZone.
func LoadZone(tz string) (*time.Location, error) {
	if tz == "" {
		tz = DefaultTimeZone
	}
	if tz == "Local" || strings.TrimSpace(tz) != tz {
		return nil, problem.Invalidf("invalid_timezone", "timezone",
			"timezone %q is not an IANA time zone name such as Asia/Shanghai or America/New_York — 时区 %q 无效，请使用 IANA 时区名，如 Asia/Shanghai", tz, tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, problem.Invalidf("invalid_timezone", "timezone",
			"timezone %q is not a known IANA time zone (e.g. Asia/Shanghai, Europe/Berlin, America/New_York) — 时区 %q 无效，请使用 IANA 时区名，如 Asia/Shanghai", tz, tz)
	}
	return loc, nil
}

// ParseCron checks a cron expression and its time zone.
func ParseCron(expr, tz string) (*Cron, error) {
	loc, err := LoadZone(tz)
	if err != nil {
		return nil, err
	}
	expr = strings.TrimSpace(expr)
	bad := func(why string) error {
		return problem.Invalidf("invalid_cron", "cron",
			"cron %q is not valid: %s; use 5 fields \"minute hour day-of-month month day-of-week\", e.g. \"30 7 * * *\" for every day at 07:30, or @daily, @every 2h — "+
				"cron 表达式 %q 无效：请使用 5 个字段「分 时 日 月 周」，如 \"30 7 * * *\" 表示每天 07:30", expr, why, expr)
	}
	switch {
	case expr == "":
		return nil, problem.Invalidf("cron_required", "cron", "cron is required, e.g. \"30 7 * * *\" for every day at 07:30 — 请填写 cron，如 \"30 7 * * *\" 表示每天 07:30")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, problem.Invalidf("invalid_cron", "cron",
			"cron %q: give the time zone in the timezone field, not in the expression — 请在 timezone 字段中设置时区，不要写在 cron 表达式里", expr)
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return nil, bad(err.Error())
	}
	c := &Cron{expr: expr, loc: loc}
	switch s := sched.(type) {
	case *cron.SpecSchedule:
		cp := *s
		cp.Location = loc
		c.spec = &cp
		if c.spec.Next(time.Now()).IsZero() {
			return nil, bad("it never matches a date (e.g. 30 February)")
		}
	case cron.ConstantDelaySchedule:
		if s.Delay < minEvery {
			return nil, bad("@every must be at least 1m")
		}
		c.every = s.Delay
	default:
		return nil, bad("unsupported schedule")
	}
	return c, nil
}

// Location is the zone the expression is read in.
func (c *Cron) Location() *time.Location { return c.loc }

// Next returns the first due time after t, in the schedule's zone, or the
// zero time when there is none within five years.
func (c *Cron) Next(after time.Time) time.Time {
	if c.every > 0 {
		return after.Add(c.every).Truncate(time.Second).In(c.loc)
	}
	n := c.spec.Next(after)
	if n.IsZero() {
		return n
	}
	if c.spec.Hour&allHours != allHours {
		if g, ok := c.gapRun(after, n); ok {
			return g.In(c.loc)
		}
		if c.repeated(n) {
			return c.Next(n)
		}
	}
	return n.In(c.loc)
}

// NextN returns the next n due times after t.
func (c *Cron) NextN(after time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for range n {
		after = c.Next(after)
		if after.IsZero() {
			break
		}
		out = append(out, after)
	}
	return out
}

// repeated reports whether the wall-clock time of t occurred already a
// little earlier: t is in the hour repeated when the clocks go back.
func (c *Cron) repeated(t time.Time) bool {
	local := t.In(c.loc)
	for _, d := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if sameWallClock(t.Add(-d).In(c.loc), local) {
			return true
		}
	}
	return false
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}

// gapRun finds, between after and next, a change of the clocks forward
// that skipped a local time the expression matches; it returns the instant
// of that change.
func (c *Cron) gapRun(after, next time.Time) (time.Time, bool) {
	_, off := after.In(c.loc).Zone()
	for t := after.Truncate(time.Hour).Add(time.Hour); t.Before(next); t = t.Add(time.Hour) {
		_, o := t.In(c.loc).Zone()
		if o == off {
			continue
		}
		prev := off
		off = o
		if o < prev {
			continue // clocks went back: handled by repeated
		}
		change := transition(c.loc, t.Add(-time.Hour), t)
		if !change.After(after) || !change.Before(next) {
			continue
		}
		// The skipped wall-clock times are [change in the old offset,
		// change in the new offset): ask the expression in a fixed zone of
		// the old offset whether it matches one of them.
		old := time.FixedZone("", prev)
		start := change.In(old)
		fixed := *c.spec
		fixed.Location = old
		if m := fixed.Next(start.Add(-time.Second)); !m.IsZero() && m.Before(start.Add(time.Duration(o-prev)*time.Second)) {
			return change, true
		}
	}
	return time.Time{}, false
}

// transition returns the first instant in (a, b] whose offset differs
// from a's, to the second.
func transition(loc *time.Location, a, b time.Time) time.Time {
	_, off := a.In(loc).Zone()
	for b.Sub(a) > time.Second {
		mid := a.Add(b.Sub(a) / 2).Truncate(time.Second)
		if _, o := mid.In(loc).Zone(); o == off {
			a = mid
		} else {
			b = mid
		}
	}
	return b
}

// errNoNext is returned when an expression has no due time left.
var errNoNext = errors.New("schedule: the cron expression has no due time in the next five years")

// nextDue is Next with an error for the end of the schedule.
func (c *Cron) nextDue(after time.Time) (time.Time, error) {
	n := c.Next(after)
	if n.IsZero() {
		return n, fmt.Errorf("%w: %s", errNoNext, c.expr)
	}
	return n, nil
}
