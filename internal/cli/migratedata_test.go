package cli

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/queue"
)

type laterJob struct {
	Note string `json:"note"`
}

func (laterJob) Kind() string { return "migrate_data_test.later" }

// The demo's SQLite database moves to PostgreSQL: every table's rows
// arrive (the counts match on both sides), the demo's API key and admin
// user still sign in, times and flags keep their values, pending jobs
// arrive with their due time, new rows get fresh ids, and a second run
// into the now full database is refused without touching it.
func TestMigrateDataFromDemoToPostgres(t *testing.T) {
	t.Parallel()
	target := dbtest.Postgres(t)
	dataDir := t.TempDir()

	// The demo fills a SQLite database: followers, pushes, a token, keys,
	// an admin, templates, a schedule.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--metrics-listen", "",
			"--data", dataDir}, Env{Stdout: &out, Stderr: &errOut})
	}()
	keyLine := regexp.MustCompile(`Authorization: Bearer (wxg_\w+)`)
	waitFor(t, "the demo's key", func() bool { return keyLine.MatchString(out.String()) })
	key := keyLine.FindStringSubmatch(out.String())[1]
	// The demo's own example send, and a webhook endpoint: messages,
	// recipients and deliveries to carry over too.
	sendLine := regexp.MustCompile(`curl -s -H 'Authorization: Bearer \S+' -H 'Idempotency-Key: demo-visit-1' (\S+) -d '(.+)'\n`)
	m := sendLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the demo printed no send example:\n%s", out.String())
	}
	for _, call := range [][2]string{{m[1], m[2]}, {strings.Replace(m[1], "/messages", "/webhooks", 1), `{"url":"https://crm.example.com/hooks/wxgate"}`}} {
		req, _ := http.NewRequest("POST", call[0], strings.NewReader(call[1]))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d", call[0], resp.StatusCode)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut.String())
	}
	sourceURL := "sqlite://" + filepath.ToSlash(filepath.Join(dataDir, "wxgate.db"))
	source, err := db.Open(context.Background(), sourceURL)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	bg := context.Background()
	// A job due in an hour, waiting in the stopped demo's queue.
	q, err := queue.New(bg, source, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if _, err := q.Insert(bg, laterJob{Note: "到期再发"}, &river.InsertOpts{ScheduledAt: due, Queue: "push"}); err != nil {
		t.Fatal(err)
	}
	q.Stop(bg)
	var pendingJobs, followers int
	if err := source.QueryRowContext(bg, `SELECT count(*) FROM river_job WHERE state IN ('available', 'scheduled', 'retryable', 'running')`).Scan(&pendingJobs); err != nil {
		t.Fatal(err)
	}
	if err := source.QueryRowContext(bg, `SELECT count(*) FROM followers`).Scan(&followers); err != nil {
		t.Fatal(err)
	}
	if followers == 0 {
		t.Fatal("the demo made no followers")
	}

	code, stdout, stderr := run(t, bg, nil, "migrate-data", "--database-url", sourceURL, "--to", target.URL)
	if code != 0 {
		t.Fatalf("migrate-data: %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "迁移完成") || !regexp.MustCompile(`followers\s+\d+\s+\d+`).MatchString(stdout) {
		t.Errorf("output:\n%s", stdout)
	}
	// Every table with rows in SQLite has as many in PostgreSQL.
	tables, err := source.QueryContext(bg, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
		AND name NOT LIKE 'river_%' AND name NOT IN ('goose_db_version', 'leases')`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		_ = tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	nonEmpty := 0
	for _, n := range names {
		var a, b int
		_ = source.QueryRowContext(bg, `SELECT count(*) FROM `+n).Scan(&a)
		if err := target.QueryRowContext(bg, `SELECT count(*) FROM `+n).Scan(&b); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if a != b {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL", n, a, b)
		}
		if a > 0 {
			nonEmpty++
		}
	}
	for _, n := range []string{"push_messages", "push_recipients", "webhooks"} {
		var rows int
		_ = target.QueryRowContext(bg, `SELECT count(*) FROM `+n).Scan(&rows)
		if rows == 0 {
			t.Errorf("%s: no rows copied", n)
		}
	}
	if nonEmpty < 8 {
		t.Errorf("only %d tables had rows; the demo should fill more", nonEmpty)
	}
	// The data means the same: the key authenticates, followers count and
	// their subscribe times and flags are equal.
	if k, err := auth.NewStore(target, nil).Verify(bg, key); err != nil || k.Name == "" {
		t.Errorf("the demo's key on PostgreSQL: %+v %v", k, err)
	}
	var subA, subB int64
	if subA, err = follower.NewStore(source, nil).Count(bg, "demo", true); err != nil {
		t.Fatal(err)
	}
	if subB, err = follower.NewStore(target, nil).Count(bg, "demo", true); err != nil || subA != subB || subA == 0 {
		t.Errorf("subscribed followers: %d in SQLite, %d in PostgreSQL (%v)", subA, subB, err)
	}
	var timeA, timeB time.Time
	if err := source.QueryRowContext(bg, `SELECT subscribed_at FROM followers WHERE subscribed_at IS NOT NULL ORDER BY openid LIMIT 1`).Scan(&timeA); err != nil {
		t.Fatal(err)
	}
	if err := target.QueryRowContext(bg, `SELECT subscribed_at FROM followers WHERE subscribed_at IS NOT NULL ORDER BY openid COLLATE "C" LIMIT 1`).Scan(&timeB); err != nil {
		t.Fatal(err)
	}
	if !timeA.Equal(timeB) {
		t.Errorf("subscribed_at %v became %v", timeA, timeB)
	}
	// Pending jobs arrived, with their due time.
	var jobs int
	var at time.Time
	if err := target.QueryRowContext(bg, `SELECT count(*) FROM river_job WHERE state IN ('available', 'scheduled', 'retryable', 'running')`).Scan(&jobs); err != nil || jobs != pendingJobs {
		t.Errorf("%d pending jobs in PostgreSQL, %d in SQLite (%v)", jobs, pendingJobs, err)
	}
	if err := target.QueryRowContext(bg, `SELECT scheduled_at FROM river_job WHERE kind = 'migrate_data_test.later' AND state = 'scheduled' AND queue = 'push' AND args->>'note' = '到期再发'`).Scan(&at); err != nil || !at.Equal(due) {
		t.Errorf("the job due at %v: %v %v", due, at, err)
	}
	// New rows continue after the copied ids.
	if _, _, err := auth.NewStore(target, nil).Create(bg, "after", auth.AllScopes); err != nil {
		t.Errorf("a new key after the copy: %v", err)
	}

	// Again, into the database that now has the data: refused, unchanged.
	code, _, stderr = run(t, bg, nil, "migrate-data", "--database-url", sourceURL, "--to", target.URL)
	if code == 0 || !strings.Contains(stderr, "空数据库") {
		t.Errorf("a second copy: %d %s", code, stderr)
	}
	var after int
	_ = target.QueryRowContext(bg, `SELECT count(*) FROM followers`).Scan(&after)
	if after != followers {
		t.Errorf("the refused copy left %d followers, want %d", after, followers)
	}
	if code, _, stderr := run(t, bg, nil, "migrate-data", "--database-url", sourceURL, "--to", "mysql://x"); code == 0 || !strings.Contains(stderr, "postgres://") {
		t.Errorf("a target that is not PostgreSQL: %d %s", code, stderr)
	}
}
