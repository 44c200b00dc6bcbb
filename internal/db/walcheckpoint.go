package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// WALCheckpointer checkpoints one SQLite database (see Checkpoint). It is
// used by one goroutine at a time.
type WALCheckpointer struct {
	d      *DB
	syncer *fileSyncer // nil where the kernel cannot fsync asynchronously
}

// NewWALCheckpointer returns a checkpointer for d, a SQLite database; Close
// it when done.
func (d *DB) NewWALCheckpointer() (*WALCheckpointer, error) {
	if d.Dialect != SQLite {
		return nil, fmt.Errorf("a WAL checkpointer on a %s database", d.Dialect)
	}
	return &WALCheckpointer{d: d, syncer: newFileSyncer()}, nil
}

// Close releases what the asynchronous fsyncs hold.
func (c *WALCheckpointer) Close() error {
	if c.syncer == nil {
		return nil
	}
	return c.syncer.close()
}

// Checkpoint copies the write-ahead log of a SQLite database back into
// the database file (a PASSIVE checkpoint: it waits for nobody and copies
// what no reader still needs), and returns the frames in the log and the
// frames now copied.
//
// Why not just PRAGMA wal_checkpoint: the checkpoint fsyncs the log before
// it copies and the database file after, 5–25 ms each under load. SQLite
// runs inside the Go scheduler, and a goroutine in a system call keeps its
// processor until the runtime's monitor takes it back, which it does only
// after seeing the same call on two of its wake-ups, up to 10 ms apart when
// the process is busy. On one core every callback waited for those fsyncs
// (docs/benchmarks.md, "Where the time goes").
//
// So where the kernel can fsync asynchronously (Linux AIO), the two fsyncs
// are done here, by a submission whose completion the goroutine waits for
// on the network poller, without holding a processor, and SQLite's own are
// turned off for the checkpoint alone. The order SQLite relies on is kept,
// which is what makes a power cut during or after the checkpoint safe:
//
//  1. A read transaction is opened on a connection of its own. Its snapshot
//     ends at frame N, every frame up to N is already written to the log
//     file, and while it stays open the checkpoint copies nothing after N
//     and no writer can start the log over.
//  2. The log is fsynced: frames up to N are durable before any of them is
//     copied.
//  3. The checkpoint runs with synchronous=OFF on its connection.
//  4. The database file is fsynced: the copied pages are durable before
//     the reader closes and a writer may overwrite those frames.
//
// A reader that finds the log fully copied reads the database file alone
// and limits nothing (SQLite's read mark 0). The read of the log's index
// before and after step 1 rules that out; if it cannot, or the asynchronous
// fsync is missing, this falls back to SQLite's own checkpoint, with its
// fsyncs, which is correct and only slower.
//
// The log starts over from its beginning only at a write that finds it
// wholly copied. SQLite's own checkpoint got there because its fsyncs held
// the one processor and no commit could come in meanwhile; here commits go
// on, so frames come in during every checkpoint. Once the log holds
// walRestartFrames, a second round runs right after the first with the
// write gate held, so that it copies the few frames that came meanwhile and
// the next write restarts the log. It runs even when the first round
// copied everything: a write transaction already open then (its snapshot
// taken before the copy) appends to the log instead of restarting it, and
// holding the gate waits for that transaction to end.
func (c *WALCheckpointer) Checkpoint(ctx context.Context) (logFrames, copied int, err error) {
	logFrames, copied, err = c.checkpointOnce(ctx)
	if err != nil || c.syncer == nil || logFrames < walRestartFrames {
		return logFrames, copied, err
	}
	if err := c.d.gate.acquire(ctx); err != nil {
		return logFrames, copied, fmt.Errorf("checkpointing %s: %w", c.d.path, err)
	}
	defer c.d.gate.release()
	return c.checkpointOnce(ctx)
}

// walRestartFrames is the log's length, in frames (pages), from which
// Checkpoint makes sure the log starts over: about 64 MB of 4 KB pages.
const walRestartFrames = 16000

func (c *WALCheckpointer) checkpointOnce(ctx context.Context) (logFrames, copied int, err error) {
	if c.syncer != nil {
		logFrames, copied, ok, err := c.d.checkpointSyncingAside(ctx, c.syncer)
		if ok || err != nil {
			return logFrames, copied, err
		}
	}
	return c.d.checkpointBySQLite(ctx, c.d.DB)
}

// checkpointConn is what a checkpoint runs on: the pool or one connection.
type checkpointConn interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *DB) checkpointBySQLite(ctx context.Context, on checkpointConn) (logFrames, copied int, err error) {
	var busy int
	if err := on.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil {
		return 0, 0, fmt.Errorf("checkpointing %s: %w", d.path, err)
	}
	return logFrames, copied, nil
}

