package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A gateway deletes the pushes older than msglog.retention on its own,
// and keeps the rest.
func TestGatewayDeletesPushesPastRetention(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000e2ert1"
		secret = "e2e-rt-secret-0123456789abcdef0123"
	)
	// A log from before: pushes of 10, 5 and 2 days ago and of now,
	// more of them than one delete chunk.
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "old.db"))
	ctx := context.Background()
	d, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ages := map[string]time.Duration{"10d": 240 * time.Hour, "5d": 120 * time.Hour, "2d": 48 * time.Hour, "now": 0}
	perAge := map[string]int{"10d": 1500, "5d": 700, "2d": 3, "now": 2}
	log := msglog.NewStore(d, msglog.Options{})
	for age, n := range perAge {
		for i := range n {
			if _, err := log.Record(ctx, msglog.Entry{Account: "main", DedupKey: fmt.Sprintf("%s:%d", age, i), OpenID: "o" + age,
				MsgType: "text", Fields: []byte(`{}`), ReceivedAt: now.Add(-ages[age]), Status: msglog.StatusReplied}); err != nil {
				t.Fatal(err)
			}
		}
	}
	log.Close()
	d.Close()

	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{AppID: appID, AppSecret: secret, CallbackURL: gatewayURL + "/wx/main", Token: "rttoken"}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: secret, Token: "rttoken",
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simURL}}}
	}, func(cfg *config.Config) {
		cfg.DatabaseURL = dbURL
		cfg.MsgLog.Retention = 72 * time.Hour
	})
	kept := func() string {
		d, err := db.Open(e.ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		rows, err := d.QueryContext(e.ctx, `SELECT openid, count(*) FROM inbound_messages GROUP BY openid`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var openid string
			var n int
			if err := rows.Scan(&openid, &n); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s=%d", strings.TrimPrefix(openid, "o"), n))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	want := "2d=3 now=2"
	deadline := time.Now().Add(30 * time.Second)
	for got := kept(); got != want; got = kept() {
		if time.Now().After(deadline) {
			t.Fatalf("pushes kept: %s, want %s (older than 72h deleted)", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
