package msglog

import (
	"context"
	"fmt"
	"sort"

	"github.com/wxgate/wxgate/internal/db"
)

// Stats sums up what WeChat pushed to an account over a stretch of time,
// for the console's dashboard.
type Stats struct {
	// Received counts the pushes logged (each once, however often WeChat
	// delivered it).
	Received int64
	// ByType counts them by kind: the MsgType ("text", "image", …) or, for
	// events, "event:" and the Event ("event:subscribe"). Most first.
	ByType []TypeCount
	// Replied counts the pushes answered with a passive reply.
	Replied int64
	// Duplicates counts WeChat's repeated deliveries refused (answered from
	// the log instead of being handled again).
	Duplicates int64
	// PerStep counts the pushes received in each step of the buckets.
	PerStep []int64
}

// TypeCount is how many pushes of one kind.
type TypeCount struct {
	Type  string
	Count int64
}

// Stats counts an account's pushes received from b.Since on.
func (s *Store) Stats(ctx context.Context, account string, b db.Buckets) (Stats, error) {
	var st Stats
	since := db.Timestamp(b.Since)
	rows, err := s.db.QueryContext(ctx, `
SELECT msg_type, event, reply_status, COUNT(*), COALESCE(SUM(retries), 0)
FROM inbound_messages WHERE account = $1 AND received_at >= $2
GROUP BY msg_type, event, reply_status`, account, since)
	if err != nil {
		return Stats{}, fmt.Errorf("msglog: stats: %w", err)
	}
	byType := map[string]int64{}
	for rows.Next() {
		var (
			msgType, event, status string
			n, retries             int64
		)
		if err := rows.Scan(&msgType, &event, &status, &n, &retries); err != nil {
			rows.Close()
			return Stats{}, fmt.Errorf("msglog: stats: %w", err)
		}
		kind := msgType
		if msgType == "event" {
			kind = "event:" + event
		}
		byType[kind] += n
		st.Received += n
		st.Duplicates += retries
		if Status(status) == StatusReplied {
			st.Replied += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("msglog: stats: %w", err)
	}
	for k, n := range byType {
		st.ByType = append(st.ByType, TypeCount{Type: k, Count: n})
	}
	sort.Slice(st.ByType, func(i, j int) bool {
		if st.ByType[i].Count != st.ByType[j].Count {
			return st.ByType[i].Count > st.ByType[j].Count
		}
		return st.ByType[i].Type < st.ByType[j].Type
	})

	bucket := b.BucketOf(s.db, "received_at")
	steps, err := s.db.QueryContext(ctx, `SELECT `+bucket+`, COUNT(*) FROM inbound_messages
WHERE account = $1 AND received_at >= $2 GROUP BY `+bucket, account, since)
	if err != nil {
		return Stats{}, fmt.Errorf("msglog: stats per step: %w", err)
	}
	if st.PerStep, err = b.Scan(steps); err != nil {
		return Stats{}, fmt.Errorf("msglog: stats per step: %w", err)
	}
	return st, nil
}
