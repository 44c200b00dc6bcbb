package msglog_test

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/msglog"
)

// BenchmarkRecord logs text pushes as the callback does, from 64
// concurrent callers (the group commit's batches), each push from a
// follower of its own, on SQLite. It reports the process's CPU per row
// (cpu-µs/row), the figure that matters on a server with one core.
//
//   - openids=random: openids as WeChat's look (the callback benchmark's
//     distinct senders), landing all over the follower index;
//
//   - openids=numbered: oBench0…01, oBench0…02: only ever appended to it;
//
//   - index=wide: the follower index before migration 00018, on
//     (account, openid, received_at).
//
//     go test -run '^$' -bench Record -benchtime 100000x ./internal/msglog/
func BenchmarkRecord(b *testing.B) {
	for _, tc := range []struct {
		name     string
		numbered bool
		wide     bool
	}{
		{"openids=random", false, false},
		{"openids=numbered", true, false},
		{"openids=random/index=wide", false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := dbtest.SQLite(b)
			if tc.wide {
				for _, q := range []string{`DROP INDEX inbound_messages_openid`,
					`CREATE INDEX inbound_messages_account_openid_received_at ON inbound_messages (account, openid, received_at)`} {
					if _, err := d.Exec(q); err != nil {
						b.Fatal(err)
					}
				}
			}
			s := msglog.NewStore(d, msglog.Options{})
			b.Cleanup(func() { s.Close() })
			raw := []byte(`<xml><ToUserName><![CDATA[gh_bench0000001]]></ToUserName><FromUserName><![CDATA[oBench0000000000000000000001]]></FromUserName><CreateTime>1765000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好，第 1 条]]></Content><MsgId>1765000000000000001</MsgId></xml>`)
			fields := []byte(`{"ToUserName":"gh_bench0000001","FromUserName":"oBench0000000000000000000001","CreateTime":1765000000,"MsgType":"text","MsgId":1765000000000000001,"Content":"你好，第 1 条"}`)
			reply := []byte(`<xml><ToUserName><![CDATA[oBench0000000000000000000001]]></ToUserName><FromUserName><![CDATA[gh_bench0000001]]></FromUserName><CreateTime>1765000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到：你好，第 1 条]]></Content></xml>`)
			var next atomic.Uint64
			b.SetParallelism(32) // 64 callers on GOMAXPROCS 2
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					sum := sha1.Sum([]byte(strconv.FormatUint(i, 10)))
					openid := "oBench" + hex.EncodeToString(sum[:11]) // 28 characters, in no order
					if tc.numbered {
						openid = fmt.Sprintf("oBench%022d", i)
					}
					e := msglog.Entry{Account: "bench", DedupKey: "msg:" + strconv.FormatUint(i, 10), OpenID: openid, MsgType: "text",
						MsgID: int64(i), Fields: fields, RawXML: raw, Status: msglog.StatusReplied, ReplyBody: reply}
					if _, err := s.Record(b.Context(), e); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/row")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
