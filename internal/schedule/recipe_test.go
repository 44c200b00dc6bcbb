package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// forecast asks the simulator's weather API what today looks like in a
// city, as the run should have shown it.
func forecast(t *testing.T, b *bundle, location string) (text, temps string) {
	t.Helper()
	resp, err := http.Get(b.simURL + "/v7/weather/3d?location=" + location + "&key=" + b.sim.WeatherKey())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Daily []struct{ TextDay, TempMin, TempMax string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Daily) == 0 {
		t.Fatalf("forecast of %s: %v", location, err)
	}
	d := body.Daily[0]
	return d.TextDay, d.TempMin + "~" + d.TempMax + "C"
}

// The weather recipe end to end against the simulator: at 07:30 each
// phone receives one card with its own city's weather; a city whose
// weather fails skips only its followers, and the run's counts say so.
func TestWeatherRecipe(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d)
		sh := mustZone(t, "Asia/Shanghai")
		b.clock.set(time.Date(2026, 11, 24, 6, 0, 0, 0, sh))
		in := b.instance(t, instanceOptions{work: true})
		b.ready(t, in)
		type phone struct{ openid, city, location string }
		var phones []phone
		for _, p := range []struct{ name, city, location string }{
			{"张三", "北京", "101010100"}, {"李四", "北京", "101010100"}, {"王五", "上海", "101020100"},
			{"赵六", "广州", "101280101"}, {"钱七", "广州", "101280101"},
		} {
			attrs := map[string]string{"city": p.city, "location": p.location}
			phones = append(phones, phone{b.follower(t, in.svc, p.name, attrs), p.city, p.location})
		}
		cityless := b.follower(t, in.svc, "孙八", nil)
		if err := b.sim.SetWeatherFault(wechatsim.WeatherFault{Location: "广州", Code: "500"}); err != nil {
			t.Fatal(err)
		}
		sc, err := in.svc.Create(context.Background(), weatherInput(b.simURL))
		if err != nil {
			t.Fatal(err)
		}

		if res := tick(t, in.svc, b.clock, time.Date(2026, 11, 24, 7, 30, 1, 0, sh)); res.Queued != 1 {
			t.Fatalf("tick at 07:30: %+v", res)
		}
		runs := waitRuns(t, in.svc, sc.ID, 1)
		// Wait for the receipts too.
		deadline := time.Now().Add(20 * time.Second)
		var run RunDetail
		for {
			run = waitRun(t, in.svc, sc.ID, runs[0].ID)
			if run.Counts.Delivered == 3 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		want := Counts{Recipients: 6, Sent: 3, Delivered: 3, Skipped: 3}
		if run.Status != RunDone || run.Counts != want {
			t.Errorf("run %s counts %+v, want %+v", run.Status, run.Counts, want)
		}
		// 北京 once for two followers, 上海 once, 广州 once: an answer
		// that says it failed is not retried, only transport errors, 429
		// and 5xx statuses are.
		if run.SourceCalls != 3 {
			t.Errorf("%d source calls, want 3", run.SourceCalls)
		}
		if calls := b.sim.WeatherCalls(); calls["101010100"] != 1 || calls["101020100"] != 1 || calls["101280101"] != 1 {
			t.Errorf("weather calls %v", calls)
		}

		for _, p := range phones {
			cards := b.cards(t, p.openid)
			if p.city == "广州" {
				if len(cards) != 0 {
					t.Errorf("%s: %d cards despite the failing weather", p.city, len(cards))
				}
				continue
			}
			if len(cards) != 1 {
				t.Errorf("%s: %d cards, want 1", p.city, len(cards))
				continue
			}
			text, temps := forecast(t, b, p.location)
			wantData := map[string]string{"thing1": p.city, "phrase2": text, "character_string3": temps, "date4": "2026年11月24日"}
			if fmt.Sprint(cards[0].Data) != fmt.Sprint(wantData) {
				t.Errorf("%s card %v, want %v", p.city, cards[0].Data, wantData)
			}
		}
		if n := len(b.cards(t, cityless)); n != 0 {
			t.Errorf("follower without a city got %d cards", n)
		}

		reasons := map[string]string{}
		for _, r := range run.Recipients {
			reasons[r.OpenID] = r.Status + " " + r.Reason
		}
		for _, p := range phones {
			got := reasons[p.openid]
			switch p.city {
			case "广州":
				if !strings.HasPrefix(got, `skipped source: GET `+b.simURL+`/v7/weather/3d?location=101280101&key=****: code is "500", want "200"`) {
					t.Errorf("广州 follower: %s", got)
				}
			default:
				if got != "delivered " { // no reason
					t.Errorf("%s follower: %q", p.city, got)
				}
			}
		}
		if got := reasons[cityless]; got != "skipped "+ReasonNoCity {
			t.Errorf("cityless follower: %q", got)
		}
		// The key is never written down.
		var leaked int
		if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM schedule_run_recipients WHERE reason LIKE $1`,
			"%"+b.sim.WeatherKey()+"%").Scan(&leaked); err != nil || leaked != 0 {
			t.Errorf("%d reasons contain the key (%v)", leaked, err)
		}
	})
}

// A thousand followers in one city cost one call of the data source; a
// follower without a city is skipped before any call.
func TestOneCallPerCity(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d)
	in := b.instance(t, instanceOptions{})
	ctx := context.Background()
	now := b.clock.Now()
	for i := range 1000 {
		openid := fmt.Sprintf("o-city-%04d", i)
		if _, err := d.ExecContext(ctx, `INSERT INTO followers (account, openid, subscribed, created_at, updated_at) VALUES ($1, $2, TRUE, $3, $3)`,
			account, openid, now); err != nil {
			t.Fatal(err)
		}
		city := "北京"
		if _, err := in.svc.SetAttributes(ctx, account, openid, map[string]*string{"city": &city}, false); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := in.svc.Create(ctx, weatherInput(b.simURL))
	if err != nil {
		t.Fatal(err)
	}
	targets, calls, err := in.svc.plan(ctx, &sc, now)
	if err != nil {
		t.Fatal(err)
	}
	pending := 0
	for _, tg := range targets {
		if tg.status == rowPending {
			pending++
		}
	}
	if len(targets) != 1000 || pending != 1000 || calls != 1 || b.sim.WeatherCalls()["101010100"] != 1 {
		t.Errorf("%d targets, %d pending, %d source calls (simulator: %v); want 1000, 1000, 1",
			len(targets), pending, calls, b.sim.WeatherCalls())
	}
}

// Data that breaks WeChat's rules skips the recipients it was made for;
// a path missing from the answer skips with the reason.
func TestDataProblemsSkip(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d)
	b.clock.set(time.Date(2026, 11, 24, 7, 0, 0, 0, mustZone(t, "Asia/Shanghai")))
	in := b.instance(t, instanceOptions{work: true})
	b.ready(t, in)
	good := b.follower(t, in.svc, "张三", map[string]string{"city": "北京"})
	bad := b.follower(t, in.svc, "李四", map[string]string{"city": "上海"})
	input := weatherInput(b.simURL)
	// A phrase must be Chinese: 上海's follower gets a Latin one.
	input.Data["phrase2"] = `{{if eq .City "上海"}}sunny{{else}}{{get .Response "daily.0.textDay"}}{{end}}`
	sc, err := in.svc.Create(context.Background(), input)
	if err != nil {
		t.Fatal(err)
	}
	run, err := in.svc.RunNow(context.Background(), sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := waitRun(t, in.svc, sc.ID, run.ID)
	if got.Status != RunDone || got.Counts.Sent != 1 || got.Counts.Skipped != 1 {
		t.Errorf("run %s %+v", got.Status, got.Counts)
	}
	for _, r := range got.Recipients {
		if r.OpenID == bad && (r.Status != "skipped" || !strings.Contains(r.Reason, "phrase2")) {
			t.Errorf("bad data: %s %s", r.Status, r.Reason)
		}
	}
	waitCards(t, b, []string{good}, 1)

	// A path the answer does not have.
	input.Data["phrase2"] = `{{get .Response "daily.0.weather"}}`
	if _, err := in.svc.Update(context.Background(), sc.ID, input); err != nil {
		t.Fatal(err)
	}
	run, err = in.svc.RunNow(context.Background(), sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	got = waitRun(t, in.svc, sc.ID, run.ID)
	if got.Counts.Skipped != 2 || !strings.Contains(got.Recipients[0].Reason, `data.phrase2: error calling get: the answer has no "weather" under "daily.0"`) {
		t.Errorf("missing path: %+v %+v", got.Counts, got.Recipients)
	}

	// A template that does not exist fails the run as a whole.
	input.Template = "no_such_alias"
	input.Data["phrase2"] = "晴"
	if _, err := in.svc.Update(context.Background(), sc.ID, input); err != nil {
		t.Fatal(err)
	}
	run, _ = in.svc.RunNow(context.Background(), sc.ID)
	got = waitRun(t, in.svc, sc.ID, run.ID)
	if got.Status != RunFailed || !strings.Contains(got.Reason, "template_not_found") || got.Counts.Skipped != 2 {
		t.Errorf("unknown template: %s %q %+v", got.Status, got.Reason, got.Counts)
	}
}

// A source call that fails at the HTTP level is retried; one that does not
// answer in time skips its recipients with the reason.
func TestSourceRetriesAndTimeout(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d)
	in := b.instance(t, instanceOptions{})
	ctx := context.Background()
	b.follower(t, in.svc, "张三", map[string]string{"city": "北京"})
	b.follower(t, in.svc, "李四", map[string]string{"city": "上海"})
	input := weatherInput(b.simURL)
	input.Source.Timeout = Duration(300 * time.Millisecond)
	sc, err := in.svc.Create(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetWeatherFault(wechatsim.WeatherFault{Location: "北京", HTTPStatus: http.StatusServiceUnavailable, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.SetWeatherFault(wechatsim.WeatherFault{Location: "上海", Latency: time.Second}); err != nil {
		t.Fatal(err)
	}
	targets, calls, err := in.svc.plan(ctx, &sc, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	byCity := map[string]*target{}
	for _, tg := range targets {
		byCity[tg.rc.City] = tg
	}
	if tg := byCity["北京"]; tg.status != rowPending {
		t.Errorf("北京 after one 503: %s %s", tg.status, tg.reason)
	}
	if tg := byCity["上海"]; tg.status != rowSkipped || !strings.Contains(tg.reason, "no answer within 300ms (after 2 attempts)") {
		t.Errorf("上海 too slow: %s %s", tg.status, tg.reason)
	}
	if calls != 4 {
		t.Errorf("%d calls, want 4 (two per city)", calls)
	}
}
