package schedule

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
)

// tickService is a Service whose runs are queued but never worked.
func tickService(t *testing.T, d *db.DB, c *clock) *Service {
	t.Helper()
	q, err := queue.New(context.Background(), d, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop(context.Background()) })
	return New(Options{DB: d, Now: c.Now, Jobs: q, Accounts: []config.Account{{Name: account, Kind: config.KindOfficialAccount, AppID: oaApp}}})
}

// dueTimes lists a schedule's runs as "status due-time-in-UTC", oldest first.
func dueTimes(t *testing.T, s *Service, id int64) []string {
	t.Helper()
	runs, err := s.Runs(context.Background(), id, RunFilter{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(runs) - 1; i >= 0; i-- {
		out = append(out, runs[i].Status+" "+runs[i].DueAt.UTC().Format(time.RFC3339))
	}
	return out
}

func tick(t *testing.T, s *Service, c *clock, at time.Time) TickResult {
	t.Helper()
	c.set(at)
	res, err := s.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A schedule fires at its local time, in a zone without DST and in one
// across the change to summer time, once per due time however often the
// tick runs.
func TestTickLocalTimes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ny := mustZone(t, "America/New_York")
		c := &clock{t: time.Date(2026, 3, 7, 5, 0, 0, 0, ny)}
		s := tickService(t, d, c)
		ctx := context.Background()
		mk := func(tz string) int64 {
			in := weatherInput("http://127.0.0.1:1")
			in.TimeZone = tz
			sc, err := s.Create(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			return sc.ID
		}
		nyID, shID := mk("America/New_York"), mk("Asia/Shanghai")

		// Every minute from Saturday 06:00 to Monday 09:00 in New York,
		// across the change of Sunday 8 March 2026, 02:00 EST → 03:00 EDT.
		queued := 0
		for at := time.Date(2026, 3, 7, 6, 0, 0, 0, ny); at.Before(time.Date(2026, 3, 9, 9, 0, 0, 0, ny)); at = at.Add(time.Minute) {
			queued += tick(t, s, c, at.Add(2*time.Second)).Queued
		}
		want := []string{"queued 2026-03-07T23:30:00Z", "queued 2026-03-08T23:30:00Z"} // Shanghai's 07:30 is 23:30 UTC the day before
		if got := dueTimes(t, s, shID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Asia/Shanghai runs:\n got %v\nwant %v", got, want)
		}
		want = []string{"queued 2026-03-07T12:30:00Z", "queued 2026-03-08T11:30:00Z", "queued 2026-03-09T11:30:00Z"}
		if got := dueTimes(t, s, nyID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("America/New_York runs (07:30 EST, then 07:30 EDT):\n got %v\nwant %v", got, want)
		}
		if queued != 5 || countJobs(t, d, RunArgs{}.Kind()) != 5 {
			t.Errorf("%d runs queued, %d jobs; want 5", queued, countJobs(t, d, RunArgs{}.Kind()))
		}
		// The run's due time is shown in the schedule's zone.
		runs, _ := s.Runs(ctx, nyID, RunFilter{Limit: 1})
		if got := runs[0].DueAt.Format(time.RFC3339); got != "2026-03-09T07:30:00-04:00" {
			t.Errorf("due_at %s", got)
		}
	})
}

// A due time missed while the gateway was down runs late within the
// misfire grace, and is recorded as missed beyond it.
func TestMisfireGrace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		sh := mustZone(t, "Asia/Shanghai")
		c := &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, sh)}
		s := tickService(t, d, c)
		ctx := context.Background()
		sc, err := s.Create(ctx, weatherInput("http://127.0.0.1:1")) // 07:30, grace 1h
		if err != nil {
			t.Fatal(err)
		}

		// Down at 07:30, back at 08:10: within the grace, it runs once, late.
		if res := tick(t, s, c, time.Date(2026, 11, 24, 8, 10, 0, 0, sh)); res.Queued != 1 || res.Missed != 0 {
			t.Errorf("40 minutes late: %+v, want 1 queued", res)
		}
		if res := tick(t, s, c, time.Date(2026, 11, 24, 8, 11, 0, 0, sh)); res.Queued != 0 {
			t.Errorf("again: %+v", res)
		}
		// Down at 07:30 the next day, back at 09:00: beyond the grace.
		if res := tick(t, s, c, time.Date(2026, 11, 25, 9, 0, 0, 0, sh)); res.Queued != 0 || res.Missed != 1 {
			t.Errorf("90 minutes late: %+v, want 1 missed", res)
		}
		// Down for three days, back at 07:30:05 on the fourth: two missed,
		// the due time of the day runs.
		if res := tick(t, s, c, time.Date(2026, 11, 28, 7, 30, 5, 0, sh)); res.Queued != 1 || res.Missed != 2 {
			t.Errorf("down three days: %+v, want 1 queued and 2 missed", res)
		}
		want := []string{"queued 2026-11-23T23:30:00Z", "missed 2026-11-24T23:30:00Z", "missed 2026-11-25T23:30:00Z",
			"missed 2026-11-26T23:30:00Z", "queued 2026-11-27T23:30:00Z"}
		if got := dueTimes(t, s, sc.ID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("runs:\n got %v\nwant %v", got, want)
		}
		if n := countJobs(t, d, RunArgs{}.Kind()); n != 2 {
			t.Errorf("%d run jobs, want 2 (missed runs have none)", n)
		}
		runs, _ := s.Runs(ctx, sc.ID, RunFilter{Limit: 2})
		if missed := runs[1]; missed.Status != RunMissed || !strings.Contains(missed.Reason, "misfire grace (1h0m0s)") || missed.FinishedAt == nil {
			t.Errorf("missed run: %+v", missed)
		}
		if sc, _ := s.Get(ctx, sc.ID); sc.NextRunAt.Format(time.RFC3339) != "2026-11-29T07:30:00+08:00" {
			t.Errorf("next run %v", sc.NextRunAt)
		}
	})
}

