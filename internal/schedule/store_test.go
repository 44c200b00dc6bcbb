package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
)

// storeService is a Service without queue or push: schedules and
// attributes only.
func storeService(d *db.DB, c *clock) *Service {
	return New(Options{DB: d, Now: c.Now, Accounts: []config.Account{{Name: account, Kind: config.KindOfficialAccount, AppID: oaApp}}})
}

func TestStore(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)} // 16:00 in Shanghai
		s := storeService(d, c)

		in := weatherInput("http://127.0.0.1:1")
		in.Vars = map[string]string{"greeting": "早上好"}
		sc, err := s.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if sc.ID == 0 || !sc.Enabled || sc.TimeZone != "Asia/Shanghai" || time.Duration(sc.MisfireGrace) != DefaultMisfireGrace {
			t.Errorf("created %+v", sc)
		}
		if sc.NextRunAt == nil || sc.NextRunAt.Format(time.RFC3339) != "2026-11-25T07:30:00+08:00" {
			t.Errorf("next_run_at %v, want 2026-11-25T07:30:00+08:00", sc.NextRunAt)
		}
		got, err := s.Get(ctx, sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(sc)
		b, _ := json.Marshal(got)
		if string(a) != string(b) {
			t.Errorf("get differs from create:\n%s\n%s", a, b)
		}
		if got.Source == nil || got.Source.Expect["code"] != "200" || got.Vars["greeting"] != "早上好" || got.Data["thing1"] != "{{.City}}" {
			t.Errorf("spec not kept: %+v", got.Spec)
		}

		times, err := s.NextTimes(ctx, sc.ID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(times) != 3 || times[2].Format(time.RFC3339) != "2026-11-27T07:30:00+08:00" {
			t.Errorf("next times %v", times)
		}

		// Pause: no next run; resume: from now, not catching up.
		if sc, err = s.SetEnabled(ctx, sc.ID, false); err != nil || sc.Enabled || sc.NextRunAt != nil {
			t.Fatalf("paused: %+v %v", sc, err)
		}
		c.set(time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)) // 06:00 on the 28th in Shanghai
		if sc, err = s.SetEnabled(ctx, sc.ID, true); err != nil || !sc.Enabled || sc.NextRunAt.Format(time.RFC3339) != "2026-11-28T07:30:00+08:00" {
			t.Fatalf("resumed: %+v %v", sc.NextRunAt, err)
		}

		// Update: a new time moves the next run; the rest is replaced.
		in.Cron, in.Name, in.Vars = "0 8 * * 1-5", "工作日天气", nil
		grace := Duration(10 * time.Minute)
		in.MisfireGrace = &grace
		if sc, err = s.Update(ctx, sc.ID, in); err != nil {
			t.Fatal(err)
		}
		if sc.Name != "工作日天气" || sc.Vars != nil || time.Duration(sc.MisfireGrace) != 10*time.Minute ||
			sc.NextRunAt.Format(time.RFC3339) != "2026-11-30T08:00:00+08:00" {
			t.Errorf("updated: %+v next %v", sc, sc.NextRunAt)
		}

		second := in
		second.Name, second.Account = "other", account
		if _, err := s.Create(ctx, second); err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx, account)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %d %v", len(list), err)
		}
		if list, _ := s.List(ctx, "nobody"); len(list) != 0 {
			t.Errorf("list of another account: %d", len(list))
		}

		if err := s.Delete(ctx, sc.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, sc.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("get after delete: %v", err)
		}
		if err := s.Delete(ctx, sc.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}

