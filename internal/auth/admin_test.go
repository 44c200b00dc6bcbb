package auth

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
)

func setupAdmin(t *testing.T, d *db.DB) (*AdminStore, *fakeNow) {
	t.Helper()
	clock := &fakeNow{}
	clock.ns.Store(time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC).UnixNano())
	return NewAdminStore(d, clock.Now), clock
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := problem.CodeOf(err); got != code {
		t.Errorf("error %v: code %q, want %q", err, got, code)
	}
}

func TestPasswordHashIsArgon2idAndSalted(t *testing.T) {
	t.Parallel()
	a, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := hashPassword("correct horse battery")
	if !strings.HasPrefix(a, "$argon2id$v=19$m=19456,t=2,p=1$") || a == b {
		t.Errorf("hashes %q and %q: want argon2id PHC strings with distinct salts", a, b)
	}
	if ok, err := verifyPassword(a, "correct horse battery"); !ok || err != nil {
		t.Errorf("the right password does not verify: %v %v", ok, err)
	}
	if ok, _ := verifyPassword(a, "correct horse batterx"); ok {
		t.Error("a wrong password verifies")
	}
	if _, err := verifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("a hash of another kind was accepted")
	}
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, _ := setupAdmin(t, d)
		u, err := s.CreateUser(ctx, " ops ", "s3cret-enough")
		if err != nil || u.ID == 0 || u.Username != "ops" {
			t.Fatalf("create: %+v %v", u, err)
		}
		_, err = s.CreateUser(ctx, "ops", "another-password")
		wantCode(t, err, "admin_user_exists")
		_, err = s.CreateUser(ctx, "dev", "short")
		wantCode(t, err, "password_too_short")
		_, err = s.CreateUser(ctx, "has space", "long-enough-pw")
		wantCode(t, err, "username_invalid")

		list, err := s.ListUsers(ctx)
		if err != nil || len(list) != 1 || list[0].Username != "ops" {
			t.Fatalf("list: %+v %v", list, err)
		}
		var stored string
		if err := d.QueryRowContext(ctx, `SELECT password_hash FROM admin_users WHERE id = $1`, u.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, "s3cret-enough") || !strings.HasPrefix(stored, "$argon2id$") {
			t.Errorf("stored hash %q", stored)
		}

		// Sign in; a new password ends every session.
		_, _, err = s.SignIn(ctx, "ops", "wrong-password")
		wantCode(t, err, "bad_credentials")
		_, _, err = s.SignIn(ctx, "nobody", "s3cret-enough")
		wantCode(t, err, "bad_credentials")
		cookie, sess, err := s.SignIn(ctx, "ops", "s3cret-enough")
		if err != nil || cookie == "" || sess.User.Username != "ops" || sess.CSRFToken == "" {
			t.Fatalf("sign in: %q %+v %v", cookie, sess, err)
		}
		if got, err := s.Session(ctx, cookie); err != nil || got.User.ID != u.ID || !got.CheckCSRF(sess.CSRFToken) || got.CheckCSRF("") || got.CheckCSRF("forged") {
			t.Fatalf("session: %+v %v", got, err)
		}
		if err := s.SetPassword(ctx, "ops", "new-password-1"); err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, cookie)
		wantCode(t, err, "session_invalid")
		_, _, err = s.SignIn(ctx, "ops", "s3cret-enough")
		wantCode(t, err, "bad_credentials")
		wantCode(t, s.SetPassword(ctx, "ghost", "new-password-1"), "admin_user_not_found")

		// Deleting a user ends its sessions.
		cookie, _, err = s.SignIn(ctx, "ops", "new-password-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "ops"); err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, cookie)
		wantCode(t, err, "session_invalid")
		wantCode(t, s.DeleteUser(ctx, "ops"), "admin_user_not_found")
	})
}

func TestSessionsExpireAndSignOut(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, clock := setupAdmin(t, d)
		if _, err := s.CreateUser(ctx, "ops", "s3cret-enough"); err != nil {
			t.Fatal(err)
		}
		cookie, _, err := s.SignIn(ctx, "ops", "s3cret-enough")
		if err != nil {
			t.Fatal(err)
		}
		// Used within its lifetime, a session slides forward.
		clock.Advance(SessionTTL - time.Minute)
		if _, err := s.Session(ctx, cookie); err != nil {
			t.Fatalf("a session in use expired: %v", err)
		}
		clock.Advance(SessionTTL - time.Minute)
		if _, err := s.Session(ctx, cookie); err != nil {
			t.Fatalf("a session renewed by use expired: %v", err)
		}
		clock.Advance(SessionTTL + time.Second)
		_, err = s.Session(ctx, cookie)
		wantCode(t, err, "session_invalid")

		cookie, _, _ = s.SignIn(ctx, "ops", "s3cret-enough")
		if err := s.SignOut(ctx, cookie); err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, cookie)
		wantCode(t, err, "session_invalid")
		_, err = s.Session(ctx, "")
		wantCode(t, err, "session_invalid")
	})
}

// A sign-in link works once, even when two browsers race for it, and not
// after it expires.
func TestLoginTokensWorkOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, clock := setupAdmin(t, d)
		if _, err := s.CreateUser(ctx, "demo", "demo-password"); err != nil {
			t.Fatal(err)
		}
		token, err := s.IssueLoginToken(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]error, 4)
		for i := range results {
			wg.Go(func() { _, _, results[i] = s.RedeemLoginToken(ctx, token) })
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case problem.CodeOf(err) != "login_token_invalid":
				t.Errorf("redeem: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d browsers signed in with one link, want 1", ok)
		}

		late, _ := s.IssueLoginToken(ctx, "demo")
		clock.Advance(LoginTokenTTL + time.Second)
		_, _, err = s.RedeemLoginToken(ctx, late)
		wantCode(t, err, "login_token_invalid")
		_, err = s.IssueLoginToken(ctx, "ghost")
		wantCode(t, err, "admin_user_not_found")
	})
}