// Two gateway instances (two River clients) on one PostgreSQL database,
// both ticking in the due minute and both running the periodic tick: one
// run, one card per phone.
func TestTwoInstancesOneRun(t *testing.T) {
	t.Parallel()
	d := dbtest.Postgres(t)
	b := setup(t, d)
	sh := mustZone(t, "Asia/Shanghai")
	b.clock.set(time.Date(2026, 11, 24, 7, 0, 0, 0, sh))
	first := b.instance(t, instanceOptions{work: true, periodic: true})
	second := b.instance(t, instanceOptions{work: true, periodic: true})
	b.ready(t, first)
	phones := []string{
		b.follower(t, first.svc, "张三", map[string]string{"city": "北京", "location": "101010100"}),
		b.follower(t, first.svc, "李四", map[string]string{"city": "上海"}),
	}
	sc, err := first.svc.Create(context.Background(), weatherInput(b.simURL))
	if err != nil {
		t.Fatal(err)
	}

	b.clock.set(time.Date(2026, 11, 24, 7, 30, 1, 0, sh))
	var wg sync.WaitGroup
	for _, in := range []*instance{first, second, first, second, first, second} {
		wg.Go(func() {
			if _, err := in.svc.Tick(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	runs := waitRuns(t, first.svc, sc.ID, 1)
	d1 := waitRun(t, first.svc, sc.ID, runs[0].ID)
	// Wait for River's periodic tick (the leader inserts one at start),
	// which found nothing more to do.
	for deadline := time.Now().Add(20 * time.Second); countDoneTicks(t, d) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("River's periodic tick never ran")
		}
	}
	if runs, _ := second.svc.Runs(context.Background(), sc.ID, RunFilter{}); len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	if n := countJobs(t, d, RunArgs{}.Kind()); n != 1 {
		t.Errorf("%d run jobs, want 1", n)
	}
	if d1.Counts.Sent != 2 || d1.Counts.Skipped != 0 {
		t.Errorf("counts %+v", d1.Counts)
	}
	waitCards(t, b, phones, 1)
}

// countDoneTicks counts the tick jobs River has completed.
func countDoneTicks(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'completed'`,
		TickArgs{}.Kind()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRuns waits until a schedule has n runs.
func waitRuns(t *testing.T, s *Service, id int64, n int) []Run {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runs, err := s.Runs(context.Background(), id, RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) >= n {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs after 20s, want %d", len(runs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCards waits until each phone has n template cards, then checks that
// no more arrive.
func waitCards(t *testing.T, b *bundle, phones []string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range phones {
		for len(b.cards(t, p)) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, p := range phones {
		if got := len(b.cards(t, p)); got != n {
			t.Errorf("phone %s has %d cards, want %d", p, got, n)
		}
	}
}

// A gateway restarted in the due minute finds the run queued by the one
// that stopped, and runs it once.
func TestRestartInDueMinute(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d)
		sh := mustZone(t, "Asia/Shanghai")
		b.clock.set(time.Date(2026, 11, 24, 7, 0, 0, 0, sh))
		before := b.instance(t, instanceOptions{}) // queues jobs, works none: it dies before
		b.ready(t, before)
		phones := []string{
			b.follower(t, before.svc, "张三", map[string]string{"city": "北京"}),
			b.follower(t, before.svc, "李四", map[string]string{"city": "北京"}),
		}
		sc, err := before.svc.Create(context.Background(), weatherInput(b.simURL))
		if err != nil {
			t.Fatal(err)
		}
		if res := tick(t, before.svc, b.clock, time.Date(2026, 11, 24, 7, 30, 5, 0, sh)); res.Queued != 1 {
			t.Fatalf("first tick: %+v", res)
		}
		if err := before.q.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}

		after := b.instance(t, instanceOptions{work: true})
		if res := tick(t, after.svc, b.clock, time.Date(2026, 11, 24, 7, 30, 40, 0, sh)); res.Queued != 0 {
			t.Errorf("tick after the restart: %+v, want nothing new", res)
		}
		runs := waitRuns(t, after.svc, sc.ID, 1)
		got := waitRun(t, after.svc, sc.ID, runs[0].ID)
		if got.Counts.Sent != 2 || got.SourceCalls != 1 {
			t.Errorf("run %+v", got.Run)
		}
		waitCards(t, b, phones, 1)
	})
}

// crashAfterSend hands the first message to the push pipeline, then fails
// as a process killed before it recorded the message would.
type crashAfterSend struct {
	Sender
	mu      sync.Mutex
	crashed bool
	calls   int
}

var errCrash = errors.New("simulated crash after the send")

func (c *crashAfterSend) Send(ctx context.Context, req push.Request, o push.SendOptions) (*push.SendResult, error) {
	res, err := c.Sender.Send(ctx, req, o)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if err == nil && !c.crashed {
		c.crashed = true
		return nil, errCrash
	}
	return res, err
}

// A run whose worker dies after handing a message over, before recording
// it, is retried; the retry gets the same message back from the push
// pipeline (same Idempotency-Key) and nobody gets a second card.
func TestCrashAfterSend(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setup(t, d)
		b.clock.set(time.Date(2026, 11, 24, 7, 0, 0, 0, mustZone(t, "Asia/Shanghai")))
		var crash *crashAfterSend
		in := b.instance(t, instanceOptions{work: true, sender: func(s Sender) Sender {
			crash = &crashAfterSend{Sender: s}
			return crash
		}})
		b.ready(t, in)
		phones := []string{
			b.follower(t, in.svc, "张三", map[string]string{"city": "北京"}),
			b.follower(t, in.svc, "李四", map[string]string{"city": "上海"}),
			b.follower(t, in.svc, "王五", map[string]string{"city": "北京"}),
		}
		sc, err := in.svc.Create(context.Background(), weatherInput(b.simURL))
		if err != nil {
			t.Fatal(err)
		}
		run, err := in.svc.RunNow(context.Background(), sc.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := waitRun(t, in.svc, sc.ID, run.ID)
		if got.Status != RunDone || got.Counts.Sent != 3 {
			t.Errorf("run %+v", got.Run)
		}
		var messages int
		if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM push_messages`).Scan(&messages); err != nil {
			t.Fatal(err)
		}
		if messages != 2 || crash.calls != 3 {
			t.Errorf("%d messages after %d sends, want 2 (one per city) after 3", messages, crash.calls)
		}
		waitCards(t, b, phones, 1)
	})
}
