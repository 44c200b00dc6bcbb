package db_test

// These tests pin down the behaviour the stores rely on being the same on
// both dialects: $n placeholders, ON CONFLICT, RETURNING, times, booleans,
// JSON and concurrent writers.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

func TestPlaceholdersAndReturning(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		// $1 used twice and the parameters out of order.
		var id int64
		err := database.QueryRowContext(ctx, `
			INSERT INTO reply_rules (account, position, match, pattern, event_key, reply)
			VALUES ($1, $3, $2, $1, $1, $4)
			RETURNING id`,
			"main", "keyword", 7, `{"type":"text","content":"hi"}`).Scan(&id)
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		if id <= 0 {
			t.Errorf("RETURNING id = %d", id)
		}

		var account, match, pattern, eventKey, source string
		var position int
		err = database.QueryRowContext(ctx, `
			SELECT account, position, match, pattern, event_key, source
			FROM reply_rules WHERE id = $1 AND match = $2`, id, "keyword").
			Scan(&account, &position, &match, &pattern, &eventKey, &source)
		if err != nil {
			t.Fatalf("select: %v", err)
		}
		if account != "main" || position != 7 || match != "keyword" || pattern != "main" || eventKey != "main" || source != "cli" {
			t.Errorf("row = %q %d %q %q %q %q", account, position, match, pattern, eventKey, source)
		}
	})
}

func TestOnConflict(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		insert := `
			INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, received_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account, dedup_key) DO NOTHING
			RETURNING id`
		now := db.Timestamp(time.Now())
		var first int64
		if err := database.QueryRowContext(ctx, insert, "main", "m1", "o1", "text", now).Scan(&first); err != nil {
			t.Fatalf("first insert: %v", err)
		}
		// A duplicate inserts nothing and so returns no row.
		var second int64
		err := database.QueryRowContext(ctx, insert, "main", "m1", "o1", "text", now).Scan(&second)
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("duplicate insert: err = %v, id = %d; want sql.ErrNoRows", err, second)
		}
		// Same key, other account: not a duplicate.
		if err := database.QueryRowContext(ctx, insert, "other", "m1", "o1", "text", now).Scan(&second); err != nil {
			t.Fatalf("other account: %v", err)
		}

		upsert := `
			INSERT INTO followers (account, openid, subscribed, subscribed_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4, $4)
			ON CONFLICT (account, openid) DO UPDATE
			SET subscribed = excluded.subscribed, updated_at = excluded.updated_at
			RETURNING subscribed, created_at, updated_at`
		t1 := db.Timestamp(time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))
		t2 := t1.Add(time.Hour)
		var subscribed bool
		var createdAt, updatedAt time.Time
		if err := database.QueryRowContext(ctx, upsert, "main", "o1", true, t1).Scan(&subscribed, &createdAt, &updatedAt); err != nil {
			t.Fatalf("upsert insert: %v", err)
		}
		if err := database.QueryRowContext(ctx, upsert, "main", "o1", false, t2).Scan(&subscribed, &createdAt, &updatedAt); err != nil {
			t.Fatalf("upsert update: %v", err)
		}
		if subscribed || createdAt != t1 || updatedAt != t2 {
			t.Errorf("after upsert: subscribed=%v created_at=%v updated_at=%v", subscribed, createdAt, updatedAt)
		}
	})
}

func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		shanghai := time.FixedZone("CST", 8*3600)
		base := time.Date(2026, 11, 24, 18, 0, 0, 0, shanghai)
		// Fractions chosen to trip text comparison: none, .5, .123456 and a
		// sub-microsecond part that Timestamp drops.
		written := []time.Time{
			db.Timestamp(base.Add(1500 * time.Millisecond)),
			db.Timestamp(base),
			db.Timestamp(base.Add(123456789 * time.Nanosecond)),
			db.Timestamp(base.Add(time.Second)),
			db.Timestamp(base.Add(-time.Second + 999999*time.Microsecond)),
		}
		for i, at := range written {
			_, err := database.ExecContext(ctx,
				`INSERT INTO inbound_messages (account, dedup_key, received_at) VALUES ($1, $2, $3)`,
				"main", fmt.Sprint(i), at)
			if err != nil {
				t.Fatalf("insert: %v", err)
			}
		}

		rows, err := database.QueryContext(ctx,
			`SELECT received_at, handled_at FROM inbound_messages WHERE account = $1 AND received_at >= $2 ORDER BY received_at`,
			"main", db.Timestamp(base))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []time.Time
		for rows.Next() {
			var receivedAt time.Time
			var handledAt sql.NullTime
			if err := rows.Scan(&receivedAt, &handledAt); err != nil {
				t.Fatal(err)
			}
			if handledAt.Valid {
				t.Errorf("handled_at = %v, want NULL", handledAt)
			}
			got = append(got, receivedAt)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		// Compared with ==: same instant, same location (UTC), same precision.
		want := []time.Time{written[1], written[2], written[3], written[0]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("read back\n %v\nwant\n %v", got, want)
		}
		for _, at := range got {
			if at.Location() != time.UTC {
				t.Errorf("%v is not in UTC", at)
			}
		}

		// A time set by the column default reads back as a time near now.
		if _, err := database.ExecContext(ctx,
			`INSERT INTO inbound_messages (account, dedup_key) VALUES ($1, $2)`, "main", "default"); err != nil {
			t.Fatal(err)
		}
		var defaulted time.Time
		if err := database.QueryRowContext(ctx,
			`SELECT received_at FROM inbound_messages WHERE dedup_key = $1`, "default").Scan(&defaulted); err != nil {
			t.Fatalf("default received_at: %v", err)
		}
		if d := time.Since(defaulted); d < -time.Minute || d > time.Minute || defaulted.Location() != time.UTC {
			t.Errorf("default received_at = %v, not now in UTC", defaulted)
		}
	})
}

