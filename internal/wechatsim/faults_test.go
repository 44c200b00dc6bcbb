package wechatsim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	ip := func() apiAnswer { return b.get(t, "/cgi-bin/getcallbackip", tq(tok)) }

	t.Run("errcode for the next two calls", func(t *testing.T) {
		id, err := b.sim.SetFault(Fault{AppID: testOA, Path: "/cgi-bin/getcallbackip", ErrCode: -1, Times: 2})
		if err != nil {
			t.Fatal(err)
		}
		wantErrcode(t, ip(), -1)
		wantErrcode(t, ip(), -1)
		wantErrcode(t, ip(), 0)
		if !b.sim.RemoveFault(id) {
			t.Fatal("fault not found")
		}
	})
	t.Run("other app untouched", func(t *testing.T) {
		b.sim.SetFault(Fault{AppID: testMP, ErrCode: 45009})
		defer b.sim.ClearFaults()
		wantErrcode(t, ip(), 0)
	})
	t.Run("rate is seeded", func(t *testing.T) {
		b.sim.SetFault(Fault{AppID: testOA, Path: "*", ErrCode: -1, Rate: 0.5})
		defer b.sim.ClearFaults()
		hits := 0
		for range 200 {
			if ip().errcode() == -1 {
				hits++
			}
		}
		if hits < 60 || hits > 140 {
			t.Fatalf("%d of 200 hit at rate 0.5", hits)
		}
	})
	t.Run("latency", func(t *testing.T) {
		b.sim.SetFault(Fault{Path: "/cgi-bin/getcallbackip", Latency: 150 * time.Millisecond})
		defer b.sim.ClearFaults()
		start := time.Now()
		wantErrcode(t, ip(), 0)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("answered after %s", d)
		}
	})
	t.Run("timeout hangs until the client gives up", func(t *testing.T) {
		b.sim.SetFault(Fault{Path: "/cgi-bin/getcallbackip", Timeout: true})
		defer b.sim.ClearFaults()
		client := &http.Client{Timeout: 100 * time.Millisecond}
		_, err := client.Get(b.srv.URL + "/cgi-bin/getcallbackip?access_token=" + url.QueryEscape(tok))
		if err == nil {
			t.Fatal("answered despite the timeout fault")
		}
	})
	t.Run("invalidate tokens", func(t *testing.T) {
		if _, err := b.sim.SetFault(Fault{AppID: testOA, InvalidateTokens: true}); err != nil {
			t.Fatal(err)
		}
		wantErrcode(t, ip(), 40001)
		tok = b.token(t, testOA, testOASecret)
		wantErrcode(t, ip(), 0)
	})
	t.Run("no effect is refused", func(t *testing.T) {
		if _, err := b.sim.SetFault(Fault{AppID: testOA}); ErrorCodeOf(err) != CodeInvalid {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDomainOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	api2 := httptest.NewServer(b.sim.DomainHandler("api2"))
	t.Cleanup(api2.Close)
	tok := b.token(t, testOA, testOASecret)
	get := func(base string) (int64, error) {
		resp, err := http.Get(base + "/cgi-bin/getcallbackip?access_token=" + url.QueryEscape(tok))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return 0, errors.New(resp.Status + ": " + string(body))
		}
		return 0, nil
	}
	b.sim.SetDomainDown("api", true)
	if _, err := get(b.srv.URL); err == nil {
		t.Fatal("api answered while down")
	}
	// Same platform, same token on the backup domain.
	if _, err := get(api2.URL); err != nil {
		t.Fatalf("api2: %v", err)
	}
	// The control API stays up on a down domain and brings it back.
	b.control(t, "POST", "/sim/api/domains/api", map[string]bool{"down": false}, http.StatusOK, nil)
	if _, err := get(b.srv.URL); err != nil {
		t.Fatalf("api back up: %v", err)
	}
	if _, err := b.sim.SetFault(Fault{Domain: "api2", DomainDown: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(api2.URL); err == nil {
		t.Fatal("api2 answered while down")
	}
	b.sim.ClearFaults()
	if _, err := get(api2.URL); err != nil {
		t.Fatalf("api2 after ClearFaults: %v", err)
	}
}

func TestStateFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	clock := newFakeClock()
	cfg := Config{Now: clock.Now, StateFile: path, Apps: []AppConfig{{AppID: testOA, AppSecret: testOASecret, OpenPlatform: testGroup,
		Templates: []TemplateConfig{{ID: tmplVisitor, Title: "t", Content: "{{thing1.DATA}}"}}}}}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	b := &bundle{sim: sim, srv: srv, clock: clock}
	tok := b.token(t, testOA, testOASecret)
	u := b.user(t, testOA, true)
	b.act(t, u.OpenID, Action{Type: ActionText, Content: "记住我"})
	srv.Close()
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}

	sim2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim2.Close() })
	srv2 := httptest.NewServer(sim2.Handler())
	t.Cleanup(srv2.Close)
	b2 := &bundle{sim: sim2, srv: srv2, clock: clock}
	a := b2.get(t, "/cgi-bin/user/info", tq(tok, "openid", u.OpenID))
	if a.int("subscribe") != 1 || a.str("unionid") != u.UnionID {
		t.Fatalf("after reload: %s", a.raw)
	}
	chat, err := sim2.Conversation(testOA, u.OpenID)
	if err != nil || len(chat) != 2 || chat[1].Content != "记住我" {
		t.Fatalf("chat after reload: %+v %v", chat, err)
	}
	// Ids keep growing past the saved ones.
	res, err := sim2.Act(context.Background(), u.OpenID, Action{Type: ActionText, Content: "again"})
	if err != nil || res.Sent.MsgID <= chat[1].MsgID {
		t.Fatalf("msgid after reload: %+v %v", res, err)
	}
}
