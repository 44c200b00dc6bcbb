package follower_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	jobApp    = "wx00000000000000f1"
	jobSecret = "job-secret-0123456789abcdef0123"
	infoPath  = "/cgi-bin/user/info"
)

type jobBundle struct {
	sim   *wechatsim.Simulator
	store *follower.Store
	q     *queue.Queue
	jobs  *follower.ProfileJobs
}

// fixedRetry retries failed jobs after a short fixed delay.
type fixedRetry time.Duration

func (r fixedRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Duration(r)) }

// setupJobs runs the profile worker on d against a simulator whose app
// "main" is bound to an Open Platform account (so unionids come back).
func setupJobs(t *testing.T, d *db.DB) *jobBundle {
	t.Helper()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{{AppID: jobApp, AppSecret: jobSecret, OpenPlatform: "group"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	tokens := token.NewRegistry(d, token.Options{})
	_, err = tokens.AddAccount(config.Account{Name: "main", AppID: jobApp, AppSecret: jobSecret, APIBaseURLs: []string{srv.URL}},
		token.AccountOptions{HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	store := follower.NewStore(d, nil)
	workers := river.NewWorkers()
	river.AddWorker(workers, follower.NewProfileWorker(store, tokens, slog.New(slog.DiscardHandler)))
	q, err := queue.New(t.Context(), d, queue.Options{
		Workers:      workers,
		Queues:       map[string]int{follower.Queue: follower.QueueWorkers},
		PollInterval: 50 * time.Millisecond,
		RetryPolicy:  fixedRetry(20 * time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q.Stop(ctx)
	})
	if err := q.Start(context.WithoutCancel(t.Context())); err != nil {
		t.Fatal(err)
	}
	return &jobBundle{sim: sim, store: store, q: q, jobs: follower.NewProfileJobs(q, tokens, nil)}
}

func (b *jobBundle) follow(t *testing.T) *wechatsim.User {
	t.Helper()
	u, err := b.sim.CreateUser(t.Context(), wechatsim.CreateUserRequest{AppID: jobApp, Follow: true, Language: "zh_TW"})
	if err != nil {
		t.Fatal(err)
	}
	m := &wechat.Message{FromUserName: u.OpenID, CreateTime: u.SubscribeTime, MsgType: wechat.MsgTypeEvent, Event: wechat.EventSubscribe}
	if err := b.store.ApplyEvent(t.Context(), "main", m); err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *jobBundle) insert(t *testing.T, args follower.FetchProfileArgs) *rivertype.JobRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := b.q.Insert(ctx, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	row, err := b.q.WaitJob(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

func TestProfileJob(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		b := setupJobs(t, d)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()

		t.Run("fetched once for repeated subscribes", func(t *testing.T) {
			u := b.follow(t)
			// Uniqueness is per minute (River rounds the insert time down),
			// so inserts that straddle a minute boundary fairly make two jobs.
			first := time.Now()
			for range 3 {
				if err := b.jobs.FetchProfile(ctx, "main", u.OpenID); err != nil {
					t.Fatal(err)
				}
			}
			periods := 1 + int(time.Now().Truncate(time.Minute).Sub(first.Truncate(time.Minute))/time.Minute)
			if err := b.q.WaitIdle(ctx, follower.FetchProfileArgs{}.Kind()); err != nil {
				t.Fatal(err)
			}
			f, err := b.store.Get(ctx, "main", u.OpenID)
			if err != nil {
				t.Fatal(err)
			}
			if f.UnionID != u.UnionID || f.UnionID == "" || f.Language != "zh_TW" || f.SubscribeScene != wechatsim.SceneSearch ||
				!f.Subscribed || f.ProfileFetchedAt == nil || f.SubscribedAt.Unix() != u.SubscribeTime {
				t.Errorf("follower after the job: %+v (sim user %+v)", f, u)
			}
			if n := b.sim.CallCount(jobApp, infoPath); n != periods {
				t.Errorf("%d user/info calls for 3 subscribes within %d minute period(s), want %d", n, periods, periods)
			}
		})

		t.Run("40003 cancels", func(t *testing.T) {
			row := b.insert(t, follower.FetchProfileArgs{Account: "main", OpenID: "o-not-of-this-app"})
			if row.State != rivertype.JobStateCancelled || row.Attempt != 1 || len(row.Errors) != 1 || !strings.Contains(row.Errors[0].Error, "40003") {
				t.Errorf("state %s attempt %d errors %+v", row.State, row.Attempt, row.Errors)
			}
			if _, err := b.store.Get(ctx, "main", "o-not-of-this-app"); err != follower.ErrNotFound {
				t.Errorf("row for a foreign openid: %v", err)
			}
		})

		t.Run("-1 is retried", func(t *testing.T) {
			u := b.follow(t)
			if _, err := b.sim.SetFault(wechatsim.Fault{AppID: jobApp, Path: infoPath, ErrCode: -1, Times: 2}); err != nil {
				t.Fatal(err)
			}
			defer b.sim.ClearFaults()
			before := b.sim.CallCount(jobApp, infoPath)
			row := b.insert(t, follower.FetchProfileArgs{Account: "main", OpenID: u.OpenID})
			if row.State != rivertype.JobStateCompleted || row.Attempt != 3 {
				t.Errorf("state %s after %d attempts, want completed after 3", row.State, row.Attempt)
			}
			if n := b.sim.CallCount(jobApp, infoPath) - before; n != 3 {
				t.Errorf("%d user/info calls, want 3", n)
			}
			if f, _ := b.store.Get(ctx, "main", u.OpenID); f.UnionID != u.UnionID {
				t.Errorf("unionid %q after retries", f.UnionID)
			}
		})

		t.Run("a rejected token is replaced by the client", func(t *testing.T) {
			u := b.follow(t)
			if _, err := b.sim.SetFault(wechatsim.Fault{AppID: jobApp, InvalidateTokens: true}); err != nil {
				t.Fatal(err)
			}
			row := b.insert(t, follower.FetchProfileArgs{Account: "main", OpenID: u.OpenID})
			if row.State != rivertype.JobStateCompleted {
				t.Errorf("state %s after %d attempts: %+v", row.State, row.Attempt, row.Errors)
			}
		})

		t.Run("quota snoozes", func(t *testing.T) {
			u := b.follow(t)
			if _, err := b.sim.SetFault(wechatsim.Fault{AppID: jobApp, Path: infoPath, ErrCode: 45009, Times: 1}); err != nil {
				t.Fatal(err)
			}
			defer b.sim.ClearFaults()
			res, err := b.q.Insert(ctx, follower.FetchProfileArgs{Account: "main", OpenID: u.OpenID}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for {
				row, err := b.q.Client().JobGet(ctx, res.Job.ID)
				if err != nil {
					t.Fatal(err)
				}
				if row.State == rivertype.JobStateScheduled {
					if wait := time.Until(row.ScheduledAt); wait < 50*time.Minute {
						t.Errorf("snoozed for %v, want about an hour", wait)
					}
					break
				}
				if row.FinalizedAt != nil {
					t.Fatalf("quota: job finalized as %s", row.State)
				}
				select {
				case <-ctx.Done():
					t.Fatalf("job still %s", row.State)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if _, err := b.q.Client().JobCancel(ctx, res.Job.ID); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("accounts without an API client", func(t *testing.T) {
			if err := b.jobs.FetchProfile(ctx, "no-secret", "o1"); err != nil {
				t.Fatal(err)
			}
			list, err := b.q.Client().JobList(ctx, river.NewJobListParams().Kinds(follower.FetchProfileArgs{}.Kind()).First(100))
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range list.Jobs {
				if strings.Contains(string(j.EncodedArgs), "no-secret") {
					t.Errorf("a job was queued for an account without API client: %s", j.EncodedArgs)
				}
			}
			row := b.insert(t, follower.FetchProfileArgs{Account: "no-secret", OpenID: "o1"})
			if row.State != rivertype.JobStateCancelled {
				t.Errorf("job of an unknown account: %s", row.State)
			}
		})
	})
}

// The job is written with the rows it belongs to: none after a rollback.
func TestFetchProfileTx(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setupJobs(t, d)
	ctx := t.Context()
	for _, commit := range []bool{false, true} {
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.jobs.FetchProfileTx(ctx, tx, "main", "o-tx"); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE kind = $1`, follower.FetchProfileArgs{}.Kind()).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d jobs (%v), want 1", n, err)
	}
}