// Every mistake is a 4xx-kind *problem.Error naming the field, in English and
// Chinese.
func TestValidation(t *testing.T) {
	t.Parallel()
	s := storeService(dbtest.SQLite(t), &clock{t: time.Now()})
	base := func() Input { return weatherInput("http://127.0.0.1:1") }
	for _, tc := range []struct {
		name  string
		edit  func(*Input)
		field string
	}{
		{"no name", func(in *Input) { in.Name = " " }, "name"},
		{"unknown account", func(in *Input) { in.Account = "nope" }, "account"},
		{"bad cron", func(in *Input) { in.Cron = "30 25 * * *" }, "cron"},
		{"bad zone", func(in *Input) { in.TimeZone = "Mars/Olympus" }, "timezone"},
		{"grace too long", func(in *Input) { g := Duration(200 * time.Hour); in.MisfireGrace = &g }, "misfire_grace"},
		{"grace too short", func(in *Input) { g := Duration(10 * time.Second); in.MisfireGrace = &g }, "misfire_grace"},
		{"no audience", func(in *Input) { in.Audience = Audience{} }, "audience.kind"},
		{"tag without id", func(in *Input) { in.Audience = Audience{Kind: AudienceTag} }, "audience"},
		{"openids without list", func(in *Input) { in.Audience = Audience{Kind: AudienceOpenIDs} }, "audience"},
		{"bad channel", func(in *Input) { in.Channel = "sms" }, "channel"},
		{"no template", func(in *Input) { in.Template = "" }, "template"},
		{"no data", func(in *Input) { in.Data = nil }, "data"},
		{"broken data template", func(in *Input) { in.Data["thing1"] = "{{.City" }, "data.thing1"},
		{"secret in data", func(in *Input) { in.Data["thing1"] = `{{secret "X"}}` }, "data.thing1"},
		{"unknown helper", func(in *Input) { in.Data["thing1"] = `{{nope .City}}` }, "data.thing1"},
		{"source url not http", func(in *Input) { in.Source.URL = "ftp://x" }, "source.url"},
		{"source type", func(in *Input) { in.Source.Type = "grpc" }, "source.type"},
		{"source retries", func(in *Input) { r := 9; in.Source.Retries = &r }, "source.retries"},
		{"source timeout", func(in *Input) { in.Source.Timeout = Duration(time.Hour) }, "source.timeout"},
		{"broken url template", func(in *Input) { in.Source.URL = "http://x/{{.City" }, "source.url"},
		{"tag_cities key", func(in *Input) { in.TagCities = map[string]string{"beijing": "北京"} }, "tag_cities.beijing"},
	} {
		in := base()
		tc.edit(&in)
		_, err := s.Create(context.Background(), in)
		var e *problem.Error
		if !errors.As(err, &e) || e.Field != tc.field || e.Kind == "" {
			t.Errorf("%s: %v, want an error on %s", tc.name, err, tc.field)
			continue
		}
		if !strings.Contains(e.Message, " — ") {
			t.Errorf("%s: message not bilingual: %s", tc.name, e.Message)
		}
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := context.Background()
		s := storeService(d, &clock{t: time.Now()})
		str := func(v string) *string { return &v }
		got, err := s.SetAttributes(ctx, account, "o-1", map[string]*string{"city": str("北京"), "location": str("101010100")}, false)
		if err != nil || got["city"] != "北京" || len(got) != 2 {
			t.Fatalf("set: %v %v", got, err)
		}
		got, err = s.SetAttributes(ctx, account, "o-1", map[string]*string{"location": nil, "since": str(" 2020-05-20 ")}, true)
		if err != nil || got["city"] != "北京" || got["since"] != "2020-05-20" || len(got) != 2 {
			t.Fatalf("merge: %v %v", got, err)
		}
		if got, _ := s.Attributes(ctx, account, "o-1"); got["since"] != "2020-05-20" || got["location"] != "" {
			t.Errorf("read back %v", got)
		}
		got, err = s.SetAttributes(ctx, account, "o-1", map[string]*string{"city": str("上海")}, false)
		if err != nil || len(got) != 1 {
			t.Fatalf("replace: %v %v", got, err)
		}
		if got, _ := s.Attributes(ctx, account, "o-unknown"); len(got) != 0 {
			t.Errorf("unknown follower: %v", got)
		}
		for _, bad := range []map[string]*string{{"1city": str("x")}, {"city": str(strings.Repeat("长", 1001))}} {
			var e *problem.Error
			if _, err := s.SetAttributes(ctx, account, "o-1", bad, true); !errors.As(err, &e) || e.Kind != problem.Invalid {
				t.Errorf("bad attributes %v: %v", bad, err)
			}
		}
		var e *problem.Error
		if _, err := s.Attributes(ctx, "nope", "o-1"); !errors.As(err, &e) || e.Kind != problem.NotFound {
			t.Errorf("unknown account: %v", err)
		}
	})
}

func TestRenderHelpers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 7, 30, 0, 0, mustZone(t, "Asia/Shanghai"))
	var answer any
	if err := json.Unmarshal([]byte(`{"code":"200","now":{"temp":"24","text":"晴"},"daily":[{"tempMax":"12"},{"tempMax":"15"}]}`), &answer); err != nil {
		t.Fatal(err)
	}
	rc := &Recipient{City: "北京", Attr: map[string]string{"since": "2020-05-20"}, Vars: map[string]string{"who": "小明"},
		Follower: FollowerInfo{Remark: "老王"}, Now: now, Response: answer}
	for _, tc := range []struct{ tmpl, want string }{
		{`{{.City}}`, "北京"},
		{`{{get .Response "now.temp"}}`, "24"},
		{`{{get .Response "daily.1.tempMax"}}/{{get .Response "daily[0].tempMax"}}`, "15/12"},
		{`{{if has .Response "now.wind"}}wind{{else}}calm{{end}}`, "calm"},
		{`{{date "2006年01月02日 15:04"}}`, "2026年11月24日 07:30"},
		{`在一起第 {{add (daysSince .Attr.since) 1}} 天`, "在一起第 2380 天"},
		{`{{daysUntil "2026-12-25"}}`, "31"},
		{`{{.Attr.missing | default "无"}}|{{.Vars.who}}|{{.Follower.Remark}}`, "无|小明|老王"},
		{`{{trunc 2 "一二三四"}}{{upper "ab"}}{{replace "晴" "☀" (get .Response "now.text")}}`, "一二AB☀"},
	} {
		tp, err := parseTemplate("data.x", tc.tmpl, now, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		got, err := execute(tp, rc)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q (%v), want %q", tc.tmpl, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ tmpl, want string }{
		{`{{get .Response "now.wind"}}`, `data.x: error calling get: the answer has no "wind" under "now"`},
		{`{{get .Response "daily.5.tempMax"}}`, `data.x: error calling get: "5" is not an index of the 2 items under "daily"`},
		{`{{daysSince "yesterday"}}`, `data.x: error calling daysSince: "yesterday" is not a date like 2020-05-20`},
	} {
		tp, _ := parseTemplate("data.x", tc.tmpl, now, nil)
		_, err := execute(tp, rc)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %s…", tc.tmpl, err, tc.want)
		}
	}
}
