package web_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
)

var followerRow = regexp.MustCompile(`<tr data-openid="([^"]+)">`)

func TestFollowersList(t *testing.T) {
	e := startDemo(t)
	b := signedIn(t, "en")
	page := b.get("/admin/followers?account=demo").page(t, http.StatusOK)
	rows := followerRow.FindAllStringSubmatch(page, -1)
	if len(rows) == 0 {
		t.Fatalf("the demo's followers are not listed:\n%s", page)
	}
	// The counts are the demo's (the paging test adds followers of an
	// account that is not configured, which the counts leave out).
	want := fmt.Sprintf("%d in all, %d following", len(rows), len(rows))
	for _, p := range []string{"/admin/followers?account=demo", "/admin/followers"} {
		if page := b.get(p).page(t, http.StatusOK); !strings.Contains(page, want) {
			t.Fatalf("%s: counts are not %q:\n%s", p, want, page)
		}
	}

	// Search by part of one openid finds that follower alone; its bound
	// external id is shown.
	openid := rows[0][1]
	if _, err := e.DB.ExecContext(t.Context(), `INSERT INTO bindings (external_id, account, openid, source, exclusive, created_at)
		VALUES ($1, 'demo', $2, 'qrcode', $3, $4)`, "crm-lead-4711", openid, true, db.Timestamp(time.Now())); err != nil {
		t.Fatal(err)
	}
	page = b.get("/admin/followers?account=demo&q="+openid[3:len(openid)-2]).page(t, http.StatusOK)
	if got := followerRow.FindAllStringSubmatch(page, -1); len(got) != 1 || got[0][1] != openid {
		t.Fatalf("search for part of %s listed %v", openid, got)
	}
	if !strings.Contains(page, "<code>crm-lead-4711</code>") {
		t.Fatalf("the bound external id is not shown:\n%s", page)
	}
	// …and so does a search by the external id.
	if got := followerRow.FindAllStringSubmatch(b.get("/admin/followers?q=crm-lead-4711").page(t, http.StatusOK), -1); len(got) != 1 || got[0][1] != openid {
		t.Fatalf("search by external id listed %v", got)
	}

	// Filtering by state: nobody of the demo has unfollowed.
	zh := signedIn(t, "zh-CN")
	page = zh.get("/admin/followers?account=demo&subscribed=no").page(t, http.StatusOK)
	if followerRow.MatchString(page) || !strings.Contains(page, "没有符合条件的粉丝") || !strings.Contains(page, `value="no" selected`) {
		t.Fatalf("unfollowed filter:\n%s", page)
	}

	// What one types is shown back escaped, never as markup.
	page = b.get("/admin/followers?q=%3Cscript%3Ealert(1)%3C/script%3E").page(t, http.StatusOK)
	if strings.Contains(page, "<script>alert(1)") || !strings.Contains(page, "&lt;script&gt;alert(1)") {
		t.Fatalf("the search text is not escaped:\n%s", page)
	}

	// A cursor the list did not make is refused with its code.
	body := b.get("/admin/followers?cursor=not-a-cursor").page(t, http.StatusBadRequest)
	if !strings.Contains(body, "invalid_cursor") {
		t.Fatalf("bad cursor:\n%s", body)
	}
}

// Paging: 120 followers of one account come in three pages, each once.
func TestFollowersPaging(t *testing.T) {
	e := startDemo(t)
	for i := range 120 {
		if _, err := e.DB.ExecContext(t.Context(), `INSERT INTO followers (account, openid, subscribed) VALUES ('paging', $1, $2)`,
			fmt.Sprintf("oPaging%04d", i), true); err != nil {
			t.Fatal(err)
		}
	}
	b := signedIn(t, "en")
	seen := map[string]bool{}
	pages := 0
	next := "/admin/followers?account=paging"
	for ; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page := b.get(next).page(t, http.StatusOK)
		for _, m := range followerRow.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				t.Fatalf("%s listed twice", m[1])
			}
			seen[m[1]] = true
		}
		next = ""
		if m := regexp.MustCompile(`href="(/admin/followers\?[^"]+)" data-test="follower-next"`).FindStringSubmatch(page); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 120 || pages != 3 {
		t.Fatalf("%d followers on %d pages, want 120 on 3", len(seen), pages)
	}
}
