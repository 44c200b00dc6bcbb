package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

var statValue = func(name string) *regexp.Regexp {
	return regexp.MustCompile(`data-test="stat-` + name + `">\s*<div class="label">[^<]*</div>\s*<div class="value">(-?\d+)</div>`)
}

// The dashboard shows the demo account's figures as the database has them,
// with a chart drawn on the server.
func TestDashboardShowsStoredFiguresAndAChart(t *testing.T) {
	b := signedIn(t, "zh-CN")
	env := b.env
	ctx := context.Background()
	var pushes, following int64
	if err := env.DB.QueryRowContext(ctx, `SELECT count(*) FROM inbound_messages WHERE account = 'demo'`).Scan(&pushes); err != nil {
		t.Fatal(err)
	}
	if err := env.DB.QueryRowContext(ctx, `SELECT count(*) FROM followers WHERE account = 'demo' AND subscribed`).Scan(&following); err != nil {
		t.Fatal(err)
	}
	if pushes == 0 || following == 0 {
		t.Fatalf("the demo has %d pushes and %d followers; the test needs some", pushes, following)
	}
	// Token fetches are counted over the range, across instances: one
	// three days old counts in 7 days, not in 24 hours.
	var fetches int
	if err := env.DB.QueryRowContext(ctx, `SELECT count(*) FROM token_fetches WHERE account = 'demo' AND ok`).Scan(&fetches); err != nil {
		t.Fatal(err)
	}
	if fetches == 0 {
		t.Fatal("the demo fetched no token")
	}
	if _, err := env.DB.ExecContext(ctx, `INSERT INTO token_fetches (app_id, mode, account, at, ok, forced, errcode)
		VALUES ('wxdemo', 'stable', 'demo', $1, TRUE, FALSE, 0), ('wxdemo', 'stable', 'demo', $1, FALSE, FALSE, 40164)`,
		db.Timestamp(time.Now().Add(-72*time.Hour))); err != nil {
		t.Fatal(err)
	}
	tokenFetches := regexp.MustCompile(`data-test="token-fetches">(\d+)</strong>(（其中失败 (\d+) 次）)?`)
	for rng, want := range map[string][]string{"24h": {strconv.Itoa(fetches), ""}, "7d": {strconv.Itoa(fetches + 1), "1"}} {
		page := b.get("/admin/dashboard?account=demo&range="+rng).page(t, http.StatusOK)
		m := tokenFetches.FindStringSubmatch(page)
		if m == nil || m[1] != want[0] || m[3] != want[1] {
			t.Errorf("%s: token fetches shown as %q, want %v", rng, m, want)
		}
	}

	for _, rng := range []string{"24h", "7d"} {
		page := b.get("/admin/dashboard?account=demo&range="+rng).page(t, http.StatusOK)
		got := func(name string) int64 {
			m := statValue(name).FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("%s: no %s figure:\n%s", rng, name, page)
			}
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
		// Everything the demo did happened within the range.
		if n := got("callbacks"); n < pushes {
			t.Errorf("%s: %d pushes shown, %d stored", rng, n, pushes)
		}
		if n := got("followers"); n != following {
			t.Errorf("%s: %d followers shown, %d stored", rng, n, following)
		}
		if !strings.Contains(page, `data-test="dashboard-chart"`) || strings.Count(page, "<rect ") == 0 {
			t.Fatalf("%s: no chart drawn:\n%s", rng, page)
		}
		bars := 24 * 2
		if rng == "7d" {
			bars = 7 * 2
		}
		if n := strings.Count(page, "<rect "); n != bars {
			t.Errorf("%s: %d bars, want %d (two series)", rng, n, bars)
		}
		if !strings.Contains(page, "event:subscribe") || !strings.Contains(page, "收到的推送") {
			t.Errorf("%s: the kinds of push or the Chinese labels are missing", rng)
		}
	}
	// A range or account the page does not know falls back to the defaults.
	page := b.get("/admin/dashboard?account=nope&range=1y").page(t, http.StatusOK)
	if !strings.Contains(page, `<option value="24h" selected>`) || !strings.Contains(page, `<option value="demo" selected>`) {
		t.Errorf("unknown range and account are not replaced by the defaults")
	}
	en := signedIn(t, "en").get("/admin/dashboard").page(t, http.StatusOK)
	if !strings.Contains(en, "Pushes received") || !strings.Contains(en, "Duplicates refused") {
		t.Errorf("the English dashboard is not in English")
	}
	// Signed out: to the sign-in page.
	if r := newBrowser(t, "en").get("/admin/dashboard"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/admin/login") {
		t.Errorf("signed out: %d → %s", r.status, r.location)
	}
}
