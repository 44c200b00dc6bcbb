package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Headers of a delivery.
const (
	HeaderSignature = "X-Wxgate-Signature"
	HeaderTimestamp = "X-Wxgate-Timestamp"
	HeaderEvent     = "X-Wxgate-Event"
	HeaderEventID   = "X-Wxgate-Event-Id"
	HeaderDelivery  = "X-Wxgate-Delivery"
)

// Delivery settings.
const (
	// MaxAttempts of one delivery: with Backoff, about a day of retries.
	MaxAttempts      = 10
	attemptTimeout   = 15 * time.Second
	maxErrorLength   = 300
	DefaultTolerance = 5 * time.Minute
)

// Sign returns the X-Wxgate-Signature value of body sent at timestamp.
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery as a receiver should: the signature over the
// timestamp and the raw body, in constant time, and the timestamp within
// tolerance of now (DefaultTolerance when zero).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return errors.New("webhook: missing or malformed " + HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook: timestamp outside the tolerance (a replay?)")
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return errors.New("webhook: signature mismatch")
	}
	return nil
}

// Event is the JSON body of every delivery.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Account   string    `json:"account,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// DeliverArgs is the River job webhook.deliver: one attempt at one
// delivery row.
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind is the job's kind.
func (DeliverArgs) Kind() string { return "webhook.deliver" }

// InsertOpts allows MaxAttempts attempts.
func (DeliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: MaxAttempts} }

// JobInserter queues jobs in a transaction; *queue.Queue is one.
type JobInserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Publisher records events for delivery (follower.Events).
type Publisher struct {
	store *Store
	jobs  JobInserter
}

// NewPublisher returns a Publisher. Without jobs the deliveries are
// recorded and left pending (nothing delivers them): only for tools.
func NewPublisher(store *Store, jobs JobInserter) *Publisher {
	return &Publisher{store: store, jobs: jobs}
}

// PublishTx records an event in tx: one delivery per endpoint that wants
// it, each with its job.
func (p *Publisher) PublishTx(ctx context.Context, tx *sql.Tx, eventType, account string, data any) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, events, account FROM webhooks ORDER BY id`)
	if err != nil {
		return fmt.Errorf("webhook: publishing %s: %w", eventType, err)
	}
	var targets []int64
	for rows.Next() {
		var (
			id              int64
			events, forAcct string
		)
		if err := rows.Scan(&id, &events, &forAcct); err != nil {
			rows.Close()
			return fmt.Errorf("webhook: publishing %s: %w", eventType, err)
		}
		if forAcct != "" && forAcct != account {
			continue
		}
		for _, e := range strings.Split(events, ",") {
			if e == "*" || e == eventType {
				targets = append(targets, id)
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("webhook: publishing %s: %w", eventType, err)
	}
	if len(targets) == 0 {
		return nil
	}
	now := db.Timestamp(p.store.now())
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	ev := Event{ID: "evt_" + hex.EncodeToString(id), Type: eventType, Account: account, CreatedAt: now, Data: data}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return fmt.Errorf("webhook: encoding %s: %w", eventType, err)
	}
	payload := strings.TrimSuffix(buf.String(), "\n")
	for _, webhookID := range targets {
		var deliveryID int64
		err := tx.QueryRowContext(ctx, `
INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, account, payload, status, next_attempt_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`, webhookID, ev.ID, eventType, account, payload, StatusPending, now).Scan(&deliveryID)
		if err != nil {
			return fmt.Errorf("webhook: recording a delivery of %s: %w", eventType, err)
		}
		if p.jobs != nil {
			if _, err := p.jobs.InsertTx(ctx, tx, DeliverArgs{DeliveryID: deliveryID}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sender makes delivery attempts.
type Sender struct {
	store  *Store
	client *http.Client
	log    *slog.Logger
}

// NewSender returns a Sender; client nil means one with a 15 s timeout
// that does not follow redirects.
func NewSender(store *Store, client *http.Client, logger *slog.Logger) *Sender {
	if client == nil {
		client = &http.Client{Timeout: attemptTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{store: store, client: client, log: logger}
}

// ErrAttemptFailed wraps the reason of an attempt that did not get a 2xx.
var ErrAttemptFailed = errors.New("webhook: delivery attempt failed")

// Deliver makes one attempt at a delivery and records it. It returns nil
// when the delivery is done (delivered now or before, cancelled, its
// endpoint gone) and an error wrapping ErrAttemptFailed when the endpoint
// did not answer 2xx; final says this was the last attempt allowed, which
// marks the delivery failed.
func (s *Sender) Deliver(ctx context.Context, deliveryID int64, final bool) error {
	d, err := s.store.Delivery(ctx, deliveryID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != StatusPending {
		return nil
	}
	ep, err := s.store.get(ctx, s.store.db, d.WebhookID)
	if errors.Is(err, ErrNotFound) {
		_, err = s.store.db.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $2 WHERE id = $1 AND status = $3`,
			deliveryID, StatusCancelled, StatusPending)
		return err
	}
	if err != nil {
		return err
	}
	ts := s.store.now().Unix()
	body := []byte(d.Payload)
	status, sendErr := s.post(ctx, ep, d, ts, body)
	now := db.Timestamp(s.store.now())
	if sendErr == nil {
		_, err = s.store.db.ExecContext(ctx, `
UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status = $3, last_error = '', delivered_at = $4
WHERE id = $1`, deliveryID, StatusDelivered, status, now)
		if err != nil {
			return fmt.Errorf("webhook: recording delivery %d: %w", deliveryID, err)
		}
		s.log.Info("webhook delivered", "delivery", deliveryID, "event", d.EventType, "webhook", ep.ID, "status", status)
		return nil
	}
	msg := sendErr.Error()
	if len(msg) > maxErrorLength {
		msg = msg[:maxErrorLength]
	}
	next := StatusPending
	if final {
		next = StatusFailed
	}
	_, err = s.store.db.ExecContext(ctx, `
UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_status = $3, last_error = $4, next_attempt_at = $5
WHERE id = $1`, deliveryID, next, status, msg, db.Timestamp(now.Add(Backoff(d.Attempts+1))))
	if err != nil {
		return fmt.Errorf("webhook: recording delivery %d: %w", deliveryID, err)
	}
	s.log.Warn("webhook attempt failed", "delivery", deliveryID, "event", d.EventType, "webhook", ep.ID, "attempt", d.Attempts+1,
		"final", final, "status", status, "err", msg)
	return fmt.Errorf("%w: %s", ErrAttemptFailed, msg)
}

func (s *Sender) post(ctx context.Context, ep Endpoint, d Delivery, ts int64, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "wxgate-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(ep.Secret, ts, body))
	req.Header.Set(HeaderEvent, d.EventType)
	req.Header.Set(HeaderEventID, d.EventID)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the endpoint answered HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Backoff is the wait before attempt n+1 after attempt n failed: 10 s,
// 30 s, 1 min, 5 min, 15 min, 30 min, 1 h, 3 h, 6 h, then 12 h.
func Backoff(n int) time.Duration {
	steps := []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour}
	if n < 1 {
		n = 1
	}
	if n > len(steps) {
		return 12 * time.Hour
	}
	return steps[n-1]
}

// Worker runs webhook.deliver jobs.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	sender *Sender
	// backoff replaces Backoff (tests).
	backoff func(attempt int) time.Duration
}

// NewWorker returns the worker; register it with river.AddWorker.
func NewWorker(sender *Sender) *Worker { return &Worker{sender: sender, backoff: Backoff} }

// WithBackoff returns the worker with another retry schedule (tests).
func (w *Worker) WithBackoff(f func(attempt int) time.Duration) *Worker {
	w.backoff = f
	return w
}

// Work makes one attempt; River retries a failed one per NextRetry.
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	return w.sender.Deliver(ctx, job.Args.DeliveryID, job.Attempt >= job.MaxAttempts)
}

// NextRetry follows Backoff.
func (w *Worker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(w.backoff(job.Attempt))
}

// Timeout bounds one attempt.
func (w *Worker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return attemptTimeout + 5*time.Second
}

// ErrNotRedeliverable is returned for a delivery still pending: it is on
// its way already.
var ErrNotRedeliverable = problem.Conflictf("delivery_pending", "id",
	"the delivery is still pending; it is retried by itself — 该投递仍在进行中，会自动重试")

// Redeliver sends a delivered, failed or cancelled delivery again (its
// payload and event id unchanged, so a receiver that de-duplicates by
// event id sees the same event), as a new run of attempts.
func (p *Publisher) Redeliver(ctx context.Context, deliveryID int64) (Delivery, error) {
	if p.jobs == nil {
		return Delivery{}, errors.New("webhook: this process has no queue to deliver with")
	}
	tx, err := p.store.db.BeginTx(ctx, nil)
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook: redeliver %d: %w", deliveryID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $2, attempts = 0, next_attempt_at = $3, delivered_at = NULL
WHERE id = $1 AND status <> $2`, deliveryID, StatusPending, db.Timestamp(p.store.now()))
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook: redeliver %d: %w", deliveryID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := p.store.Delivery(ctx, deliveryID); err != nil {
			return Delivery{}, err
		}
		return Delivery{}, ErrNotRedeliverable
	}
	if _, err := p.jobs.InsertTx(ctx, tx, DeliverArgs{DeliveryID: deliveryID}, nil); err != nil {
		return Delivery{}, fmt.Errorf("webhook: redeliver %d: %w", deliveryID, err)
	}
	if err := tx.Commit(); err != nil {
		return Delivery{}, fmt.Errorf("webhook: redeliver %d: %w", deliveryID, err)
	}
	return p.store.Delivery(ctx, deliveryID)
}
