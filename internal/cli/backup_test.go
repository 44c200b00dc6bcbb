package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

// A backup taken while rows are being written is a consistent, migrated
// database holding at least every row written before it started; an
// existing file is kept unless --force; PostgreSQL is pointed to pg_dump.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "live.db")
	if code, _, errOut := run(t, ctx, nil, "migrate", "--database-url", url); code != 0 {
		t.Fatalf("migrate: %s", errOut)
	}
	live, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	insert := func(i int64) error {
		_, err := live.ExecContext(ctx, `INSERT INTO admin_audit (at, username, action, target) VALUES ($1, 'ops', 'backup-test', $2)`,
			db.Timestamp(time.Now()), i)
		return err
	}
	for i := range int64(200) {
		if err := insert(i); err != nil {
			t.Fatal(err)
		}
	}
	// A writer keeps going during the backup.
	var written atomic.Int64
	written.Store(200)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := insert(written.Load()); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			written.Add(1)
		}
	})
	target := filepath.Join(dir, "copy.db")
	code, out, errOut := run(t, ctx, nil, "backup", "--database-url", url, "--to", target)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "integrity ok") {
		t.Fatalf("backup: %d %s %s", code, out, errOut)
	}

	copyDB, err := db.Open(ctx, "sqlite://"+target)
	if err != nil {
		t.Fatal(err)
	}
	var rows, distinct int64
	if err := copyDB.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT target) FROM admin_audit WHERE action = 'backup-test'`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows < 200 || rows != distinct || rows > written.Load() {
		t.Errorf("the copy has %d rows (%d distinct); 200 were written before it and %d in all", rows, distinct, written.Load())
	}
	states, err := copyDB.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if !s.Applied {
			t.Errorf("the copy lacks migration %d", s.Version)
		}
	}
	copyDB.Close()

	// Nothing half-written is left beside it; an existing copy is kept.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "partial") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	before, _ := os.ReadFile(target)
	if code, _, errOut := run(t, ctx, nil, "backup", "--database-url", url, "--to", target); code == 0 || !strings.Contains(errOut, "--force") {
		t.Errorf("a backup over an existing file: %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(target); string(after) != string(before) {
		t.Error("the refused backup changed the existing file")
	}
	if code, _, errOut := run(t, ctx, nil, "backup", "--database-url", url, "--to", target, "--force"); code != 0 {
		t.Errorf("backup --force: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, ctx, nil, "backup", "--database-url", url); code == 0 || !strings.Contains(errOut, "--to") {
		t.Errorf("backup without --to: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, ctx, nil, "backup", "--database-url", "postgres://nobody@127.0.0.1:1/none", "--to", target+"2"); code == 0 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup of PostgreSQL: %d %s", code, errOut)
	}
}
