package follower

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// A profile (user/info) is fetched some time after the events that led to
// it, and events keep arriving meanwhile. The rule: the profile fields only
// user/info knows (unionid, language, remark, tags) are always written;
// the subscription state (subscribed, subscribed_at, unsubscribed_at,
// scene) is taken from user/info only if the row did not change between
// the read before the call (Snapshot) and the write (ApplyProfile). When it
// changed, an event arrived that may be newer than WeChat's answer, and the
// events win.

// Snapshot is a follower's subscription state as read before calling
// user/info.
type Snapshot struct {
	exists bool
	state  subscriptionState
}

// subscriptionState is what an event may change. updated_at alone would
// do with a fine clock; the other columns make a change visible even when
// two writes share a timestamp.
type subscriptionState struct {
	updatedAt      time.Time
	subscribed     bool
	subscribedAt   sql.NullTime
	unsubscribedAt sql.NullTime
	scene          string
	qrScene        sql.NullInt64
	qrSceneStr     string
}

func (a subscriptionState) equal(b subscriptionState) bool {
	return a.updatedAt.Equal(b.updatedAt) && a.subscribed == b.subscribed &&
		nullTimeEqual(a.subscribedAt, b.subscribedAt) && nullTimeEqual(a.unsubscribedAt, b.unsubscribedAt) &&
		a.scene == b.scene && a.qrScene == b.qrScene && a.qrSceneStr == b.qrSceneStr
}

func nullTimeEqual(a, b sql.NullTime) bool {
	return a.Valid == b.Valid && (!a.Valid || a.Time.Equal(b.Time))
}

// ProfileOutcome says what ApplyProfile wrote.
type ProfileOutcome string

const (
	// ProfileApplied: the profile and the subscription state from user/info
	// were written (the row was unchanged since the snapshot, or new).
	ProfileApplied ProfileOutcome = "applied"
	// ProfileOnly: the row changed after the snapshot; the profile fields
	// were written and the subscription state left to the events.
	ProfileOnly ProfileOutcome = "profile_only"
	// ProfileNotFollowing: WeChat says the user does not follow; the
	// follower was marked unsubscribed if the row was unchanged and still
	// said subscribed (an unsubscribe event lost or still on its way).
	ProfileNotFollowing ProfileOutcome = "not_following"
	// ProfileNoFollower: the user does not follow and wxgate has no row for
	// them; nothing was written.
	ProfileNoFollower ProfileOutcome = "no_follower"
)

const selectState = `SELECT updated_at, subscribed, subscribed_at, unsubscribed_at, subscribe_scene, qr_scene, qr_scene_str
FROM followers WHERE account = $1 AND openid = $2`

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readState(ctx context.Context, q rowQuerier, query, account, openid string) (Snapshot, error) {
	var st subscriptionState
	err := q.QueryRowContext(ctx, query, account, openid).Scan(
		&st.updatedAt, &st.subscribed, &st.subscribedAt, &st.unsubscribedAt, &st.scene, &st.qrScene, &st.qrSceneStr)
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{exists: true, state: st}, nil
}

// Snapshot reads the follower's subscription state; call it before
// user/info and pass the result to ApplyProfile. A missing follower is
// not an error.
func (s *Store) Snapshot(ctx context.Context, account, openid string) (Snapshot, error) {
	snap, err := readState(ctx, s.db, selectState, account, openid)
	if err != nil {
		return Snapshot{}, fmt.Errorf("follower: reading %s: %w", openid, err)
	}
	return snap, nil
}