// checkpointSyncingAside is Checkpoint's steps 1–4. ok is false when
// nothing was done and SQLite's own checkpoint should run instead.
func (d *DB) checkpointSyncingAside(ctx context.Context, fileSyncer *fileSyncer) (logFrames, copied int, ok bool, err error) {
	before, err := readWALIndex(d.path)
	if err != nil || before.backfilled >= before.frames {
		// No index to read (not yet created), or nothing to copy.
		return before.frames, before.backfilled, err == nil, nil
	}

	// Step 1.
	closeReader, err := d.openSnapshotReader(ctx)
	if err != nil {
		return 0, 0, false, err
	}
	defer closeReader()
	// The reader limits the checkpoint unless it found the log fully
	// copied. Copying only moves the copied mark forward, and only a
	// checkpoint moves it: unchanged around the read (same log, same mark,
	// below the end before), it was below the end when the read began.
	after, err := readWALIndex(d.path)
	if err != nil || after.salt != before.salt || after.backfilled != before.backfilled {
		return 0, 0, false, nil
	}

	// Step 2.
	if err := fileSyncer.sync(d.path + "-wal"); err != nil {
		return 0, 0, false, nil
	}

	// Step 3, on a connection whose synchronous setting is put back before
	// it returns to the pool (or is thrown away if that fails): a
	// connection left at OFF would commit without the log's guarantees.
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		return 0, 0, false, fmt.Errorf("checkpointing %s: %w", d.path, err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		return 0, 0, false, fmt.Errorf("checkpointing %s: %w", d.path, err)
	}
	logFrames, copied, err = d.checkpointBySQLite(ctx, conn)
	if err != nil {
		return 0, 0, false, err
	}

	// Step 4. If the asynchronous fsync fails, the ordinary one is tried;
	// the reader stays open until one of them has returned.
	if err := fileSyncer.sync(d.path); err != nil {
		if err := syncFileBlocking(d.path); err != nil {
			return logFrames, copied, true, fmt.Errorf("checkpointing %s: fsync of the database file after copying: %w", d.path, err)
		}
	}
	return logFrames, copied, true, nil
}

// openSnapshotReader opens a read transaction on a pooled connection and
// returns what ends it. A statement left open after its first row keeps
// its read transaction (autocommit), without BEGIN, which takes the write
// lock on these connections (_txlock=immediate).
func (d *DB) openSnapshotReader(ctx context.Context) (closeReader func(), err error) {
	reader, err := d.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpointing %s: %w", d.path, err)
	}
	rows, err := reader.QueryContext(ctx, `SELECT name FROM sqlite_schema`)
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("checkpointing %s: opening the reader: %w", d.path, err)
	}
	if !rows.Next() {
		rows.Close()
		reader.Close()
		return nil, fmt.Errorf("checkpointing %s: the reader found no schema: %v", d.path, rows.Err())
	}
	return func() {
		rows.Close()
		reader.Close()
	}, nil
}

// walIndex is what Checkpoint reads of SQLite's WAL index (the -shm
// file, https://www.sqlite.org/walformat.html): the log's salt, which
// changes when the log starts over; the frames in the log; the frames
// copied back.
type walIndex struct {
	salt       [2]uint32
	frames     int
	backfilled int
}

// The WAL index starts with two copies of a 48-byte header (mxFrame at 16,
// the salts at 32), then the checkpoint information (nBackfill at 96), in
// the machine's byte order.
const (
	walIndexHeaderSize = 48
	walIndexReadSize   = 2*walIndexHeaderSize + 4
)

var errWALIndexTorn = errors.New("the WAL index changed while read")

func readWALIndex(path string) (walIndex, error) {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return walIndex{}, err
	}
	defer f.Close()
	var buf [walIndexReadSize]byte
	if _, err := io.ReadFull(f, buf[:]); err != nil {
		return walIndex{}, err
	}
	order := binary.NativeEndian
	first, second := buf[:walIndexHeaderSize], buf[walIndexHeaderSize:2*walIndexHeaderSize]
	if string(first) != string(second) {
		return walIndex{}, errWALIndexTorn
	}
	return walIndex{
		salt:       [2]uint32{order.Uint32(first[32:]), order.Uint32(first[36:])},
		frames:     int(order.Uint32(first[16:])),
		backfilled: int(order.Uint32(buf[2*walIndexHeaderSize:])),
	}, nil
}

// syncFileBlocking fsyncs the file at path the ordinary way.
func syncFileBlocking(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
