package db

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openPagesDB opens a SQLite database with a table whose rows take about
// a page each.
func openPagesDB(t *testing.T) *DB {
	t.Helper()
	d := openTestSQLite(t)
	if _, err := d.ExecContext(t.Context(), `CREATE TABLE pages (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return d
}

// writePages commits rows of about one page each, n in one transaction.
func writePages(t *testing.T, d execer, n int) {
	t.Helper()
	_, err := d.ExecContext(context.Background(), `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
INSERT INTO pages (body) SELECT randomblob(3000) FROM k`, n)
	if err != nil {
		t.Error(err)
	}
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func walIndexOf(t *testing.T, d *DB) walIndex {
	t.Helper()
	for range 100 {
		w, err := readWALIndex(d.path)
		if err == errWALIndexTorn {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	t.Fatal("the WAL index kept changing while read")
	return walIndex{}
}

// The guarantee the checkpoint's order rests on: while the snapshot reader
// is open, a checkpoint copies no frame it does not see, so none written
// after the log's fsync.
func TestSnapshotReaderLimitsTheCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := openPagesDB(t)
	writePages(t, d, 50)
	seen := walIndexOf(t, d)
	if seen.frames < 50 || seen.backfilled != 0 {
		t.Fatalf("after 50 pages the WAL index reads %+v", seen)
	}
	closeReader, err := d.openSnapshotReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writePages(t, d, 50)
	logFrames, copied, err := d.checkpointBySQLite(ctx, d.DB)
	if err != nil {
		t.Fatal(err)
	}
	if copied > seen.frames || logFrames <= seen.frames {
		t.Errorf("with the reader open the checkpoint copied %d of %d frames, want at most the %d it sees", copied, logFrames, seen.frames)
	}
	if w := walIndexOf(t, d); w.backfilled != copied || w.frames != logFrames {
		t.Errorf("the WAL index reads %+v, the checkpoint said %d of %d", w, copied, logFrames)
	}
	closeReader()
	if logFrames, copied, err = d.checkpointBySQLite(ctx, d.DB); err != nil || copied != logFrames {
		t.Errorf("with the reader closed: %d of %d frames, %v", copied, logFrames, err)
	}
}

func TestFileSyncer(t *testing.T) {
	t.Parallel()
	s := newFileSyncer()
	if s == nil {
		if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
			t.Skip("this kernel refuses Linux AIO (io_setup): checkpoints use SQLite's own fsyncs here")
		}
		return
	}
	defer s.close()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 { // one context serves one fsync after another
		if err := s.sync(path); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	if err := s.sync(path + ".missing"); err == nil {
		t.Error("sync of a missing file succeeded")
	}
}

// longLog returns a database whose log is past walRestartFrames and not
// yet copied, a checkpointer, and the writer's connection, which leaves
// checkpoints to the checkpointer as the message log's writer does.
func longLog(t *testing.T) (*DB, *WALCheckpointer, *sql.Conn, walIndex) {
	t.Helper()
	d := openPagesDB(t)
	c, err := d.NewWALCheckpointer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	writer, err := d.DB.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Close() })
	if _, err := writer.ExecContext(t.Context(), `PRAGMA wal_autocheckpoint = 0`); err != nil {
		t.Fatal(err)
	}
	writePages(t, writer, walRestartFrames+500)
	long := walIndexOf(t, d)
	if long.frames < walRestartFrames || long.backfilled != 0 {
		t.Fatalf("after the long write the WAL index reads %+v", long)
	}
	return d, c, writer, long
}

// A write transaction open while the checkpoint copies the whole log took
// its snapshot before the copy, so its commit appends to the log instead of
// starting it over. The checkpoint must still get the log to start over.
func TestWALCheckpointerRestartsPastAnOpenTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, c, writer, long := longLog(t)
	if c.syncer == nil {
		t.Skip("no asynchronous fsync on this kernel: the checkpoint is SQLite's own")
	}

	tx, err := writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	writePages(t, tx, 5)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Checkpoint(ctx)
		done <- err
	}()
	// The first round copies every committed frame; only then does the
	// transaction commit.
	deadline := time.Now().Add(30 * time.Second)
	for w := walIndexOf(t, d); w.backfilled < long.frames; w = walIndexOf(t, d) {
		if time.Now().After(deadline) {
			t.Fatalf("the checkpoint did not copy the committed log: %+v", w)
		}
		select {
		case err := <-done:
			// Only an error may end Checkpoint here: it has to wait for the
			// open transaction before it can get the log to start over.
			t.Fatalf("the checkpoint returned (error %v) while a write transaction was open, at %+v", err, walIndexOf(t, d))
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	writePages(t, writer, 1)
	if now := walIndexOf(t, d); now.salt == long.salt || now.frames >= long.frames {
		t.Errorf("the log did not start over: %+v before the checkpoint, %+v after it and a write", long, now)
	}
}

// Checkpoints beside a busy writer copy the log, leave the database whole,
// put every pooled connection back at synchronous NORMAL, and get the log
// to start over once it is long.
func TestWALCheckpointerBesideAWriter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, c, writer, long := longLog(t)

	var commits atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				writePages(t, writer, 5)
				commits.Add(1)
			}
		}
	}()
	for commits.Load() == 0 {
		runtime.Gosched()
	}
	for round := range 5 {
		logFrames, copied, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatalf("checkpoint %d: %v", round, err)
		}
		if copied == 0 || copied > logFrames {
			t.Errorf("checkpoint %d copied %d of %d frames", round, copied, logFrames)
		}
		// Some commits between rounds, so that each has frames to copy.
		for seen := commits.Load(); commits.Load() < seen+3; {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	writer.Close() // back to the pool, for the check of every connection below

	now := walIndexOf(t, d)
	if now.salt == long.salt || now.frames >= long.frames {
		t.Errorf("the log did not start over: %+v before the checkpoints, %+v after", long, now)
	}
	var check string
	if err := d.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
	// Every connection of the pool, held at once so that each is a
	// different one.
	conns := make([]interface{ Close() error }, 0, sqliteMaxOpenConns)
	for range sqliteMaxOpenConns {
		conn, err := d.DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		var synchronous int
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&synchronous); err != nil || synchronous != 1 {
			t.Errorf("a pooled connection has synchronous = %d (%v), want 1 (NORMAL)", synchronous, err)
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
}
