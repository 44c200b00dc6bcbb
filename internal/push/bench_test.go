package push_test

import (
	"fmt"
	"testing"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/push"
)

// BenchmarkSendAccept measures accepting a send of 1000 recipients:
// validation, resolution, and the rows and jobs written in one
// transaction (no worker runs).
func BenchmarkSendAccept(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			d := dbtest.SQLite(b)
			if dialect == "postgres" {
				d = dbtest.Postgres(b)
			}
			bb := setup(b, d, setupOptions{})
			bb.ready(b)
			openids := make([]string, 1000)
			for i := range openids {
				openids[i] = fmt.Sprintf("o%027d", i)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := bb.svc.Send(b.Context(), visitRequest(openids...), push.SendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(openids))/b.Elapsed().Seconds(), "recipients/s")
		})
	}
}
