// Package follower keeps the followers of each account: who subscribed,
// when and through which QR scene, and who left (never deleted).
//
// It is driven by the callback's subscribe, unsubscribe and SCAN events;
// each new subscriber's profile (user/info: unionid, language, remark,
// tags, the subscribe scene) is then fetched by the follower.fetch_profile
// job (profile_job.go), never inside the callback's HTTP answer.
package follower

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// ProfileFetcher is the hook for fetching a follower's profile (user/info:
// unionid, language, remark, tags, subscribe_scene) after a subscribe. The
// callback calls it when one is set; the implementation is expected to
// enqueue a job and return at once, since the HTTP answer must not wait on
// WeChat's API.
type ProfileFetcher interface {
	FetchProfile(ctx context.Context, account, openid string) error
}

// SceneQRCode is user/info's subscribe_scene for a follow through a
// parametric QR code, the one scene a subscribe event tells by itself.
const SceneQRCode = "ADD_SCENE_QR_CODE"

// Follower is one openid of one account.
type Follower struct {
	Account          string     `json:"account"`
	OpenID           string     `json:"openid"`
	UnionID          string     `json:"unionid,omitempty"` // "" without an Open Platform binding
	Subscribed       bool       `json:"subscribed"`
	SubscribedAt     *time.Time `json:"subscribed_at,omitempty"`
	UnsubscribedAt   *time.Time `json:"unsubscribed_at,omitempty"`
	SubscribeScene   string     `json:"subscribe_scene,omitempty"`
	QRScene          *int64     `json:"qr_scene,omitempty"`
	QRSceneStr       string     `json:"qr_scene_str,omitempty"`
	LastEventKey     string     `json:"last_event_key,omitempty"`
	LastTicket       string     `json:"last_ticket,omitempty"`
	Language         string     `json:"language,omitempty"`
	Remark           string     `json:"remark,omitempty"`
	TagIDs           []int64    `json:"tag_ids"`
	ProfileFetchedAt *time.Time `json:"profile_fetched_at,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// ErrNotFound is returned when the account has no such follower.
var ErrNotFound = problem.New(problem.NotFound, "follower_not_found", "openid", "no such follower of this account — 该账号没有这个粉丝")

// Store reads and writes followers.
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

// IsFollowEvent reports whether m changes a follower: subscribe,
// unsubscribe or SCAN.
func IsFollowEvent(m *wechat.Message) bool {
	if !m.IsEvent() {
		return false
	}
	switch m.Event {
	case wechat.EventSubscribe, wechat.EventUnsubscribe, wechat.EventScan:
		return true
	}
	return false
}

// ApplyEvent records a subscribe, unsubscribe or SCAN event; other pushes
// are ignored. Events carry WeChat's CreateTime, and an event older than
// the follower's last change is not applied, so a late retry of a
// subscribe cannot undo a later unsubscribe.
func (s *Store) ApplyEvent(ctx context.Context, account string, m *wechat.Message) error {
	if !IsFollowEvent(m) {
		return nil
	}
	if m.FromUserName == "" {
		return errors.New("follower: event without FromUserName")
	}
	at := db.Timestamp(time.Unix(m.CreateTime, 0))
	now := db.Timestamp(s.now())
	var err error
	switch m.Event {
	case wechat.EventSubscribe:
		err = s.subscribe(ctx, account, m, at, now)
	case wechat.EventUnsubscribe:
		_, err = s.db.ExecContext(ctx, `
INSERT INTO followers (account, openid, subscribed, unsubscribed_at, created_at, updated_at)
VALUES ($1, $2, FALSE, $3, $4, $4)
ON CONFLICT (account, openid) DO UPDATE SET
    subscribed = FALSE,
    unsubscribed_at = excluded.unsubscribed_at,
    updated_at = excluded.updated_at
WHERE followers.subscribed_at IS NULL OR followers.subscribed_at <= excluded.unsubscribed_at`,
			account, m.FromUserName, at, now)
	case wechat.EventScan:
		// SCAN comes only from someone already following: mark them so even
		// if wxgate never saw their subscribe.
		_, err = s.db.ExecContext(ctx, `
INSERT INTO followers (account, openid, subscribed, last_event_key, last_ticket, created_at, updated_at)
VALUES ($1, $2, TRUE, $3, $4, $5, $5)
ON CONFLICT (account, openid) DO UPDATE SET
    subscribed = CASE WHEN followers.unsubscribed_at IS NULL OR followers.unsubscribed_at <= $6 THEN TRUE ELSE followers.subscribed END,
    last_event_key = excluded.last_event_key,
    last_ticket = excluded.last_ticket,
    updated_at = excluded.updated_at`,
			account, m.FromUserName, m.EventKey, m.Ticket, now, at)
	}
	if err != nil {
		return fmt.Errorf("follower: %s of %s: %w", m.Event, m.FromUserName, err)
	}
	return nil
}

func (s *Store) subscribe(ctx context.Context, account string, m *wechat.Message, at, now time.Time) error {
	var (
		scene      string
		qrScene    any // NULL unless the scene is a number (scene_id)
		qrSceneStr string
	)
	if v, ok := m.QRScene(); ok {
		scene = SceneQRCode
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			qrScene = n
		} else {
			qrSceneStr = v
		}
	}
	// A new subscribe replaces the scene of an earlier one: user/info
	// reports the latest follow's scene too.
	_, err := s.db.ExecContext(ctx, `
INSERT INTO followers (account, openid, subscribed, subscribed_at, subscribe_scene, qr_scene, qr_scene_str, last_event_key, last_ticket, created_at, updated_at)
VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7, $8, $9, $9)
ON CONFLICT (account, openid) DO UPDATE SET
    subscribed = TRUE,
    subscribed_at = excluded.subscribed_at,
    subscribe_scene = excluded.subscribe_scene,
    qr_scene = excluded.qr_scene,
    qr_scene_str = excluded.qr_scene_str,
    last_event_key = excluded.last_event_key,
    last_ticket = excluded.last_ticket,
    updated_at = excluded.updated_at
WHERE (followers.unsubscribed_at IS NULL OR followers.unsubscribed_at <= excluded.subscribed_at)
  AND (followers.subscribed_at IS NULL OR followers.subscribed_at <= excluded.subscribed_at)`,
		account, m.FromUserName, at, scene, qrScene, qrSceneStr, m.EventKey, m.Ticket, now)
	return err
}

const followerColumns = `account, openid, unionid, subscribed, subscribed_at, unsubscribed_at, subscribe_scene, qr_scene, qr_scene_str,
    last_event_key, last_ticket, language, remark, tag_ids, profile_fetched_at, created_at, updated_at`

// Get returns one follower.
func (s *Store) Get(ctx context.Context, account, openid string) (Follower, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+followerColumns+` FROM followers WHERE account = $1 AND openid = $2`, account, openid)
	f, err := scanFollower(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Follower{}, ErrNotFound
	}
	if err != nil {
		return Follower{}, fmt.Errorf("follower: get %s: %w", openid, err)
	}
	return f, nil
}

// Count returns the number of followers of an account, all or only the
// subscribed ones.
func (s *Store) Count(ctx context.Context, account string, subscribedOnly bool) (int64, error) {
	query := `SELECT count(*) FROM followers WHERE account = $1`
	if subscribedOnly {
		query += ` AND subscribed`
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, query, account).Scan(&n); err != nil {
		return 0, fmt.Errorf("follower: count: %w", err)
	}
	return n, nil
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}
