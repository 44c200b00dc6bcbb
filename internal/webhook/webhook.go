// Package webhook sends wxgate's events (binding.completed, …) to the
// business's HTTP endpoints.
//
// An event is recorded in the transaction of the change it reports: one
// webhook_deliveries row per matching endpoint, plus a River job per row
// (PublishTx). The job (Worker) posts the body, signed with the
// endpoint's secret, and records every attempt on the row; a failed
// attempt is retried with backoff (Backoff) up to MaxAttempts, then the
// delivery is marked failed. Deliver is that one attempt, callable by any
// job runner.
//
// Signature: X-Wxgate-Signature: sha256=hex(HMAC-SHA256(secret,
// timestamp + "." + body)) with X-Wxgate-Timestamp: the Unix time of the
// attempt. Receivers check it with Verify and refuse old timestamps.
package webhook

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Delivery states.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled" // the endpoint was deleted first
)

// Endpoint is a URL events are posted to.
type Endpoint struct {
	ID  int64  `json:"id"`
	URL string `json:"url"`
	// Events are the event types sent there; ["*"] means all.
	Events []string `json:"events"`
	// Account limits the endpoint to one account's events; "" means all.
	Account     string `json:"account,omitempty"`
	Description string `json:"description,omitempty"`
	// Secret signs the deliveries. Only Create returns it.
	Secret string `json:"secret,omitempty"`
	// SecretHint is the secret's last four characters, to recognise it.
	SecretHint string    `json:"secret_hint"`
	CreatedAt  time.Time `json:"created_at"`
}

// Delivery is one event sent (or to be sent) to one endpoint.
type Delivery struct {
	ID          int64      `json:"id"`
	WebhookID   int64      `json:"webhook_id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	Account     string     `json:"account,omitempty"`
	Payload     string     `json:"payload"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus  int        `json:"last_status,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// ErrNotFound is returned for an endpoint or delivery id that does not exist.
var ErrNotFound = problem.New(problem.NotFound, "webhook_not_found", "id", "no such webhook — Webhook 不存在")

// Store keeps endpoints and deliveries.
type Store struct {
	db  *db.DB
	now func() time.Time
}

// NewStore returns a Store; now defaults to time.Now.
func NewStore(d *db.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: d, now: now}
}

// EndpointInput creates an endpoint.
type EndpointInput struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Account     string   `json:"account"`
	Description string   `json:"description"`
	// Secret is generated (whsec_…) when empty; at least 16 characters.
	Secret string `json:"secret"`
}

var eventName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// Create adds an endpoint and returns it with its secret.
func (s *Store) Create(ctx context.Context, in EndpointInput) (Endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(in.URL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Endpoint{}, problem.Invalidf("invalid_url", "url", "url must be an absolute http or https URL, got %q — url 须为 http(s) 地址", in.URL)
	}
	events := in.Events
	if len(events) == 0 {
		events = []string{"*"}
	}
	for _, e := range events {
		if e != "*" && !eventName.MatchString(e) {
			return Endpoint{}, problem.Invalidf("invalid_event", "events", "event %q is not an event name such as binding.completed, or * — 事件名无效", e)
		}
	}
	secret := in.Secret
	switch {
	case secret == "":
		buf := make([]byte, 24)
		_, _ = rand.Read(buf)
		secret = "whsec_" + base64.RawURLEncoding.EncodeToString(buf)
	case len(secret) < 16:
		return Endpoint{}, problem.New(problem.Invalid, "weak_secret", "secret", "secret must be at least 16 characters (leave it out to have one generated) — 密钥至少 16 个字符")
	}
	now := db.Timestamp(s.now())
	ep := Endpoint{URL: u.String(), Events: events, Account: in.Account, Description: in.Description, Secret: secret,
		SecretHint: hint(secret), CreatedAt: now}
	err = s.db.QueryRowContext(ctx, `INSERT INTO webhooks (url, secret, events, account, description, created_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, ep.URL, secret, strings.Join(events, ","), ep.Account, ep.Description, now).Scan(&ep.ID)
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhook: creating endpoint: %w", err)
	}
	return ep, nil
}

func hint(secret string) string {
	if len(secret) < 12 {
		return "****"
	}
	return "****" + secret[len(secret)-4:]
}

const endpointColumns = `id, url, secret, events, account, description, created_at`

func scanEndpoint(row interface{ Scan(...any) error }) (Endpoint, error) {
	var (
		ep     Endpoint
		events string
	)
	if err := row.Scan(&ep.ID, &ep.URL, &ep.Secret, &events, &ep.Account, &ep.Description, &ep.CreatedAt); err != nil {
		return Endpoint{}, err
	}
	ep.Events = strings.Split(events, ",")
	ep.SecretHint = hint(ep.Secret)
	ep.CreatedAt = ep.CreatedAt.UTC()
	return ep, nil
}

// List returns every endpoint, without secrets.
func (s *Store) List(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhook: listing endpoints: %w", err)
	}
	defer rows.Close()
	out := []Endpoint{}
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("webhook: listing endpoints: %w", err)
		}
		ep.Secret = ""
		out = append(out, ep)
	}
	return out, rows.Err()
}

// Get returns one endpoint, without its secret.
func (s *Store) Get(ctx context.Context, id int64) (Endpoint, error) {
	ep, err := s.get(ctx, s.db, id)
	ep.Secret = ""
	return ep, err
}

func (s *Store) get(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (Endpoint, error) {
	ep, err := scanEndpoint(q.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM webhooks WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhook: endpoint %d: %w", id, err)
	}
	return ep, nil
}

// Delete removes an endpoint; its pending deliveries are cancelled, the
// others kept.
func (s *Store) Delete(ctx context.Context, id int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhook: deleting endpoint %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("webhook: deleting endpoint %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3 WHERE webhook_id = $1 AND status = $4`,
		id, StatusCancelled, db.Timestamp(s.now()), StatusPending); err != nil {
		return fmt.Errorf("webhook: deleting endpoint %d: %w", id, err)
	}
	return tx.Commit()
}

const deliveryColumns = `id, webhook_id, event_id, event_type, account, payload, status, attempts, next_attempt_at,
    last_status, last_error, created_at, delivered_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var (
		d              Delivery
		next           time.Time
		deliveredAt    sql.NullTime
		payload, event string
	)
	if err := row.Scan(&d.ID, &d.WebhookID, &d.EventID, &event, &d.Account, &payload, &d.Status, &d.Attempts, &next,
		&d.LastStatus, &d.LastError, &d.CreatedAt, &deliveredAt); err != nil {
		return Delivery{}, err
	}
	d.EventType, d.Payload = event, payload
	d.CreatedAt = d.CreatedAt.UTC()
	if d.Status == StatusPending {
		n := next.UTC()
		d.NextAttempt = &n
	}
	if deliveredAt.Valid {
		t := deliveredAt.Time.UTC()
		d.DeliveredAt = &t
	}
	return d, nil
}

// Deliveries lists an endpoint's deliveries, newest first (webhookID 0:
// every endpoint's).
func (s *Store) Deliveries(ctx context.Context, webhookID int64, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	query := `SELECT ` + deliveryColumns + ` FROM webhook_deliveries`
	args := []any{limit}
	if webhookID > 0 {
		query += ` WHERE webhook_id = $2`
		args = append(args, webhookID)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, fmt.Errorf("webhook: listing deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("webhook: listing deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("webhook: delivery %d: %w", id, err)
	}
	return d, nil
}
