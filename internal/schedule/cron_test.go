package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// next lists the due times after from, as RFC 3339 in the schedule's zone.
func next(t *testing.T, expr, tz string, from time.Time, n int) []string {
	t.Helper()
	c, err := ParseCron(expr, tz)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range c.NextN(from, n) {
		out = append(out, d.Format(time.RFC3339))
	}
	return out
}

func TestCronLocalTimes(t *testing.T) {
	t.Parallel()
	sh := mustZone(t, "Asia/Shanghai")
	ny := mustZone(t, "America/New_York")
	for _, tc := range []struct {
		name, expr, tz string
		from           time.Time
		want           []string
	}{
		{"Shanghai has no DST: 07:30 every day, 23:30 UTC the day before", "30 7 * * *", "Asia/Shanghai",
			time.Date(2026, 3, 7, 8, 0, 0, 0, sh),
			[]string{"2026-03-08T07:30:00+08:00", "2026-03-09T07:30:00+08:00", "2026-03-10T07:30:00+08:00"}},
		{"the default zone is Asia/Shanghai", "30 7 * * *", "",
			time.Date(2026, 11, 1, 7, 30, 0, 0, sh),
			[]string{"2026-11-02T07:30:00+08:00"}},
		{"New York spring forward: still 07:30 local, an hour earlier in UTC", "30 7 * * *", "America/New_York",
			time.Date(2026, 3, 7, 8, 0, 0, 0, ny),
			[]string{"2026-03-08T07:30:00-04:00", "2026-03-09T07:30:00-04:00"}},
		{"New York fall back: still 07:30 local", "30 7 * * *", "America/New_York",
			time.Date(2026, 10, 31, 8, 0, 0, 0, ny),
			[]string{"2026-11-01T07:30:00-05:00", "2026-11-02T07:30:00-05:00"}},
		{"a time skipped by spring forward runs at the change, once", "30 2 * * *", "America/New_York",
			time.Date(2026, 3, 7, 3, 0, 0, 0, ny),
			[]string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"a time repeated by fall back runs once, the first time", "30 1 * * *", "America/New_York",
			time.Date(2026, 10, 31, 2, 0, 0, 0, ny),
			[]string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"a wildcard hour follows the clock through the repeated hour", "0,30 * * * *", "America/New_York",
			time.Date(2026, 11, 1, 0, 45, 0, 0, ny),
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"weekdays at 09:00", "0 9 * * 1-5", "Asia/Shanghai",
			time.Date(2026, 11, 27, 10, 0, 0, 0, sh), // a Friday
			[]string{"2026-11-30T09:00:00+08:00", "2026-12-01T09:00:00+08:00"}},
		{"descriptor", "@daily", "Europe/Berlin",
			time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC),
			[]string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
		{"@every", "@every 90m", "Asia/Shanghai",
			time.Date(2026, 1, 1, 0, 0, 0, 0, sh),
			[]string{"2026-01-01T01:30:00+08:00", "2026-01-01T03:00:00+08:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := next(t, tc.expr, tc.tz, tc.from, len(tc.want))
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("next of %q in %q after %s:\n got %v\nwant %v", tc.expr, tc.tz, tc.from.Format(time.RFC3339), got, tc.want)
			}
		})
	}
}

func TestCronErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ expr, tz, code, field string }{
		{"30 7 * *", "Asia/Shanghai", "invalid_cron", "cron"},
		{"61 7 * * *", "Asia/Shanghai", "invalid_cron", "cron"},
		{"", "Asia/Shanghai", "cron_required", "cron"},
		{"TZ=UTC 30 7 * * *", "Asia/Shanghai", "invalid_cron", "cron"},
		{"@every 10s", "Asia/Shanghai", "invalid_cron", "cron"},
		{"0 0 30 2 *", "Asia/Shanghai", "invalid_cron", "cron"},
		{"30 7 * * *", "Asia/Shangai", "invalid_timezone", "timezone"},
		{"30 7 * * *", "Local", "invalid_timezone", "timezone"},
		{"30 7 * * *", "+08:00", "invalid_timezone", "timezone"},
	} {
		_, err := ParseCron(tc.expr, tc.tz)
		var e *problem.Error
		if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
			t.Errorf("ParseCron(%q, %q) = %v, want %s on %s", tc.expr, tc.tz, err, tc.code, tc.field)
			continue
		}
		// Every message is in English and Chinese.
		if !strings.Contains(e.Message, " — ") {
			t.Errorf("%s: message not bilingual: %s", tc.expr, e.Message)
		}
	}
}