// ApplyProfile stores a user/info answer fetched after seen was read;
// calledAt is when the call started. See the rule at the top of this file.
func (s *Store) ApplyProfile(ctx context.Context, account string, seen Snapshot, info *wechat.UserInfo, calledAt time.Time) (ProfileOutcome, error) {
	if info == nil || info.OpenID == "" {
		return "", errors.New("follower: a profile without openid")
	}
	tags := make([]int64, 0, len(info.TagIDs))
	for _, id := range info.TagIDs {
		tags = append(tags, int64(id))
	}
	tagJSON, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("follower: encoding tags: %w", err)
	}
	var (
		unionID      = nullString(info.UnionID)
		subscribedAt any
		qrScene      any
		now          = db.Timestamp(s.now())
		openid       = info.OpenID
	)
	if info.SubscribeTime > 0 {
		subscribedAt = db.Timestamp(time.Unix(int64(info.SubscribeTime), 0))
	}
	if info.QRScene != 0 {
		qrScene = int64(info.QRScene)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("follower: profile of %s: %w", openid, err)
	}
	defer tx.Rollback()
	lock := selectState
	if s.db.Dialect == db.Postgres {
		lock += " FOR UPDATE" // SQLite's transactions hold the write lock already
	}
	current, err := readState(ctx, tx, lock, account, openid)
	if err != nil {
		return "", fmt.Errorf("follower: profile of %s: %w", openid, err)
	}
	unchanged := current.exists && seen.exists && current.state.equal(seen.state)

	var outcome ProfileOutcome
	switch {
	case !info.Subscribed() && !current.exists:
		return ProfileNoFollower, nil

	case !info.Subscribed():
		outcome = ProfileNotFollowing
		// WeChat's answer reflects some instant after calledAt; a follow
		// after the answer has a CreateTime of at least calledAt's second,
		// so it still applies over this unsubscribed_at.
		leftAt := db.Timestamp(calledAt.Truncate(time.Second))
		markLeft := unchanged && current.state.subscribed
		_, err = tx.ExecContext(ctx, `
UPDATE followers SET
    unionid = COALESCE($3, unionid),
    subscribed = CASE WHEN $4 THEN FALSE ELSE subscribed END,
    unsubscribed_at = CASE WHEN $4 THEN $5 ELSE unsubscribed_at END,
    profile_fetched_at = $6,
    updated_at = $6
WHERE account = $1 AND openid = $2`,
			account, openid, unionID, markLeft, leftAt, now)

	case !current.exists:
		outcome = ProfileApplied
		_, err = tx.ExecContext(ctx, `
INSERT INTO followers (account, openid, unionid, subscribed, subscribed_at, subscribe_scene, qr_scene, qr_scene_str,
                       language, remark, tag_ids, profile_fetched_at, created_at, updated_at)
VALUES ($1, $2, $3, TRUE, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11)`,
			account, openid, unionID, subscribedAt, info.SubscribeScene, qrScene, info.QRSceneStr,
			info.Language, info.Remark, string(tagJSON), now)

	case unchanged:
		outcome = ProfileApplied
		_, err = tx.ExecContext(ctx, `
UPDATE followers SET
    unionid = COALESCE($3, unionid),
    subscribed = TRUE,
    subscribed_at = COALESCE($4, subscribed_at),
    subscribe_scene = $5,
    qr_scene = $6,
    qr_scene_str = $7,
    language = $8,
    remark = $9,
    tag_ids = $10,
    profile_fetched_at = $11,
    updated_at = $11
WHERE account = $1 AND openid = $2`,
			account, openid, unionID, subscribedAt, info.SubscribeScene, qrScene, info.QRSceneStr,
			info.Language, info.Remark, string(tagJSON), now)

	default:
		outcome = ProfileOnly
		_, err = tx.ExecContext(ctx, `
UPDATE followers SET
    unionid = COALESCE($3, unionid),
    language = $4,
    remark = $5,
    tag_ids = $6,
    profile_fetched_at = $7,
    updated_at = $7
WHERE account = $1 AND openid = $2`,
			account, openid, unionID, info.Language, info.Remark, string(tagJSON), now)
	}
	if err != nil {
		return "", fmt.Errorf("follower: profile of %s: %w", openid, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("follower: profile of %s: %w", openid, err)
	}
	return outcome, nil
}

// nullString is NULL for "" (a column where empty means unknown).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