func TestBooleans(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		for i, subscribed := range []bool{true, false} {
			_, err := database.ExecContext(ctx,
				`INSERT INTO followers (account, openid, subscribed) VALUES ($1, $2, $3)`,
				"main", fmt.Sprint("o", i), subscribed)
			if err != nil {
				t.Fatal(err)
			}
		}
		var openid string
		var subscribed bool
		err := database.QueryRowContext(ctx,
			`SELECT openid, subscribed FROM followers WHERE subscribed = $1`, false).Scan(&openid, &subscribed)
		if err != nil || openid != "o1" || subscribed {
			t.Errorf("WHERE subscribed = false: %q %v %v", openid, subscribed, err)
		}
		err = database.QueryRowContext(ctx,
			`SELECT openid, subscribed FROM followers WHERE subscribed`).Scan(&openid, &subscribed)
		if err != nil || openid != "o0" || !subscribed {
			t.Errorf("WHERE subscribed: %q %v %v", openid, subscribed, err)
		}

		// The column default is true, and NOT NULL holds.
		var enabled bool
		err = database.QueryRowContext(ctx,
			`INSERT INTO reply_rules (account, position, match, reply) VALUES ('main', 0, 'default', '{}') RETURNING enabled`).Scan(&enabled)
		if err != nil || !enabled {
			t.Errorf("default enabled = %v, %v", enabled, err)
		}
		if _, err := database.ExecContext(ctx,
			`INSERT INTO followers (account, openid, subscribed) VALUES ('main', 'o9', NULL)`); err == nil {
			t.Error("NULL subscribed accepted")
		}
	})
}

func TestJSONAndBigIntColumns(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		fields := map[string]any{"Content": "你好", "MsgId": "24466487412345678", "Nested": map[string]any{"a": []any{1.0, "b"}}}
		encoded, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		const msgID = int64(9223372036854775807)
		if _, err := database.ExecContext(ctx,
			`INSERT INTO inbound_messages (account, dedup_key, msg_id, fields) VALUES ($1, $2, $3, $4)`,
			"main", "j1", msgID, string(encoded)); err != nil {
			t.Fatalf("insert: %v", err)
		}
		if _, err := database.ExecContext(ctx,
			`INSERT INTO inbound_messages (account, dedup_key, msg_id) VALUES ($1, $2, $3)`,
			"main", "j2", nil); err != nil {
			t.Fatalf("insert without msg_id: %v", err)
		}

		var gotFields string
		var gotMsgID sql.NullInt64
		if err := database.QueryRowContext(ctx,
			`SELECT fields, msg_id FROM inbound_messages WHERE dedup_key = $1`, "j1").Scan(&gotFields, &gotMsgID); err != nil {
			t.Fatal(err)
		}
		var decoded map[string]any
		if err := json.Unmarshal([]byte(gotFields), &decoded); err != nil {
			t.Fatalf("fields %q: %v", gotFields, err)
		}
		if !reflect.DeepEqual(decoded, fields) || gotMsgID.Int64 != msgID {
			t.Errorf("read back %v %v", decoded, gotMsgID)
		}

		var defaultFields, tagIDs string
		if err := database.QueryRowContext(ctx,
			`SELECT fields, msg_id FROM inbound_messages WHERE dedup_key = $1`, "j2").Scan(&defaultFields, &gotMsgID); err != nil {
			t.Fatal(err)
		}
		if defaultFields != "{}" || gotMsgID.Valid {
			t.Errorf("defaults: fields %q msg_id %v", defaultFields, gotMsgID)
		}
		if err := database.QueryRowContext(ctx,
			`INSERT INTO followers (account, openid, subscribed) VALUES ('main', 'o1', TRUE) RETURNING tag_ids`).Scan(&tagIDs); err != nil || tagIDs != "[]" {
			t.Errorf("default tag_ids %q, %v", tagIDs, err)
		}

		// Both dialects refuse text that is not JSON.
		if _, err := database.ExecContext(ctx,
			`INSERT INTO inbound_messages (account, dedup_key, fields) VALUES ($1, $2, $3)`, "main", "j3", "{not json"); err == nil {
			t.Error("invalid JSON accepted")
		}
	})
}

// TestConcurrentWriteTransactions checks that writers queue rather than
// fail: on SQLite a read-then-write transaction would get SQLITE_BUSY when
// upgrading its lock without _txlock=immediate.
func TestConcurrentWriteTransactions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, database *db.DB) {
		t.Parallel()
		ctx := t.Context()
		if _, err := database.ExecContext(ctx,
			`INSERT INTO followers (account, openid, subscribed, qr_scene) VALUES ('main', 'counter', TRUE, 0)`); err != nil {
			t.Fatal(err)
		}
		const workers, increments = 16, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers*increments)
		for range workers {
			wg.Go(func() {
				for range increments {
					if err := increment(ctx, database); err != nil {
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
		var total int
		if err := database.QueryRowContext(ctx,
			`SELECT qr_scene FROM followers WHERE openid = 'counter'`).Scan(&total); err != nil {
			t.Fatal(err)
		}
		if total != workers*increments {
			t.Errorf("counter = %d, want %d", total, workers*increments)
		}
	})
}

func increment(ctx context.Context, database *db.DB) error {
	tx, err := database.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var n int
	// FOR UPDATE is PostgreSQL's way to the same serialisation SQLite gets
	// from BEGIN IMMEDIATE.
	query := `SELECT qr_scene FROM followers WHERE openid = 'counter'`
	if database.Dialect == db.Postgres {
		query += ` FOR UPDATE`
	}
	if err := tx.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE followers SET qr_scene = $1 WHERE openid = 'counter'`, n+1); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
