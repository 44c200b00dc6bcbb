package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
)

// AdminUser is a person who may sign in to the admin console.
type AdminUser struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Session is a signed-in browser.
type Session struct {
	User      AdminUser
	CSRFToken string
	ExpiresAt time.Time
}

// Limits of admin users and sessions.
const (
	MinPasswordLen = 10
	maxPasswordLen = 256
	maxUsernameLen = 64
	// SessionTTL is how long a session lasts without use.
	SessionTTL = 12 * time.Hour
	// LoginTokenTTL is how long a one-time sign-in link stays valid.
	LoginTokenTTL = 15 * time.Minute
)

// argon2id parameters: OWASP's minimum for argon2id (19 MiB, 2 passes,
// one lane). Stored with each hash, so raising them later keeps old
// hashes verifiable.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// Errors of the admin store.
var (
	ErrAdminNotFound = problem.New(problem.NotFound, "admin_user_not_found", "username",
		"no such admin user — 管理员不存在")
	ErrBadCredentials = problem.New(problem.Unauthorized, "bad_credentials", "",
		"wrong username or password — 用户名或密码错误")
	ErrNoSession = problem.New(problem.Unauthorized, "session_invalid", "",
		"not signed in, or the session has expired — 未登录或会话已过期")
	ErrLoginTokenInvalid = problem.New(problem.Unauthorized, "login_token_invalid", "token",
		"this sign-in link is invalid, used or expired — 登录链接无效、已使用或已过期")
)

// AdminStore keeps admin users, their sessions and one-time sign-in links.
type AdminStore struct {
	db  *db.DB
	now func() time.Time
}

// NewAdminStore returns a store on d; now may be nil (time.Now).
func NewAdminStore(d *db.DB, now func() time.Time) *AdminStore {
	if now == nil {
		now = time.Now
	}
	return &AdminStore{db: d, now: now}
}

// CheckUsername reports why a username cannot be used, or nil.
func CheckUsername(name string) error {
	if name == "" {
		return problem.New(problem.Invalid, "username_required", "username", "a username is required — 请填写用户名")
	}
	if utf8.RuneCountInString(name) > maxUsernameLen || strings.ContainsAny(name, " \t\r\n") {
		return problem.Newf(problem.Invalid, "username_invalid", "username",
			"a username has at most %d characters and no spaces — 用户名最多 %d 个字符，且不能含空格", maxUsernameLen, maxUsernameLen)
	}
	return nil
}

// CheckPassword reports why a password cannot be used, or nil.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen || len(pw) > maxPasswordLen {
		return problem.Newf(problem.Invalid, "password_too_short", "password",
			"a password has %d to %d characters — 密码长度需为 %d 到 %d 个字符", MinPasswordLen, maxPasswordLen, MinPasswordLen, maxPasswordLen)
	}
	return nil
}

// CreateUser adds an admin user.
func (s *AdminStore) CreateUser(ctx context.Context, username, password string) (AdminUser, error) {
	username = strings.TrimSpace(username)
	if err := CheckUsername(username); err != nil {
		return AdminUser{}, err
	}
	if err := CheckPassword(password); err != nil {
		return AdminUser{}, err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return AdminUser{}, err
	}
	u := AdminUser{Username: username, CreatedAt: db.Timestamp(s.now())}
	u.UpdatedAt = u.CreatedAt
	// ON CONFLICT DO NOTHING: no row back means the name is taken, on both
	// databases, without parsing driver errors.
	err = s.db.QueryRowContext(ctx, `
		INSERT INTO admin_users (username, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (username) DO NOTHING RETURNING id`, u.Username, hash, u.CreatedAt).Scan(&u.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return AdminUser{}, problem.Conflictf("admin_user_exists", "username",
			"admin user %q already exists — 管理员 %q 已存在", username, username)
	}
	if err != nil {
		return AdminUser{}, fmt.Errorf("auth: creating admin user: %w", err)
	}
	return u, nil
}

// SetPassword replaces a user's password and signs out all its sessions.
func (s *AdminStore) SetPassword(ctx context.Context, username, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE admin_users SET password_hash = $1, updated_at = $2 WHERE username = $3 RETURNING id`,
			hash, db.Timestamp(s.now()), username).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrAdminNotFound
		}
		if err != nil {
			return fmt.Errorf("auth: setting password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("auth: ending sessions: %w", err)
		}
		return nil
	})
}

// ListUsers returns every admin user, oldest first.
func (s *AdminStore) ListUsers(ctx context.Context) ([]AdminUser, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, username, created_at, updated_at FROM admin_users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("auth: listing admin users: %w", err)
	}
	defer rows.Close()
	out := []AdminUser{}
	for rows.Next() {
		var u AdminUser
		if err := rows.Scan(&u.ID, &u.Username, &u.CreatedAt, &u.UpdatedAt); err != nil {
			return nil, fmt.Errorf("auth: listing admin users: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser removes a user; its sessions and sign-in links go with it.
func (s *AdminStore) DeleteUser(ctx context.Context, username string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM admin_users WHERE username = $1`, username).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrAdminNotFound
		}
		if err != nil {
			return fmt.Errorf("auth: deleting admin user: %w", err)
		}
		// Explicit deletes rather than trusting ON DELETE CASCADE alone:
		// a SQLite connection opened without foreign_keys would keep them.
		for _, q := range []string{
			`DELETE FROM admin_sessions WHERE user_id = $1`,
			`DELETE FROM admin_login_tokens WHERE user_id = $1`,
			`DELETE FROM admin_users WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("auth: deleting admin user: %w", err)
			}
		}
		return nil
	})
}

// SignIn checks a username and password and opens a session; it returns
// the session cookie's value, shown to this browser only.
func (s *AdminStore) SignIn(ctx context.Context, username, password string) (string, Session, error) {
	var (
		u    AdminUser
		hash string
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, username, created_at, updated_at, password_hash FROM admin_users WHERE username = $1`,
		strings.TrimSpace(username)).Scan(&u.ID, &u.Username, &u.CreatedAt, &u.UpdatedAt, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a wrong password, so that timing does not
		// tell which usernames exist.
		_, _ = verifyPassword(dummyHash, password)
		return "", Session{}, ErrBadCredentials
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: signing in: %w", err)
	}
	ok, err := verifyPassword(hash, password)
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: signing in %q: %w", u.Username, err)
	}
	if !ok {
		return "", Session{}, ErrBadCredentials
	}
	return s.openSession(ctx, u)
}

