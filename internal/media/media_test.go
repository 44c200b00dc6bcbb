package media_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	appID  = "wx0000000000med1a0"
	secret = "media-secret-0123456789abcdef012"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// tokenSource fetches stable tokens straight from the simulator.
type tokenSource struct {
	c *wechat.Client
}

func (s tokenSource) Token(ctx context.Context) (string, error) {
	t, err := s.c.GetStableToken(ctx, appID, secret, false)
	return t.Token, err
}
func (s tokenSource) Invalidate(context.Context, string) error { return nil }

type clients struct{ c *wechat.Client }

func (c clients) Client(account string) (*wechat.Client, bool) { return c.c, account == "main" }

func jpeg(fill byte, n int) []byte {
	return append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, bytes.Repeat([]byte{fill}, n)...)
}

type fixture struct {
	sim   *wechatsim.Simulator
	clock *clock
	lib   *media.Library
	db    *db.DB
}

func setup(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	sim, err := wechatsim.New(wechatsim.Config{Now: c.now, Apps: []wechatsim.AppConfig{{AppID: appID, AppSecret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	raw := wechat.NewClient(wechat.ClientOptions{BaseURLs: []string{srv.URL}, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Now: c.now})
	client := raw.WithTokenSource(tokenSource{raw})
	return &fixture{sim: sim, clock: c, db: d,
		lib: media.New(media.Options{DB: d, Clients: clients{client}, Now: c.now, MaxDownload: 1 << 10})}
}

// The same bytes go up once; a file a reply names is uploaded once and
// uploaded again, from the file, before WeChat's 3 days run out; a
// changed file gets a new upload.
func TestUploadsByContentAndRenewal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := setup(t, d)
		ctx := t.Context()
		first, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: "image", Name: "a.jpg", Data: jpeg(1, 100)})
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: "image", Name: "copy.jpg", Data: jpeg(1, 100)})
		if err != nil || !again.Reused || again.MediaID != first.MediaID {
			t.Fatalf("the same bytes again: %+v %v", again, err)
		}
		if n := f.sim.CallCount(appID, "/cgi-bin/media/upload"); n != 1 {
			t.Errorf("%d uploads for the same bytes, want 1", n)
		}
		perm, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: "image", Name: "a.jpg", Data: jpeg(1, 100), Permanent: true})
		if err != nil || perm.Reused || perm.ExpiresAt != nil || perm.URL == "" {
			t.Fatalf("permanent: %+v %v", perm, err)
		}

		path := filepath.Join(t.TempDir(), "welcome.jpg")
		if err := os.WriteFile(path, jpeg(2, 300), 0o644); err != nil {
			t.Fatal(err)
		}
		id, err := f.lib.ForFile(ctx, "main", "image", path)
		if err != nil {
			t.Fatal(err)
		}
		if data, _, ok := f.sim.Media(appID, id); !ok || !bytes.Equal(data, jpeg(2, 300)) {
			t.Fatal("WeChat does not have the file's bytes under its media_id")
		}
		if again, err := f.lib.ForFile(ctx, "main", "image", path); err != nil || again != id {
			t.Errorf("a second use: %q %v, want %q", again, err, id)
		}
		if n, err := f.lib.Renew(ctx); err != nil || n != 0 {
			t.Errorf("renewed %d (%v) right after the upload", n, err)
		}
		// 61 hours on, the 3 days are 11 hours from their end: renewed.
		f.clock.advance(61 * time.Hour)
		if n, err := f.lib.Renew(ctx); err != nil || n != 1 {
			t.Fatalf("renewed %d, %v; want the file's 1", n, err)
		}
		renewed, err := f.lib.ForFile(ctx, "main", "image", path)
		if err != nil || renewed == id {
			t.Fatalf("after renewal the file answers %q (%v), the old id was %q", renewed, err, id)
		}
		f.clock.advance(12 * time.Hour) // the first upload is gone at WeChat now
		if _, _, ok := f.sim.Media(appID, id); ok {
			t.Error("the old temporary media is still at WeChat after 3 days")
		}
		if _, _, ok := f.sim.Media(appID, renewed); !ok {
			t.Error("the renewed media expired with the old one")
		}
		// A changed file is uploaded anew when next used.
		if err := os.WriteFile(path, jpeg(3, 400), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, time.Now(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		changed, err := f.lib.ForFile(ctx, "main", "image", path)
		if err != nil || changed == renewed {
			t.Fatalf("the changed file answers %q (%v)", changed, err)
		}
		if data, _, _ := f.sim.Media(appID, changed); !bytes.Equal(data, jpeg(3, 400)) {
			t.Error("WeChat has not the changed bytes")
		}
		list, err := f.lib.List(ctx, "main")
		// The first image, the permanent one, and the file's two versions.
		if err != nil || len(list) != 4 {
			t.Errorf("list: %d items (%v), want 4", len(list), err)
		}
		// Only the file's current version is renewed from now on.
		f.clock.advance(61 * time.Hour)
		if n, err := f.lib.Renew(ctx); err != nil || n != 1 {
			t.Errorf("renewed %d (%v), want the changed file's 1", n, err)
		}
		if err := f.lib.Delete(ctx, "main", perm.MediaID); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := f.sim.Media(appID, perm.MediaID); ok {
			t.Error("a deleted permanent image is still at WeChat")
		}
		if err := f.lib.Delete(ctx, "main", perm.MediaID); problem.CodeOf(err) != "media_not_found" {
			t.Errorf("deleting twice: %v", err)
		}
	})
}

