package schedule

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/problem"
)

// Trying a schedule for one follower renders what a run would send them,
// source call included, and sends nothing.
func TestTryOneRecipient(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	b := setup(t, d)
	b.clock.set(time.Date(2026, 11, 24, 7, 0, 0, 0, mustZone(t, "Asia/Shanghai")))
	in := b.instance(t, instanceOptions{work: true})
	b.ready(t, in)
	ctx := context.Background()
	withCity := b.follower(t, in.svc, "张三", map[string]string{"city": "北京"})
	noCity := b.follower(t, in.svc, "李四", nil)
	sc, err := in.svc.Create(ctx, weatherInput(b.simURL))
	if err != nil {
		t.Fatal(err)
	}

	tr, err := in.svc.Try(ctx, sc.ID, withCity)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status != "ready" || tr.Data["thing1"] != "北京" || tr.Data["phrase2"] == "" || tr.Data["date4"] != "2026年11月24日" || tr.SourceCalls != 1 {
		t.Fatalf("try for a follower with a city = %+v", tr)
	}
	tr, err = in.svc.Try(ctx, sc.ID, noCity)
	if err != nil || tr.Status != "skipped" || tr.Reason != ReasonNoCity || tr.Data != nil {
		t.Fatalf("try for a follower without a city = %+v, %v", tr, err)
	}
	var pe *problem.Error
	if _, err := in.svc.Try(ctx, sc.ID, " "); !errors.As(err, &pe) || pe.Code != "openid_required" {
		t.Fatalf("try without an openid: %v", err)
	}
	// Nothing was sent or recorded.
	runs, err := in.svc.Runs(ctx, sc.ID, RunFilter{})
	if err != nil || len(runs) != 0 {
		t.Fatalf("runs after trying: %+v, %v", runs, err)
	}
	if n := len(b.cards(t, withCity)); n != 0 {
		t.Fatalf("%d cards after trying", n)
	}
}