func (s *AdminStore) openSession(ctx context.Context, u AdminUser) (string, Session, error) {
	cookie, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	now := db.Timestamp(s.now())
	sess := Session{User: u, CSRFToken: csrf, ExpiresAt: now.Add(SessionTTL)}
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO admin_sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $4)`,
		hashKey(cookie), u.ID, csrf, now, sess.ExpiresAt)
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: opening a session: %w", err)
	}
	return cookie, sess, nil
}

// Session returns the live session of a cookie value and extends it.
func (s *AdminStore) Session(ctx context.Context, cookie string) (Session, error) {
	if cookie == "" {
		return Session{}, ErrNoSession
	}
	var sess Session
	now := db.Timestamp(s.now())
	err := s.db.QueryRowContext(ctx, `
		SELECT u.id, u.username, u.created_at, u.updated_at, s.csrf_token, s.expires_at
		FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2`, hashKey(cookie), now).
		Scan(&sess.User.ID, &sess.User.Username, &sess.User.CreatedAt, &sess.User.UpdatedAt, &sess.CSRFToken, &sess.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("auth: reading a session: %w", err)
	}
	// Sliding expiry, written at most once a minute per session.
	if renewed := now.Add(SessionTTL); renewed.Sub(sess.ExpiresAt.UTC()) > time.Minute {
		sess.ExpiresAt = renewed
		_, _ = s.db.ExecContext(ctx, `UPDATE admin_sessions SET expires_at = $1, last_seen_at = $2 WHERE token_hash = $3`,
			renewed, now, hashKey(cookie))
	}
	sess.ExpiresAt = sess.ExpiresAt.UTC()
	return sess, nil
}

// SignOut ends the session of a cookie value; an unknown one is no error.
func (s *AdminStore) SignOut(ctx context.Context, cookie string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1`, hashKey(cookie)); err != nil {
		return fmt.Errorf("auth: signing out: %w", err)
	}
	return nil
}

// IssueLoginToken makes a one-time sign-in token for a user, valid for
// LoginTokenTTL.
func (s *AdminStore) IssueLoginToken(ctx context.Context, username string) (string, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM admin_users WHERE username = $1`, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrAdminNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: issuing a sign-in link: %w", err)
	}
	token, err := randomToken()
	if err != nil {
		return "", err
	}
	now := db.Timestamp(s.now())
	if _, err := s.db.ExecContext(ctx, `INSERT INTO admin_login_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		hashKey(token), id, now, now.Add(LoginTokenTTL)); err != nil {
		return "", fmt.Errorf("auth: issuing a sign-in link: %w", err)
	}
	return token, nil
}

// RedeemLoginToken spends a one-time token and opens a session. A token
// works once: the conditional UPDATE lets only one of two racing browsers
// (or instances) have it.
func (s *AdminStore) RedeemLoginToken(ctx context.Context, token string) (string, Session, error) {
	if token == "" {
		return "", Session{}, ErrLoginTokenInvalid
	}
	now := db.Timestamp(s.now())
	var u AdminUser
	err := s.db.QueryRowContext(ctx, `
		UPDATE admin_login_tokens SET used_at = $1
		WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
		RETURNING user_id`, now, hashKey(token)).Scan(&u.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", Session{}, ErrLoginTokenInvalid
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: redeeming a sign-in link: %w", err)
	}
	err = s.db.QueryRowContext(ctx, `SELECT username, created_at, updated_at FROM admin_users WHERE id = $1`, u.ID).
		Scan(&u.Username, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return "", Session{}, fmt.Errorf("auth: redeeming a sign-in link: %w", err)
	}
	return s.openSession(ctx, u)
}

// CheckCSRF reports whether a form's token is the session's, in constant
// time.
func (sess Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.CSRFToken)) == 1
}

// randomToken returns 32 random bytes, URL-safe base64.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// dummyHash is verified against when a username does not exist.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + base64.RawStdEncoding.EncodeToString(make([]byte, argonKeyLen))

// hashPassword returns an argon2id hash in the PHC string format.
func hashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// verifyPassword checks pw against a PHC argon2id hash, with the
// parameters the hash was made with.
func verifyPassword(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("argon2id version %q", parts[2])
	}
	var memory, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &passes, &threads); err != nil {
		return false, fmt.Errorf("argon2id parameters %q: %w", parts[3], err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("argon2id salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("argon2id hash: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, passes, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *AdminStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("auth: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("auth: commit: %w", err)
	}
	return nil
}
