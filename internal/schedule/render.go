package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/problem"
)

// Recipient is what the templates of a schedule see of one recipient
// (the dot of {{.City}}).
type Recipient struct {
	OpenID     string
	UnionID    string
	ExternalID string
	// City is the attribute city, else the city of one of the follower's
	// tags (tag_cities), else the schedule's default_city.
	City string
	// Attr are the follower's attributes (PUT /api/v1/followers/{openid}/attributes).
	Attr map[string]string
	// Follower is the follower's row as wxgate knows it.
	Follower FollowerInfo
	// Vars are the schedule's constants.
	Vars map[string]string
	// Now is the run's due time in the schedule's zone.
	Now time.Time
	// Response is the data source's JSON answer for this recipient (nil
	// without a source); read it with get.
	Response any
}

// FollowerInfo is the part of a follower templates may use.
type FollowerInfo struct {
	Known        bool // false for an openid wxgate has no row for
	Subscribed   bool
	SubscribedAt time.Time // zero when unknown
	Remark       string
	Language     string
	TagIDs       []int64
}

// funcs are the helpers of every template. now is the run's due time in
// the schedule's zone; secret is nil outside a source's URL and headers.
func funcs(now time.Time, secret func(string) (string, error)) template.FuncMap {
	fm := template.FuncMap{
		"get":       jsonGet,
		"has":       jsonHas,
		"date":      func(layout string) string { return now.Format(layout) },
		"daysSince": func(date string) (int, error) { return daysBetween(date, now, false) },
		"daysUntil": func(date string) (int, error) { return daysBetween(date, now, true) },
		"add":       func(a, b int) int { return a + b },
		"sub":       func(a, b int) int { return a - b },
		"default":   defaultValue,
		"trunc":     truncRunes,
		"trim":      strings.TrimSpace,
		"upper":     strings.ToUpper,
		"lower":     strings.ToLower,
		"replace":   func(old, new string, s any) string { return strings.ReplaceAll(toString(s), old, new) },
	}
	if secret != nil {
		fm["secret"] = secret
	}
	return fm
}

// parseTemplate parses one template with the helpers; secrets says
// whether {{secret}} is allowed (URL and headers of a source only).
func parseTemplate(name, text string, now time.Time, secret func(string) (string, error)) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Funcs(funcs(now, secret)).Parse(text)
}

// execute renders a template into a string; the error names the field
// and leaves out text/template's position noise.
func execute(t *template.Template, dot any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, dot); err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ">: "); i >= 0 {
			msg = msg[i+3:]
		}
		return "", fmt.Errorf("%s: %s", t.Name(), msg)
	}
	return b.String(), nil
}

// jsonGet looks a path up in a decoded JSON value: "now.temp",
// "daily.0.tempMax" or "daily[0].tempMax".
func jsonGet(v any, path string) (any, error) {
	if v == nil {
		return nil, errors.New("no data source answer to read " + strconv.Quote(path) + " from (the schedule has no source) — 没有数据源的返回值")
	}
	cur := v
	walked := ""
	for _, seg := range splitPath(path) {
		switch node := cur.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return nil, fmt.Errorf("the answer has no %q%s — 返回值中没有 %q", seg, under(walked), path)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(node) {
				return nil, fmt.Errorf("%q is not an index of the %d items%s — 返回值中没有 %q", seg, len(node), under(walked), path)
			}
			cur = node[i]
		default:
			return nil, fmt.Errorf("%s is not an object or a list, so it has no %q — 返回值中没有 %q", strconv.Quote(walked), seg, path)
		}
		if walked != "" {
			walked += "."
		}
		walked += seg
	}
	return cur, nil
}

func under(walked string) string {
	if walked == "" {
		return ""
	}
	return " under " + strconv.Quote(walked)
}

// jsonHas reports whether a path exists.
func jsonHas(v any, path string) bool {
	_, err := jsonGet(v, path)
	return err == nil
}

func splitPath(path string) []string {
	path = strings.NewReplacer("[", ".", "]", "").Replace(path)
	var out []string
	for _, s := range strings.Split(path, ".") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// toString prints a template value as the message shows it: JSON numbers
// as written, strings as they are, nil as "".
func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// defaultValue is {{.Attr.city | default "北京"}}: the value, or def when
// the value is empty.
func defaultValue(def string, v any) string {
	if s := toString(v); s != "" {
		return s
	}
	return def
}

// truncRunes keeps the first n characters.
func truncRunes(n int, v any) string {
	s := toString(v)
	if n < 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// daysBetween counts calendar days between a date (2006-01-02, in now's
// zone) and now's date: since (now - date) or until (date - now).
func daysBetween(date string, now time.Time, until bool) (int, error) {
	d, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(date), now.Location())
	if err != nil {
		return 0, fmt.Errorf("%q is not a date like 2020-05-20 — 日期格式应为 2020-05-20", date)
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	then := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	days := int(today.Sub(then).Hours() / 24)
	if until {
		days = -days
	}
	return days, nil
}

// program is a schedule's templates parsed for one run.
type program struct {
	data     map[string]*template.Template
	fields   []string // data keys, sorted
	url      *template.Template
	urlShown *template.Template // the URL with secrets masked, for reasons and logs
	headers  map[string][2]*template.Template
	usesCity bool
}

// maskedSecret stands for a secret's value wherever a URL or header is
// shown.
const maskedSecret = "****"

// compile parses a spec's templates for a run due at now; secret resolves
// {{secret "NAME"}}.
func compile(sp *Spec, now time.Time, secret func(string) (string, error)) (*program, error) {
	p := &program{data: map[string]*template.Template{}, headers: map[string][2]*template.Template{}}
	mask := func(string) (string, error) { return maskedSecret, nil }
	for field, text := range sp.Data {
		t, err := parseTemplate("data."+field, text, now, nil)
		if err != nil {
			return nil, problem.Invalidf("invalid_template", "data."+field, "data.%s is not a valid template: %s — data.%s 模板无效", field, cleanParseError(err), field)
		}
		p.data[field] = t
		p.fields = append(p.fields, field)
		p.usesCity = p.usesCity || strings.Contains(text, ".City")
	}
	sort.Strings(p.fields)
	if src := sp.Source; src != nil && src.Type == SourceHTTP {
		var err error
		if p.url, err = parseTemplate("source.url", src.URL, now, secret); err != nil {
			return nil, problem.Invalidf("invalid_template", "source.url", "source.url is not a valid template: %s — source.url 模板无效", cleanParseError(err))
		}
		p.urlShown, _ = parseTemplate("source.url", src.URL, now, mask)
		p.usesCity = p.usesCity || strings.Contains(src.URL, ".City")
		for name, text := range src.Headers {
			field := "source.headers." + name
			real, err := parseTemplate(field, text, now, secret)
			if err != nil {
				return nil, problem.Invalidf("invalid_template", field, "%s is not a valid template: %s — %s 模板无效", field, cleanParseError(err), field)
			}
			shown, _ := parseTemplate(field, text, now, mask)
			p.headers[name] = [2]*template.Template{real, shown}
			p.usesCity = p.usesCity || strings.Contains(text, ".City")
		}
	}
	return p, nil
}

func cleanParseError(err error) string {
	msg := err.Error()
	// "template: data.thing1:1: function "secrt" not defined" → after the position.
	if parts := strings.SplitN(msg, ": ", 3); len(parts) == 3 && strings.HasPrefix(msg, "template: ") {
		return parts[2]
	}
	return msg
}
