package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDemoEndToEnd runs `wxgate demo` on port 0 and uses it the way the README
// tells a newcomer to: a phone follows, sends text and gets the auto-reply in
// its inbox, and the printed curl line works with the printed key.
func TestDemoEndToEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plaintext", "safe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir() // before the Cleanup below, so it is removed after the demo stopped
			ctx, cancel := context.WithCancel(context.Background())
			var out, errOut syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
					"--data", dataDir, "--mode", mode}, Env{Stdout: &out, Stderr: &errOut})
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case code := <-done:
					if code != 0 {
						t.Errorf("demo exited %d: %s", code, errOut.String())
					}
				case <-time.After(20 * time.Second):
					t.Error("demo did not stop")
				}
			})

			curlLine := regexp.MustCompile(`curl -s -H 'Authorization: Bearer (wxg_\w+)' (http://127\.0\.0\.1:\d+)/api/v1/accounts\n`)
			simPage := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/sim/`)
			var key, gateway, sim string
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
				if m := curlLine.FindStringSubmatch(out.String()); m != nil {
					key, gateway = m[1], m[2]
					sim = simPage.FindStringSubmatch(out.String())[1]
					break
				}
			}
			if key == "" {
				t.Fatalf("demo printed no curl line:\n%s\n%s", out.String(), errOut.String())
			}

			// /metrics is on its own loopback listener, not on the gateway's.
			metricsLine := regexp.MustCompile(`metrics \(local only\): +(http://127\.0\.0\.1:\d+/metrics)\n`).FindStringSubmatch(out.String())
			if metricsLine == nil {
				t.Fatalf("demo printed no metrics line:\n%s", out.String())
			}
			if code, body := httpGet(t, metricsLine[1]); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
				t.Errorf("metrics listener: %d", code)
			}
			if code, _ := httpGet(t, gateway+"/metrics"); code != http.StatusNotFound {
				t.Errorf("the gateway's public listener serves /metrics: %d, want 404", code)
			}

			// The curl line works.
			req, _ := http.NewRequest("GET", gateway+"/api/v1/accounts", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			var accounts struct {
				Accounts []struct{ Name, Mode string } `json:"accounts"`
			}
			doJSON(t, req, &accounts)
			if len(accounts.Accounts) == 0 || accounts.Accounts[0].Name != "demo" || accounts.Accounts[0].Mode != mode {
				t.Fatalf("accounts: %+v", accounts)
			}

			// A new phone follows and gets the welcome; then sends text and gets the reply.
			var user struct {
				OpenID string `json:"openid"`
			}
			doJSON(t, postJSON(sim+"/sim/api/users", `{"app_id":"wxd0e1110000000001","follow":true}`), &user)
			if user.OpenID == "" {
				t.Fatal("no openid for the new follower")
			}
			// The WeChat API proxy answers with the simulator's followers.
			proxyReq, _ := http.NewRequest("GET", gateway+"/wechat/demo/cgi-bin/user/get", nil)
			proxyReq.Header.Set("Authorization", "Bearer "+key)
			var followers struct {
				Data struct {
					OpenID []string `json:"openid"`
				} `json:"data"`
			}
			doJSON(t, proxyReq, &followers)
			if !slices.Contains(followers.Data.OpenID, user.OpenID) {
				t.Errorf("/wechat/demo/cgi-bin/user/get = %+v, want %s among the followers", followers, user.OpenID)
			}
			var acted struct {
				Reply *struct {
					Content string `json:"content"`
				} `json:"reply"`
			}
			doJSON(t, postJSON(sim+"/sim/api/users/"+user.OpenID+"/actions", `{"app_id":"wxd0e1110000000001","type":"text","content":"你好 wxgate"}`), &acted)

			var inbox []struct {
				Kind    string `json:"kind"`
				Content string `json:"content"`
			}
			getReq, _ := http.NewRequest("GET", sim+"/sim/api/users/"+user.OpenID+"/inbox?app_id=wxd0e1110000000001", nil)
			doJSON(t, getReq, &inbox)
			var replies []string
			for _, item := range inbox {
				if item.Kind == "reply" {
					replies = append(replies, item.Content)
				}
			}
			if len(replies) != 2 || !strings.Contains(replies[0], "关注") || !strings.Contains(replies[1], "你好 wxgate") {
				t.Fatalf("inbox replies = %q, want the welcome then the auto-reply echoing the text", replies)
			}

			// The demo's menu is on the phone; its scan button is answered.
			var pressed struct {
				Reply *struct {
					Content string `json:"content"`
				} `json:"reply"`
			}
			doJSON(t, postJSON(sim+"/sim/api/users/"+user.OpenID+"/actions", `{"app_id":"wxd0e1110000000001","type":"menu","title":"工具/扫一扫"}`), &pressed)
			if pressed.Reply == nil || !strings.Contains(pressed.Reply.Content, "扫码结果已收到") {
				t.Errorf("pressing 工具/扫一扫: %+v", pressed.Reply)
			}
			// A follower tagged 演示会员 sees the conditional menu and its
			// 会员专享 button; the new follower does not have it.
			var seeded []struct {
				OpenID string `json:"openid"`
			}
			listReq, _ := http.NewRequest("GET", sim+"/sim/api/users?app_id=wxd0e1110000000001", nil)
			doJSON(t, listReq, &seeded)
			pressed.Reply = nil
			doJSON(t, postJSON(sim+"/sim/api/users/"+seeded[0].OpenID+"/actions", `{"app_id":"wxd0e1110000000001","type":"menu","title":"会员专享"}`), &pressed)
			if pressed.Reply == nil || !strings.Contains(pressed.Reply.Content, "会员专享") {
				t.Errorf("a 演示会员 pressing 会员专享: %+v", pressed.Reply)
			}
			if code, body := httpPost(t, sim+"/sim/api/users/"+user.OpenID+"/actions", `{"app_id":"wxd0e1110000000001","type":"menu","title":"会员专享"}`); code != http.StatusNotFound {
				t.Errorf("an untagged follower pressing 会员专享: %d %s", code, body)
			}

			// 图片 is answered with the demo's image, uploaded from its file.
			var imaged struct {
				Reply *struct {
					MsgType string `json:"msgtype"`
					MediaID string `json:"media_id"`
				} `json:"reply"`
			}
			doJSON(t, postJSON(sim+"/sim/api/users/"+user.OpenID+"/actions", `{"app_id":"wxd0e1110000000001","type":"text","content":"图片"}`), &imaged)
			if imaged.Reply == nil || imaged.Reply.MsgType != "image" || imaged.Reply.MediaID == "" {
				t.Fatalf("sending 图片: %+v", imaged.Reply)
			}
			want, err := os.ReadFile(filepath.Join(dataDir, "welcome.png"))
			if err != nil {
				t.Fatal(err)
			}
			if code, body := httpGet(t, sim+"/sim/api/apps/wxd0e1110000000001/media/"+imaged.Reply.MediaID); code != http.StatusOK || body != string(want) {
				t.Errorf("the image reply's media at WeChat: %d, %d bytes; want welcome.png's %d", code, len(body), len(want))
			}

			// The printed mass-send line reaches the tag's two followers and
			// its receipt is recorded.
			massLine := regexp.MustCompile(`curl -s -H 'Authorization: Bearer \S+' (\S+/api/v1/mass) -d '(.+)'\n`).FindStringSubmatch(out.String())
			if massLine == nil {
				t.Fatalf("demo printed no mass line:\n%s", out.String())
			}
			massReq := postJSON(massLine[1], massLine[2])
			massReq.Header.Set("Authorization", "Bearer "+key)
			var massSent struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			}
			doJSON(t, massReq, &massSent)
			if massSent.Status != "sent" {
				t.Fatalf("mass send: %+v", massSent)
			}
			var massed struct {
				Status    string `json:"status"`
				SentCount int    `json:"sent_count"`
			}
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				get, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/mass/%d?account=demo", gateway, massSent.ID), nil)
				get.Header.Set("Authorization", "Bearer "+key)
				doJSON(t, get, &massed)
				if massed.Status == "finished" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no MASSSENDJOBFINISH recorded: %+v", massed)
				}
			}
			if massed.SentCount != 2 {
				t.Errorf("the receipt counts %d sent, want the tag's 2 followers", massed.SentCount)
			}

			// The printed send line delivers a template card to the first follower.
			sendLine := regexp.MustCompile(`-H 'Idempotency-Key: (\S+)' (\S+/api/v1/messages) -d '(.+)'\n`).FindStringSubmatch(out.String())
			if sendLine == nil {
				t.Fatalf("demo printed no send line:\n%s", out.String())
			}
			send := postJSON(sendLine[2], sendLine[3])
			send.Header.Set("Authorization", "Bearer "+key)
			send.Header.Set("Idempotency-Key", sendLine[1])
			var accepted struct {
				ID         string `json:"id"`
				Recipients []struct {
					OpenID string `json:"openid"`
					Status string `json:"status"`
				} `json:"recipients"`
			}
			doJSON(t, send, &accepted)
			if accepted.ID == "" || len(accepted.Recipients) != 1 || accepted.Recipients[0].Status != "queued" {
				t.Fatalf("send answer %+v", accepted)
			}
			var status struct {
				Recipients []struct {
					Status string `json:"status"`
					MsgID  int64  `json:"msgid"`
				} `json:"recipients"`
			}
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				get, _ := http.NewRequest("GET", gateway+"/api/v1/messages/"+accepted.ID, nil)
				get.Header.Set("Authorization", "Bearer "+key)
				doJSON(t, get, &status)
				if len(status.Recipients) == 1 && status.Recipients[0].Status == "delivered" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("message never delivered: %+v", status)
				}
			}
			var cards []struct {
				Kind  string `json:"kind"`
				MsgID int64  `json:"msgid"`
				Text  string `json:"text"`
			}
			cardReq, _ := http.NewRequest("GET", sim+"/sim/api/users/"+accepted.Recipients[0].OpenID+"/inbox?app_id=wxd0e1110000000001", nil)
			doJSON(t, cardReq, &cards)
			found := false
			for _, c := range cards {
				if c.Kind == "template" && c.MsgID == status.Recipients[0].MsgID && strings.Contains(c.Text, "楼盘A") {
					found = true
				}
			}
			if !found {
				t.Fatalf("no template card with msgid %d in the inbox: %+v", status.Recipients[0].MsgID, cards)
			}
		})
	}
}

func postJSON(url, body string) *http.Request {
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func doJSON(t *testing.T, req *http.Request, into any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, raw.String())
	}
	if err := json.Unmarshal(raw.Bytes(), into); err != nil {
		t.Fatalf("%s %s: decode %q: %v", req.Method, req.URL, raw.String(), err)
	}
}

func httpPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(postJSON(url, body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
