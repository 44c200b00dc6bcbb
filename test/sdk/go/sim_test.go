package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/util"
)

// The suite's apps, as declared in ../apps.yaml.
const (
	oaAppID     = "wx5d1c0de000000b01"
	mpAppID     = "wx5d1c0de000000b02"
	templateID  = "Vb7nE2qLx9RdTy4sWc1hGkM5pZa8uJ3oF6iN0eQwXr2"
	subscribeID = "Qm8rTu3LpZ0aXc5VbN7sKd2Fg4Hj6Wy9Ee1Ri0To3Yk"
	httpTimeout = 15 * time.Second
)

// The apps' AppSecrets; through the proxy, both are the proxy key.
var (
	oaSecret = "sdk-test-go-oa-secret-not-real"
	mpSecret = "sdk-test-go-mp-secret-not-real"
)

// simURL is the simulator's base URL (WXGATE_SIM_URL), empty when unset.
var simURL string

// Through wxgate's WeChat API proxy (run.sh's second pass):
// WXGATE_PROXY_URL is one account's proxy base (…/wechat/{account}),
// WXGATE_PROXY_APP that account's AppID and WXGATE_PROXY_KEY a key of
// scope proxy, given to the SDK as its AppSecret. The SDK's base URL is a
// process-wide hook, so one run serves one app; the other app's tests skip.
var proxyURL, proxyApp string

// controlClient talks to the simulator's control API.
var controlClient = &http.Client{Timeout: httpTimeout}

func TestMain(m *testing.M) {
	simURL = strings.TrimRight(os.Getenv("WXGATE_SIM_URL"), "/")
	if simURL != "" {
		u, err := url.Parse(simURL)
		if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
			fmt.Fprintf(os.Stderr, "WXGATE_SIM_URL must be an http URL on the loopback interface, got %q\n", simURL)
			os.Exit(2)
		}
		proxyURL, proxyApp = strings.TrimRight(os.Getenv("WXGATE_PROXY_URL"), "/"), os.Getenv("WXGATE_PROXY_APP")
		if proxyURL != "" {
			key := os.Getenv("WXGATE_PROXY_KEY")
			if key == "" || proxyApp == "" {
				fmt.Fprintln(os.Stderr, "WXGATE_PROXY_URL needs WXGATE_PROXY_KEY and WXGATE_PROXY_APP")
				os.Exit(2)
			}
			oaSecret, mpSecret = key, key
		}
		// The SDK's base URL: every API URL it builds goes through this hook.
		util.SetURIModifier(toSim)
		util.DefaultHTTPClient = &http.Client{Timeout: httpTimeout}
	}
	os.Exit(m.Run())
}

// toSim rewrites WeChat's hosts, as the SDK writes them, to the simulator;
// api.weixin.qq.com to the proxy in the proxy pass (mp.weixin.qq.com's
// showqrcode needs no token and stays on the simulator).
func toSim(uri string) string {
	if proxyURL != "" && strings.HasPrefix(uri, "https://api.weixin.qq.com/") {
		return proxyURL + strings.TrimPrefix(uri, "https://api.weixin.qq.com")
	}
	for _, host := range []string{"https://api.weixin.qq.com", "https://mp.weixin.qq.com"} {
		if strings.HasPrefix(uri, host+"/") {
			return simURL + strings.TrimPrefix(uri, host)
		}
	}
	return uri
}

// needSim skips a test when no simulator was given.
func needSim(t *testing.T) {
	t.Helper()
	if simURL == "" {
		t.Skip("WXGATE_SIM_URL is not set: run test/sdk/run.sh, or start `wxgate sim --apps test/sdk/apps.yaml` and export WXGATE_SIM_URL=http://ADDR")
	}
}

// needAPI skips a test of app appID's API when it cannot run: no
// simulator, or a proxy pass for the other app.
func needAPI(t *testing.T, appID string) {
	t.Helper()
	needSim(t)
	if proxyURL != "" && proxyApp != appID {
		t.Skipf("this proxy pass serves app %s; the test of %s runs in its own pass", proxyApp, appID)
	}
}

// newCache is the SDK's in-memory token cache (no redis needed).
func newCache() cache.Cache { return cache.NewMemory() }

// simUser is a simulated user as the control API shows it.
type simUser struct {
	AppID     string `json:"app_id"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid"`
	Subscribe bool   `json:"subscribe"`
}

type inboxItem struct {
	Kind       string            `json:"kind"`
	MsgType    string            `json:"msgtype"`
	Content    string            `json:"content"`
	Title      string            `json:"title"`
	URL        string            `json:"url"`
	TemplateID string            `json:"template_id"`
	Data       map[string]string `json:"data"`
	Text       string            `json:"text"`
	MsgID      int64             `json:"msgid"`
	Status     string            `json:"status"`
	Page       string            `json:"page"`
	Articles   []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"articles"`
}

type delivery struct {
	Mode     string `json:"mode"`
	URL      string `json:"url"`
	Status   int    `json:"status"`
	Response string `json:"response"`
	Outcome  string `json:"outcome"`
	Error    string `json:"error"`
}

type actionResult struct {
	User     *simUser   `json:"user"`
	Delivery *delivery  `json:"delivery"`
	Reply    *inboxItem `json:"reply"`
	Code     string     `json:"code"`
}

type userResult struct {
	simUser
	Delivery *delivery  `json:"delivery"`
	Reply    *inboxItem `json:"reply"`
}

// control calls the control API and decodes its JSON answer into out.
func control(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, simURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := controlClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s → HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

func createUser(t *testing.T, appID string, follow bool) userResult {
	t.Helper()
	var u userResult
	control(t, "POST", "/sim/api/users", map[string]any{"app_id": appID, "follow": follow}, &u)
	return u
}

func act(t *testing.T, appID, openID string, action map[string]any) actionResult {
	t.Helper()
	body := map[string]any{"app_id": appID}
	for k, v := range action {
		body[k] = v
	}
	var res actionResult
	control(t, "POST", "/sim/api/users/"+url.PathEscape(openID)+"/actions", body, &res)
	return res
}

func inbox(t *testing.T, appID, openID string) []inboxItem {
	t.Helper()
	var items []inboxItem
	control(t, "GET", "/sim/api/users/"+url.PathEscape(openID)+"/inbox?app_id="+url.QueryEscape(appID), nil, &items)
	return items
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
