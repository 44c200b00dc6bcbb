package webhook_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/webhook"
)

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"binding.completed"}`)
	now := time.Unix(1764000000, 0)
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign("whsec_secret", now.Unix(), body))
	if err := webhook.Verify("whsec_secret", h, body, now.Add(time.Minute), 0); err != nil {
		t.Errorf("valid: %v", err)
	}
	tests := []struct {
		name   string
		secret string
		body   string
		at     time.Time
	}{
		{"other secret", "whsec_other", string(body), now},
		{"changed body", "whsec_secret", `{"type":"binding.deleted"}`, now},
		{"replayed later", "whsec_secret", string(body), now.Add(time.Hour)},
	}
	for _, tc := range tests {
		if err := webhook.Verify(tc.secret, h, []byte(tc.body), tc.at, 0); err == nil {
			t.Errorf("%s: verified", tc.name)
		}
	}
	// The known answer: HMAC-SHA256("key", "1.{}").
	if got := webhook.Sign("key", 1, []byte("{}")); got != "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224" {
		t.Errorf("signature %s", got)
	}
}

// jobs records the jobs PublishTx queues.
type jobs struct{ ids []int64 }

func (j *jobs) InsertTx(_ context.Context, _ *sql.Tx, args river.JobArgs, _ *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	j.ids = append(j.ids, args.(webhook.DeliverArgs).DeliveryID)
	return &rivertype.JobInsertResult{}, nil
}

func publish(t *testing.T, d *db.DB, p *webhook.Publisher, eventType, account string) {
	t.Helper()
	tx, err := d.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := p.PublishTx(t.Context(), tx, eventType, account, map[string]string{"external_id": "S-1"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// Endpoints get the events they asked for; every attempt is recorded; a
// failure is retried until the last attempt, which marks it failed; an
// endpoint deleted meanwhile cancels its pending deliveries.
func TestPublishAndDeliver(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		ctx := t.Context()
		var (
			fail     atomic.Bool
			received atomic.Int32
			secret   = "0123456789abcdef-secret"
		)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
				t.Errorf("receiver: %v", err)
			}
			if fail.Load() {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			received.Add(1)
		}))
		defer srv.Close()

		store := webhook.NewStore(d, nil)
		all, err := store.Create(ctx, webhook.EndpointInput{URL: srv.URL, Secret: secret})
		if err != nil || all.Secret != secret || all.SecretHint != "****cret" || all.Events[0] != "*" {
			t.Fatalf("create = %+v, %v", all, err)
		}
		only, err := store.Create(ctx, webhook.EndpointInput{URL: srv.URL + "/b", Events: []string{"binding.deleted"}, Account: "other"})
		if err != nil || len(only.Secret) < 20 {
			t.Fatalf("create = %+v, %v", only, err)
		}
		for _, bad := range []webhook.EndpointInput{{URL: "ftp://x"}, {URL: "/relative"}, {URL: srv.URL, Events: []string{"Binding Completed"}},
			{URL: srv.URL, Secret: "short"}} {
			var in *problem.Error
			if _, err := store.Create(ctx, bad); !errors.As(err, &in) {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		if list, _ := store.List(ctx); len(list) != 2 || list[0].Secret != "" {
			t.Errorf("list = %+v", list)
		}

		j := &jobs{}
		p := webhook.NewPublisher(store, j)
		publish(t, d, p, "binding.completed", "main") // the first endpoint only
		publish(t, d, p, "binding.deleted", "other")  // both
		publish(t, d, p, "binding.deleted", "main")   // the first only
		if len(j.ids) != 4 {
			t.Fatalf("%d deliveries queued, want 4", len(j.ids))
		}

		sender := webhook.NewSender(store, nil, nil)
		if err := sender.Deliver(ctx, j.ids[0], false); err != nil {
			t.Fatal(err)
		}
		d0, _ := store.Delivery(ctx, j.ids[0])
		if d0.Status != webhook.StatusDelivered || d0.Attempts != 1 || d0.LastStatus != 200 || d0.DeliveredAt == nil || received.Load() != 1 {
			t.Errorf("delivered = %+v", d0)
		}
		// The backlog as /metrics reports it: three still pending, the
		// oldest about a minute old at the collector's clock.
		backlog := webhook.NewCollector(d, func() time.Time { return time.Now().Add(time.Minute) })
		if err := testutil.CollectAndCompare(backlog, strings.NewReader(`
