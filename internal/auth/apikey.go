// Package auth holds API keys (hashed at rest, scoped) and the middleware
// that checks them on /api/v1.
//
// A key looks like wxg_ followed by 40 random base62 characters (238
// bits). It is shown once, at creation; the database keeps its SHA-256
// (a fast hash is enough for a key this random: there is nothing to
// brute-force) and its first 12 characters, to recognise it in lists.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// Scope is a permission of an API key.
type Scope string

const (
	// ScopeSend allows sending messages.
	ScopeSend Scope = "send"
	// ScopeRead allows reading accounts, followers, message status.
	ScopeRead Scope = "read"
	// ScopeToken allows fetching an account's access_token (中控).
	ScopeToken Scope = "token"
	// ScopeProxy allows calling WeChat's API through /wechat/{account}/…
	// with the broker's token (internal/proxy).
	ScopeProxy Scope = "proxy"
	// ScopeAdmin allows everything.
	ScopeAdmin Scope = "admin"
)

// AllScopes lists every scope.
var AllScopes = []Scope{ScopeSend, ScopeRead, ScopeToken, ScopeProxy, ScopeAdmin}

// ParseScopes reads scope names such as "send,read" or ["send","read"].
func ParseScopes(names ...string) ([]Scope, error) {
	var out []Scope
	for _, n := range names {
		for part := range strings.SplitSeq(n, ",") {
			s := Scope(strings.TrimSpace(strings.ToLower(part)))
			if s == "" {
				continue
			}
			if !slices.Contains(AllScopes, s) {
				return nil, problem.Invalidf("invalid_scope", "scopes", "unknown scope %q: use send, read, token, proxy or admin — 未知权限 %q（可选 send、read、token、proxy、admin）", s, s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, problem.Invalidf("scopes_required", "scopes", "an API key needs at least one scope: send, read, token, proxy or admin — API 密钥至少需要一个权限")
	}
	slices.Sort(out)
	return out, nil
}

// APIKey is a stored key, without its secret.
type APIKey struct {
	ID     int64   `json:"id"`
	Name   string  `json:"name"`
	Prefix string  `json:"prefix"`
	Scopes []Scope `json:"scopes"`
	// LastUsedAt is updated at most once a minute.
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Has reports whether the key grants scope; admin grants every scope.
func (k APIKey) Has(scope Scope) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// Key format.
const (
	KeyPrefix    = "wxg_"
	keyRandomLen = 40
	shownPrefix  = len(KeyPrefix) + 8
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	touchEvery   = time.Minute
)

// Errors of the store.
var (
	ErrInvalidKey = errors.New("invalid or revoked API key")
	ErrNotFound   = errors.New("API key not found")
)

// Store keeps API keys in the api_keys table.
type Store struct {
	db  *db.DB
	now func() time.Time

	mu      sync.Mutex
	touched map[int64]time.Time // when last_used_at was last written
}

// NewStore returns a store on d; now may be nil (time.Now).
func NewStore(d *db.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: d, now: now, touched: map[int64]time.Time{}}
}

// Create makes a key and returns its plaintext, shown only this once.
func (s *Store) Create(ctx context.Context, name string, scopes []Scope) (string, APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", APIKey{}, problem.Invalidf("name_required", "name", "an API key needs a name — API 密钥需要名称")
	}
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	scopes, err := ParseScopes(names...)
	if err != nil {
		return "", APIKey{}, err
	}
	plain, err := newKey()
	if err != nil {
		return "", APIKey{}, err
	}
	k := APIKey{Name: name, Prefix: plain[:shownPrefix], Scopes: scopes, CreatedAt: db.Timestamp(s.now())}
	err = s.db.QueryRowContext(ctx, `
		INSERT INTO api_keys (name, prefix, hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		k.Name, k.Prefix, hashKey(plain), joinScopes(scopes), k.CreatedAt).Scan(&k.ID)
	if err != nil {
		return "", APIKey{}, fmt.Errorf("auth: storing API key: %w", err)
	}
	return plain, k, nil
}

// Verify returns the key matching plaintext, or ErrInvalidKey when there
// is none or it was revoked.
func (s *Store) Verify(ctx context.Context, plaintext string) (APIKey, error) {
	if !wellFormed(plaintext) {
		return APIKey{}, ErrInvalidKey
	}
	k, err := s.scanOne(s.db.QueryRowContext(ctx, selectKeys+` WHERE hash = $1`, hashKey(plaintext)))
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrInvalidKey
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("auth: reading API key: %w", err)
	}
	if k.Revoked() {
		return APIKey{}, ErrInvalidKey
	}
	s.touch(ctx, k.ID)
	return k, nil
}

// touch records the key's use, at most once a minute per key and process.
func (s *Store) touch(ctx context.Context, id int64) {
	now := s.now()
	s.mu.Lock()
	last, seen := s.touched[id]
	if seen && now.Sub(last) < touchEvery {
		s.mu.Unlock()
		return
	}
	s.touched[id] = now
	s.mu.Unlock()
	// Best effort: a failed write must not fail the request.
	_, _ = s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, db.Timestamp(now), id)
}

// List returns every key, revoked ones included, oldest first.
func (s *Store) List(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, selectKeys+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("auth: listing API keys: %w", err)
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := s.scanOne(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: listing API keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Revoke disables a key for good. Revoking a revoked key is not an error.
func (s *Store) Revoke(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`,
		db.Timestamp(s.now()), id)
	if err != nil {
		return fmt.Errorf("auth: revoking API key %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

const selectKeys = `SELECT id, name, prefix, scopes, created_at, last_used_at, revoked_at FROM api_keys`

type scanner interface{ Scan(...any) error }

func (s *Store) scanOne(r scanner) (APIKey, error) {
	var k APIKey
	var scopes string
	var used, revoked sql.NullTime
	if err := r.Scan(&k.ID, &k.Name, &k.Prefix, &scopes, &k.CreatedAt, &used, &revoked); err != nil {
		return APIKey{}, err
	}
	for part := range strings.SplitSeq(scopes, ",") {
		if part != "" {
			k.Scopes = append(k.Scopes, Scope(part))
		}
	}
	k.LastUsedAt, k.RevokedAt = used.Time, revoked.Time
	return k, nil
}

func joinScopes(scopes []Scope) string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ",")
}

// newKey returns wxg_ and 40 uniformly random base62 characters.
func newKey() (string, error) {
	var b strings.Builder
	b.WriteString(KeyPrefix)
	buf := make([]byte, 64)
	for b.Len() < len(KeyPrefix)+keyRandomLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("auth: random key: %w", err)
		}
		for _, c := range buf {
			// 248 = 4×62: rejecting bytes above it keeps every character equally likely.
			if c < 248 && b.Len() < len(KeyPrefix)+keyRandomLen {
				b.WriteByte(base62[c%62])
			}
		}
	}
	return b.String(), nil
}

func wellFormed(key string) bool {
	if len(key) != len(KeyPrefix)+keyRandomLen || !strings.HasPrefix(key, KeyPrefix) {
		return false
	}
	for _, c := range key[len(KeyPrefix):] {
		if !strings.ContainsRune(base62, c) {
			return false
		}
	}
	return true
}

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
