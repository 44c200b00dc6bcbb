package db

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	d, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.ExecContext(t.Context(), `CREATE TABLE counter (n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(t.Context(), `INSERT INTO counter (n) VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	return d
}

// Many writers on two pools of one file (the main pool and River's) each
// read-modify-write a counter: every committed increment counts, every
// rolled-back one does not, and nobody fails on a locked database.
func TestWriteGateConcurrentWritersOnTwoPools(t *testing.T) {
	t.Parallel()
	d := openTestSQLite(t)
	second, err := d.OpenSQLitePool(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	const writers, rounds = 24, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		pool := d.DB
		if w%3 == 0 {
			pool = second
		}
		wg.Go(func() {
			for r := range rounds {
				tx, err := pool.BeginTx(t.Context(), nil)
				if err != nil {
					errs <- err
					return
				}
				var n int
				if err := tx.QueryRowContext(t.Context(), `SELECT n FROM counter`).Scan(&n); err != nil {
					errs <- err
					tx.Rollback()
					return
				}
				if _, err := tx.ExecContext(t.Context(), `UPDATE counter SET n = $1`, n+1); err != nil {
					errs <- err
					tx.Rollback()
					return
				}
				if r%5 == 4 {
					err = tx.Rollback()
				} else {
					err = tx.Commit()
				}
				if err != nil {
					errs <- err
				}
				// A write outside a transaction goes through the gate too.
				if _, err := pool.ExecContext(t.Context(), `UPDATE counter SET n = n + 0`); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := d.QueryRowContext(t.Context(), `SELECT n FROM counter`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := writers * rounds * 4 / 5; n != want {
		t.Errorf("counter = %d, want %d (a lost or a rolled-back update counted)", n, want)
	}
}

// While a transaction is open, reads go on, a second writer waits, and one
// that waits too long gets an error that says the database was locked; once
// the transaction ends, writing works again.
func TestWriteGateWaitsAndTimesOut(t *testing.T) {
	d := openTestSQLite(t)
	gate := d.gate
	old := gate.wait
	gate.wait = 200 * time.Millisecond
	t.Cleanup(func() { gate.wait = old })

	tx, err := d.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `UPDATE counter SET n = 7`); err != nil {
		t.Fatal(err)
	}

	var n int
	if err := d.QueryRowContext(t.Context(), `SELECT n FROM counter`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a read beside an open write transaction: n=%d err=%v", n, err)
	}

	start := time.Now()
	_, err = d.ExecContext(t.Context(), `UPDATE counter SET n = 9`)
	if !errors.Is(err, errWriteGateTimeout) {
		t.Fatalf("a write that waited past the limit: %v", err)
	}
	if waited := time.Since(start); waited < gate.wait {
		t.Errorf("gave up after %s, before the %s limit", waited, gate.wait)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.BeginTx(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled wait for the gate: %v", err)
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(t.Context(), `UPDATE counter SET n = n + 1`); err != nil {
		t.Fatalf("a write after the transaction ended: %v", err)
	}
	if err := d.QueryRowContext(t.Context(), `SELECT n FROM counter`).Scan(&n); err != nil || n != 8 {
		t.Errorf("n = %d (%v), want 8", n, err)
	}
}

func TestIsWriteStatement(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		"SELECT 1":                                  false,
		"  select n from counter":                   false,
		"(SELECT 1)":                                false,
		"PRAGMA wal_checkpoint(PASSIVE)":            false,
		"\n\tINSERT INTO t VALUES (1) RETURNING id": true,
		"UPDATE t SET a = 1":                        true,
		"DELETE FROM t":                             true,
		"WITH x AS (SELECT 1) SELECT * FROM x":      true, // might write; waits its turn
		"CREATE TABLE t (a INT)":                    true,
	} {
		if got := isWriteStatement(q); got != want {
			t.Errorf("isWriteStatement(%q) = %v, want %v", q, got, want)
		}
	}
}

// Writers queued for the gate hold no pool connection, so the writer at the
// front can still read on the pool while it holds its transaction. (When
// queued writers held connections, a writer that needed one more stalled
// until they gave up: callbacks missed WeChat's deadline.)
func TestWriteGateQueuedWritersLeaveThePoolFree(t *testing.T) {
	d := openTestSQLite(t)

	tx, err := d.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const queued = 3 * sqliteMaxOpenConns
	var wg sync.WaitGroup
	errs := make(chan error, queued)
	for range queued {
		wg.Go(func() {
			tx, err := d.BeginTx(t.Context(), nil)
			if err == nil {
				_, err = tx.ExecContext(t.Context(), `UPDATE counter SET n = n + 1`)
				if err == nil {
					err = tx.Commit()
				}
			}
			errs <- err
		})
	}
	time.Sleep(200 * time.Millisecond) // let them queue

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var n int
	if err := d.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
		t.Fatalf("a read on the pool while %d writers queue: %v", queued, err)
	}
	if _, err := tx.ExecContext(t.Context(), `UPDATE counter SET n = n + 100`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := d.QueryRowContext(t.Context(), `SELECT n FROM counter`).Scan(&n); err != nil || n != 100+queued {
		t.Errorf("n = %d (%v), want %d", n, err, 100+queued)
	}
}

// A write through QueryRowContext that cannot get the gate reports why.
func TestWriteGateQueryRowTimeout(t *testing.T) {
	d := openTestSQLite(t)
	gate := d.gate
	old := gate.wait
	gate.wait = 100 * time.Millisecond
	t.Cleanup(func() { gate.wait = old })

	tx, err := d.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	err = d.QueryRowContext(t.Context(), `UPDATE counter SET n = 5 RETURNING n`).Scan(&n)
	if !errors.Is(err, errWriteGateTimeout) {
		t.Errorf("UPDATE … RETURNING while the gate is held: %v", err)
	}
}