# HELP wxgate_webhook_pending_deliveries Webhook deliveries waiting for their receiver to accept them (first try or a retry).
# TYPE wxgate_webhook_pending_deliveries gauge
wxgate_webhook_pending_deliveries 3
`), "wxgate_webhook_pending_deliveries"); err != nil {
			t.Error(err)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(backlog)
		if families, err := reg.Gather(); err != nil || len(families) != 2 || families[0].GetName() != "wxgate_webhook_oldest_pending_age_seconds" {
			t.Errorf("gathered %v, %v", families, err)
		} else if age := families[0].GetMetric()[0].GetGauge().GetValue(); age < 55 || age > 90 {
			t.Errorf("oldest pending delivery %.1f s old, want about 60", age)
		}
		// Delivering again (a job run twice) sends nothing more.
		if err := sender.Deliver(ctx, j.ids[0], false); err != nil || received.Load() != 1 {
			t.Errorf("second run: %v, %d received", err, received.Load())
		}

		fail.Store(true)
		if err := sender.Deliver(ctx, j.ids[1], false); !errors.Is(err, webhook.ErrAttemptFailed) {
			t.Errorf("failing attempt: %v", err)
		}
		d1, _ := store.Delivery(ctx, j.ids[1])
		if d1.Status != webhook.StatusPending || d1.Attempts != 1 || d1.LastStatus != 502 || d1.LastError == "" || d1.NextAttempt == nil {
			t.Errorf("after a failure = %+v", d1)
		}
		if err := sender.Deliver(ctx, j.ids[1], true); err == nil {
			t.Error("the last attempt succeeded")
		}
		if d1, _ = store.Delivery(ctx, j.ids[1]); d1.Status != webhook.StatusFailed || d1.Attempts != 2 {
			t.Errorf("after the last attempt = %+v", d1)
		}

		// Redeliver the failed one once the receiver works again: the same
		// event, a new run of attempts through a new job.
		fail.Store(false)
		queued := len(j.ids)
		rd, err := p.Redeliver(ctx, j.ids[1])
		if err != nil || rd.Status != webhook.StatusPending || rd.Attempts != 0 || len(j.ids) != queued+1 || j.ids[queued] != j.ids[1] {
			t.Fatalf("redeliver = %+v, %v; %d jobs", rd, err, len(j.ids)-queued)
		}
		if _, err := p.Redeliver(ctx, j.ids[1]); !errors.Is(err, webhook.ErrNotRedeliverable) {
			t.Errorf("redelivering a pending delivery: %v", err)
		}
		before := received.Load()
		if err := sender.Deliver(ctx, j.ids[1], false); err != nil || received.Load() != before+1 {
			t.Fatalf("the redelivery: %v", err)
		}
		if d1, _ = store.Delivery(ctx, j.ids[1]); d1.Status != webhook.StatusDelivered || d1.EventID == "" || d1.Attempts != 1 {
			t.Errorf("after the redelivery = %+v", d1)
		}
		if _, err := p.Redeliver(ctx, 999999); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("redelivering an unknown delivery: %v", err)
		}
		j.ids = j.ids[:queued]

		// Deleting the second endpoint cancels its pending delivery.
		if err := store.Delete(ctx, only.ID); err != nil {
			t.Fatal(err)
		}
		cancelled := 0
		for _, id := range j.ids[2:] {
			dd, _ := store.Delivery(ctx, id)
			if dd.WebhookID == only.ID {
				if dd.Status != webhook.StatusCancelled {
					t.Errorf("delivery to a deleted endpoint = %+v", dd)
				}
				cancelled++
				if err := sender.Deliver(ctx, id, false); err != nil {
					t.Errorf("delivering a cancelled delivery: %v", err)
				}
			}
		}
		if cancelled != 1 {
			t.Errorf("%d cancelled", cancelled)
		}
		if err := store.Delete(ctx, only.ID); !errors.Is(err, webhook.ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		if list, _ := store.Deliveries(ctx, all.ID, 0); len(list) != 3 || list[0].ID < list[1].ID {
			t.Errorf("deliveries of the first endpoint = %+v", list)
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	prev := time.Duration(0)
	for n := 1; n <= webhook.MaxAttempts; n++ {
		b := webhook.Backoff(n)
		if b < prev {
			t.Errorf("backoff(%d) = %v shrinks", n, b)
		}
		prev = b
	}
	if webhook.Backoff(1) != 10*time.Second || webhook.Backoff(100) != 12*time.Hour {
		t.Errorf("backoff = %v … %v", webhook.Backoff(1), webhook.Backoff(100))
	}
}
