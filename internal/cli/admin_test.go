package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
)

func runWithStdin(t *testing.T, ctx context.Context, environ []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = Run(ctx, args, Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Environ: environ})
	return code, out.String(), errOut.String()
}

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "admin.db")
	env := []string{"WXGATE_DATABASE_URL=sqlite://" + dbPath}

	code, _, errOut := runWithStdin(t, ctx, env, "ops-password-1\n", "admin", "create", "--username", "ops", "--password-stdin")
	if code != 0 || !strings.Contains(errOut, `created admin user "ops"`) {
		t.Fatalf("admin create: %d %s", code, errOut)
	}
	// Without a password on stdin or a terminal, one is generated and shown once.
	code, generated, errOut := run(t, ctx, env, "admin", "create", "--username", "dev")
	generated = strings.TrimSpace(generated)
	if code != 0 || len(generated) < auth.MinPasswordLen || !strings.Contains(errOut, "shown once") {
		t.Fatalf("admin create (generated): %d %q %s", code, generated, errOut)
	}
	code, _, errOut = runWithStdin(t, ctx, env, "another-password\n", "admin", "create", "--username", "ops", "--password-stdin")
	if code == 0 || !strings.Contains(errOut, "admin_user_exists") {
		t.Errorf("a second ops: %d %s", code, errOut)
	}
	code, _, errOut = runWithStdin(t, ctx, env, "short\n", "admin", "create", "--username", "qa", "--password-stdin")
	if code == 0 || !strings.Contains(errOut, "password_too_short") || !strings.Contains(errOut, "密码长度") {
		t.Errorf("a short password: %d %s", code, errOut)
	}
	code, list, _ := run(t, ctx, env, "admin", "list")
	if code != 0 || !strings.Contains(list, "ops") || !strings.Contains(list, "dev") || strings.Contains(list, "qa") {
		t.Errorf("admin list:\n%s", list)
	}

	code, _, errOut = runWithStdin(t, ctx, env, "ops-password-2\n", "admin", "passwd", "--username", "ops", "--password-stdin")
	if code != 0 {
		t.Fatalf("admin passwd: %d %s", code, errOut)
	}
	code, _, errOut = run(t, ctx, env, "admin", "passwd", "--username", "ops")
	if code == 0 || !strings.Contains(errOut, "--password-stdin") {
		t.Errorf("passwd without a password: %d %s", code, errOut)
	}

	// What the commands stored is what signing in checks.
	_, database, err := (&configFlags{}).open(ctx, Env{Environ: env}, false)
	if err != nil {
		t.Fatal(err)
	}
	store := auth.NewAdminStore(database, time.Now)
	if _, _, err := store.SignIn(ctx, "ops", "ops-password-2"); err != nil {
		t.Errorf("sign in with the new password: %v", err)
	}
	if _, _, err := store.SignIn(ctx, "dev", generated); err != nil {
		t.Errorf("sign in with the generated password: %v", err)
	}
	database.Close()

	code, _, errOut = run(t, ctx, env, "admin", "delete", "--username", "dev")
	if code != 0 {
		t.Fatalf("admin delete: %d %s", code, errOut)
	}
	code, _, errOut = run(t, ctx, env, "admin", "delete", "--username", "dev")
	if code == 0 || !strings.Contains(errOut, "admin_user_not_found") {
		t.Errorf("deleting twice: %d %s", code, errOut)
	}
	code, list, _ = run(t, ctx, env, "admin", "list")
	if code != 0 || strings.Contains(list, "dev") {
		t.Errorf("after delete:\n%s", list)
	}
}
