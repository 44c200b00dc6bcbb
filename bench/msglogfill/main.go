// Command msglogfill fills wxgate's message log with pushes as wxgate logs
// them, so that the callback benchmark can measure a gateway whose log is
// already large (bench/callback.sh, BENCH_PREFILL).
//
//	msglogfill --database-url sqlite:///path/wxgate.db --rows 5000000
//
// It migrates the database, then inserts text messages from distinct
// followers with random-looking openids (as real ones are), each with its
// parsed fields, its XML and the text reply the starter rules give, spread
// over the last 29 days (inside the default msglog.retention, so the
// retention job leaves them), oldest first. The log's indexes are dropped
// for the fill and built again afterwards from their own definitions:
// building an index once is far quicker than keeping it up to date row by
// row. The MsgIds are below those of the load generator, which starts from
// the clock, so the pushes of a benchmark are all new.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/wxgate/wxgate/bench/internal/loadgen"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

func main() {
	databaseURL := flag.String("database-url", "", "wxgate's database (sqlite:///… or postgres://…; required)")
	rows := flag.Int("rows", 5_000_000, "pushes to insert")
	account := flag.String("account", "bench", "the account they were pushed to")
	originalID := flag.String("original-id", "gh_bench0000001", "the account's original id")
	flag.Parse()
	if *databaseURL == "" || *rows < 1 {
		log.Fatal("msglogfill: --database-url and --rows ≥ 1 are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	if err := fill(ctx, *databaseURL, *rows, *account, *originalID); err != nil {
		log.Fatalf("msglogfill: %v", err)
	}
	fmt.Printf("msglogfill: %d pushes in %s\n", *rows, time.Since(start).Round(time.Second))
}

// rowsPerInsert and rowsPerTx shape the fill: multi-row inserts in large
// transactions.
const (
	rowsPerInsert = 200
	rowsPerTx     = 20_000
)

func fill(ctx context.Context, databaseURL string, rows int, account, originalID string) error {
	d, err := db.Open(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Migrate(ctx); err != nil {
		return err
	}
	indexes, err := dropIndexes(ctx, d)
	if err != nil {
		return err
	}
	insert := insertQuery(d.Dialect, rowsPerInsert)
	now := time.Now()
	span := 29 * 24 * time.Hour
	step := span / time.Duration(rows)
	first := now.Add(-span)
	prefix := openIDPrefix()
	var tx *sql.Tx
	args := make([]any, 0, rowsPerInsert*columns)
	for i := 0; i < rows; i++ {
		if tx == nil {
			if tx, err = d.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
		at := first.Add(time.Duration(i) * step)
		args = append(args, row(i, at, account, originalID, prefix)...)
		last := i == rows-1
		if len(args) == cap(args) || last {
			q := insert
			if len(args) != cap(args) {
				q = insertQuery(d.Dialect, len(args)/columns)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				tx.Rollback()
				return fmt.Errorf("inserting pushes: %w", err)
			}
			args = args[:0]
		}
		if (i+1)%rowsPerTx == 0 || last {
			if err := tx.Commit(); err != nil {
				return fmt.Errorf("committing pushes: %w", err)
			}
			tx = nil
			if (i+1)%1_000_000 == 0 {
				fmt.Fprintf(os.Stderr, "msglogfill: %d pushes\n", i+1)
			}
		}
	}
	for _, ddl := range indexes {
		if _, err := d.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("building an index again (%s): %w", ddl, err)
		}
	}
	if d.Dialect == db.SQLite {
		if _, err := d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	} else if _, err := d.ExecContext(ctx, `VACUUM ANALYZE inbound_messages`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

const columns = 12

// row is one logged push: a text message from follower i, as dispatch
// logs it.
func row(i int, at time.Time, account, originalID, prefix string) []any {
	msgID := int64(1_000_000_000_000_000_000 + i)
	m := &wechat.Message{
		ToUserName: originalID, FromUserName: loadgen.FollowerOpenID(prefix, uint64(i)), CreateTime: at.Unix(),
		MsgType: wechat.MsgTypeText, Content: fmt.Sprintf("你好，第 %d 条", i), MsgID: msgID,
	}
	fields, _ := json.Marshal(m)
	reply, _ := wechat.BuildReply(m.FromUserName, m.ToUserName, at.Unix(), wechat.TextReply{Content: "收到：" + m.Content})
	return []any{account, m.DedupKey(), m.FromUserName, m.MsgType, "", msgID, string(fields), string(wechat.EncodeMessage(m)),
		db.Timestamp(at), "replied", string(reply), db.Timestamp(at)}
}

// openIDPrefix is the part of an openid shared by the filled followers;
// the rest looks random, so their rows land all over the openid index as
// real ones do.
func openIDPrefix() string { return "oFill" + rand.Text()[:1] }

func insertQuery(dialect db.Dialect, n int) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO inbound_messages (account, dedup_key, openid, msg_type, event, msg_id, fields, raw_xml, received_at, reply_status, reply_body, handled_at) VALUES `)
	p := 1
	for r := range n {
		if r > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for c := range columns {
			if c > 0 {
				sb.WriteByte(',')
			}
			if dialect == db.SQLite {
				sb.WriteByte('?')
			} else {
				fmt.Fprintf(&sb, "$%d", p)
			}
			p++
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// dropIndexes drops the secondary indexes of the log (not the one behind
// its UNIQUE constraint) and returns the statements that build them again.
func dropIndexes(ctx context.Context, d *db.DB) ([]string, error) {
	query := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'inbound_messages' AND sql IS NOT NULL`
	if d.Dialect != db.SQLite {
		query = `SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.tablename = 'inbound_messages' AND i.schemaname = current_schema()
AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`
	}
	rows, err := d.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("listing the log's indexes: %w", err)
	}
	var names, ddls []string
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			rows.Close()
			return nil, err
		}
		names, ddls = append(names, name), append(ddls, ddl)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := d.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return nil, fmt.Errorf("dropping index %s: %w", name, err)
		}
	}
	return ddls, nil
}