// What WeChat would refuse is refused before any call, naming the rule.
func TestRefusedLocally(t *testing.T) {
	f := setup(t, dbtest.SQLite(t))
	ctx := t.Context()
	for _, c := range []struct {
		typ  string
		data []byte
		code string
	}{
		{"image", []byte("GIF89a" + "x"), ""},
		{"pdf", jpeg(1, 10), "invalid_media_type"},
		{"image", nil, "media_empty"},
		{"image", []byte("plain text"), "media_format_invalid"},
		{"thumb", jpeg(1, 65<<10), "media_too_large"},
		{"thumb", []byte("\x89PNG\r\n\x1a\nxxxx"), "media_format_invalid"},
		{"voice", append([]byte("#!AMR\n"), make([]byte, 2<<20)...), "media_too_large"},
		{"voice", amrOf(61 * 50), "media_too_long"},
		{"voice", amrOf(59 * 50), ""},
		{"video", []byte("\x00\x00\x00\x18ftypmp42"), ""},
	} {
		_, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: c.typ, Name: "f", Data: c.data})
		if got := problem.CodeOf(err); got != c.code {
			t.Errorf("%s of %d bytes: %v, want code %q", c.typ, len(c.data), err, c.code)
		}
	}
	_, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: "thumb", Data: jpeg(1, 65<<10)})
	if e, ok := problem.As(err); !ok || e.Status() != http.StatusRequestEntityTooLarge || !bytes.Contains([]byte(e.Message), []byte("缩略图最大 64.0 KB")) {
		t.Errorf("too large: %v", err)
	}
	if n := f.sim.CallCount(appID, "/cgi-bin/media/upload"); n != 3 {
		t.Errorf("%d uploads reached WeChat, want the 3 valid files", n)
	}
}

// amrOf is an AMR-NB voice of n frames of 20 ms.
func amrOf(n int) []byte {
	return append([]byte("#!AMR\n"), bytes.Repeat(append([]byte{7<<3 | 0x04}, make([]byte, 31)...), n)...)
}

// A follower's image is fetched into the database once; one over the cap
// is refused and not stored.
func TestFetchFollowerMedia(t *testing.T) {
	f := setup(t, dbtest.SQLite(t))
	ctx := t.Context()
	u, err := f.sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.sim.Act(ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionImage})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.lib.Fetch(ctx, "main", res.Sent.MediaID)
	if err != nil || d.ContentType != "image/png" || !bytes.HasPrefix(d.Data, []byte("\x89PNG")) {
		t.Fatalf("fetched %+v %v", d, err)
	}
	if _, err := f.lib.Fetch(ctx, "main", res.Sent.MediaID); err != nil {
		t.Fatal(err)
	}
	if n := f.sim.CallCount(appID, "/cgi-bin/media/get"); n != 1 {
		t.Errorf("%d calls to media/get, want 1: the second fetch reads the database", n)
	}
	big, err := f.lib.Upload(ctx, media.Upload{Account: "main", Type: "image", Name: "big.jpg", Data: jpeg(7, 2<<10)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.lib.Fetch(ctx, "main", big.MediaID); problem.CodeOf(err) != "media_too_large" {
		t.Errorf("over the cap: %v", err)
	}
	if _, err := f.lib.Downloaded(ctx, "main", big.MediaID); problem.CodeOf(err) != "media_not_fetched" {
		t.Errorf("a refused file was stored: %v", err)
	}
	if _, err := f.lib.Fetch(ctx, "main", "no-such-media"); problem.CodeOf(err) != "media_expired" {
		t.Errorf("unknown id: %v", err)
	}
}
