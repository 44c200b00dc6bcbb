package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/proxy"
)

// BenchmarkUserInfo measures what the proxy adds to one WeChat API call:
// cgi-bin/user/info against the simulator, called directly with the
// broker's token ("direct") and through /wechat/main/ with a proxy key
// ("proxy"), one caller at a time and 64 at once. The difference between
// the two is the proxy's cost: key check, rate limit, token swap, errcode
// inspection and the audit row (SQLite).
//
//	go test -run '^$' -bench BenchmarkUserInfo -benchtime 3s ./internal/proxy
func BenchmarkUserInfo(b *testing.B) {
	e := start(b, dbtest.SQLite(b), proxy.Options{Rate: -1})
	openid := e.follow(b, 1)[0]
	key, _ := e.key(b, auth.ScopeProxy)
	tok, err := e.tokens.Token(context.Background(), "main")
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	targets := []struct {
		name, url, bearer string
	}{
		{"direct", e.upURL + "/cgi-bin/user/info?openid=" + openid + "&access_token=" + tok.Value, ""},
		{"proxy", e.gw.URL + "/wechat/main/cgi-bin/user/info?openid=" + openid, key},
	}
	for _, conc := range []int{1, 64} {
		for _, target := range targets {
			b.Run(fmt.Sprintf("%s/c%d", target.name, conc), func(b *testing.B) {
				call := func() error {
					req, _ := http.NewRequest(http.MethodGet, target.url, nil)
					if target.bearer != "" {
						req.Header.Set("Authorization", "Bearer "+target.bearer)
					}
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || len(body) == 0 || body[0] != '{' {
						return fmt.Errorf("%d %s", resp.StatusCode, body)
					}
					return nil
				}
				b.SetParallelism(max(conc/max(1, runtime.GOMAXPROCS(0)), 1))
				if conc == 1 {
					for b.Loop() {
						if err := call(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
