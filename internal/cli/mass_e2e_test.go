package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

func jpegFile(fill byte, n int) []byte {
	return append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, bytes.Repeat([]byte{fill}, n)...)
}

// The tour through the whole gateway: an image auto-reply from a
// local file, followers tagged and mass-sent to, the MASSSENDJOBFINISH
// receipt recorded, the month's quota and clientmsgid held, a follower's
// image fetched, and uploads WeChat would refuse refused first.
func TestMediaAndMassThroughTheGateway(t *testing.T) {
	t.Parallel()
	const (
		appID  = "wx0000000000e2emass"
		appSec = "e2e-mass-secret-0123456789abcdef0"
	)
	welcome := filepath.Join(t.TempDir(), "welcome.jpg")
	if err := os.WriteFile(welcome, jpegFile(9, 500), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{AppID: appID, AppSecret: appSec, CallbackURL: gatewayURL + "/wx/main", Token: "masstoken"}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: appSec, Token: "masstoken",
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simURL}, MassSendsPerMonth: 2,
			Replies: []config.ReplyRule{{Match: "keyword", Pattern: "图片", Reply: config.ReplyContent{Type: "image", File: welcome}},
				{Match: "keyword", Pattern: "开盘", Reply: config.ReplyContent{Type: "news", Articles: []config.Article{
					{Title: "本周六开盘", Description: "楼盘A", URL: "https://example.com/open", PicFile: welcome}}}}}}}
	})
	ctx := e.ctx
	var users []string
	for range 3 {
		u, err := e.sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.OpenID)
	}

	// 1. The image reply comes from the local file, uploaded once.
	var replied string
	for i := range 2 {
		res, err := e.sim.Act(ctx, users[0], wechatsim.Action{Type: wechatsim.ActionText, Content: "图片"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reply == nil || res.Reply.MsgType != "image" {
			t.Fatalf("reply %d: %+v", i, res.Reply)
		}
		data, _, ok := e.sim.Media(appID, res.Reply.MediaID)
		if !ok || !bytes.Equal(data, jpegFile(9, 500)) {
			t.Fatalf("the reply's media_id %q is not welcome.jpg at WeChat", res.Reply.MediaID)
		}
		if i == 1 && res.Reply.MediaID != replied {
			t.Errorf("the second reply uses %q, the first %q", res.Reply.MediaID, replied)
		}
		replied = res.Reply.MediaID
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/media/upload"); n != 1 {
		t.Errorf("welcome.jpg was uploaded %d times, want 1", n)
	}

	// A news reply's cover from the same file: an article image, its URL.
	res, err := e.sim.Act(ctx, users[0], wechatsim.Action{Type: wechatsim.ActionText, Content: "开盘"})
	if err != nil || res.Reply == nil || len(res.Reply.Articles) != 1 || !strings.HasPrefix(res.Reply.Articles[0].PicURL, "http://mmbiz.qpic.cn/") {
		t.Fatalf("the news reply: %+v %v", res.Reply, err)
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/media/uploadimg"); n != 1 {
		t.Errorf("the cover was uploaded %d times, want 1 (at start)", n)
	}

	// 2. Tag two followers, preview, then mass-send to the tag.
	status, _, body := e.api("POST", "/api/v1/tags", `{"account":"main","name":"会员"}`)
	if status != http.StatusCreated {
		t.Fatalf("tag: %d %s", status, body)
	}
	var tag struct {
		ID int64 `json:"id"`
	}
	_ = json.Unmarshal(body, &tag)
	if status, _, body = e.api("POST", fmt.Sprintf("/api/v1/tags/%d/members", tag.ID),
		fmt.Sprintf(`{"account":"main","add":[%q,%q]}`, users[0], users[1])); status != http.StatusOK {
		t.Fatalf("tagging: %d %s", status, body)
	}
	if status, _, body = e.api("POST", "/api/v1/mass/preview",
		fmt.Sprintf(`{"account":"main","openid":%q,"message":{"type":"text","text":"预览：周末八折"}}`, users[2])); status != http.StatusOK {
		t.Fatalf("preview: %d %s", status, body)
	}
	send := fmt.Sprintf(`{"account":"main","to":{"tag":%d},"message":{"type":"image","media_id":%q},"client_msg_id":"weekend-1"}`, tag.ID, replied)
	status, _, body = e.api("POST", "/api/v1/mass", send)
	if status != http.StatusAccepted {
		t.Fatalf("mass send: %d %s", status, body)
	}
	var sent struct {
		ID     int64 `json:"id"`
		MsgID  int64 `json:"msg_id"`
		Reused bool  `json:"reused"`
	}
	_ = json.Unmarshal(body, &sent)
	// The same client_msg_id again sends nothing new.
	status, _, body = e.api("POST", "/api/v1/mass", send)
	var again struct {
		ID     int64 `json:"id"`
		Reused bool  `json:"reused"`
	}
	_ = json.Unmarshal(body, &again)
	if status != http.StatusOK || !again.Reused || again.ID != sent.ID {
		t.Errorf("the same client_msg_id again: %d %s", status, body)
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/message/mass/sendall"); n != 1 {
		t.Errorf("%d sendall calls, want 1", n)
	}

	// 3. The receipt.
	var got struct {
		Status       string `json:"status"`
		WeChatStatus string `json:"wechat_status"`
		TotalCount   int    `json:"total_count"`
		SentCount    int    `json:"sent_count"`
		ErrorCount   int    `json:"error_count"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, body = e.api("GET", fmt.Sprintf("/api/v1/mass/%d?account=main", sent.ID), "")
		_ = json.Unmarshal(body, &got)
		if got.Status == "finished" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Status != "finished" || got.WeChatStatus != "send success" || got.TotalCount != 2 || got.SentCount != 2 || got.ErrorCount != 0 {
		t.Errorf("the send after its receipt: %s", body)
	}
	phoneHas := func(openid, kind, mediaID, content string) bool {
		items, err := e.sim.Inbox(appID, openid)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Kind == kind && it.MediaID == mediaID && strings.Contains(it.Content, content) {
				return true
			}
		}
		return false
	}
	if !phoneHas(users[0], wechatsim.ItemMass, replied, "") || !phoneHas(users[1], wechatsim.ItemMass, replied, "") {
		t.Error("a tagged follower's phone lacks the mass image")
	}
	if phoneHas(users[2], wechatsim.ItemMass, replied, "") {
		t.Error("the untagged follower got the mass image")
	}
	if !phoneHas(users[2], wechatsim.ItemMass, "", "预览：周末八折") {
		t.Error("the preview did not reach its follower")
	}

	// 4. The quota (2 a month here) is counted before WeChat is called.
	if status, _, body = e.api("POST", "/api/v1/mass", `{"account":"main","to":{"all":true},"message":{"type":"text","text":"第二次"}}`); status != http.StatusAccepted {
		t.Fatalf("second send: %d %s", status, body)
	}
	status, _, body = e.api("GET", "/api/v1/mass/quota?account=main", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"limit":2,"used":2,"remaining":0`) {
		t.Errorf("quota: %d %s", status, body)
	}
	status, _, body = e.api("POST", "/api/v1/mass", `{"account":"main","to":{"all":true},"message":{"type":"text","text":"第三次"}}`)
	if status != http.StatusTooManyRequests || !strings.Contains(string(body), "mass_quota_exhausted") || !strings.Contains(string(body), "本月群发次数已用完") {
		t.Errorf("over the quota: %d %s", status, body)
	}
	if n := e.sim.CallCount(appID, "/cgi-bin/message/mass/sendall"); n != 2 {
		t.Errorf("%d sendall calls, want 2: the refused one must not reach WeChat", n)
	}
	for _, c := range []struct{ body, code string }{
		{`{"account":"main","to":{},"message":{"type":"text","text":"x"}}`, "invalid_audience"},
		{`{"account":"main","to":{"all":true},"message":{"type":"miniprogram"}}`, "invalid_mass_message"},
		{`{"account":"main","to":{"all":true},"message":{"type":"image","file":"/etc/passwd"}}`, "file_not_allowed"},
	} {
		if status, _, body = e.api("POST", "/api/v1/mass", c.body); status != http.StatusBadRequest || !strings.Contains(string(body), c.code) {
			t.Errorf("%s: %d %s, want 400 %s", c.body, status, body, c.code)
		}
	}
	// An image mass message cannot be deleted at WeChat.
	if status, _, body = e.api("DELETE", fmt.Sprintf("/api/v1/mass/%d?account=main", sent.ID), ""); status != http.StatusConflict {
		t.Errorf("deleting an image mass send: %d %s", status, body)
	}

	// 5. A follower's image is fetched into the database.
	res, err = e.sim.Act(ctx, users[1], wechatsim.Action{Type: wechatsim.ActionImage})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body = e.api("POST", "/api/v1/media/downloads", fmt.Sprintf(`{"account":"main","media_id":%q}`, res.Sent.MediaID)); status != http.StatusOK {
		t.Fatalf("fetch: %d %s", status, body)
	}
	status, header, file := e.api("GET", "/api/v1/media/downloads/"+res.Sent.MediaID+"?account=main", "")
	if status != http.StatusOK || header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(file, []byte("\x89PNG")) {
		t.Errorf("download: %d %s %q", status, header.Get("Content-Type"), file[:min(len(file), 20)])
	}

	// 6. Uploads: one accepted; those WeChat would refuse are refused here,
	// and nothing is stored for them.
	upload := func(typ, name string, data []byte) (int, string) {
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		_ = mw.WriteField("account", "main")
		_ = mw.WriteField("type", typ)
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(data)
		_ = mw.Close()
		req, _ := http.NewRequestWithContext(context.Background(), "POST", e.gatewayURL+"/api/v1/media", &form)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return e.raw(t, req)
	}
	if status, body := upload("thumb", "cover.jpg", jpegFile(1, 1000)); status != http.StatusCreated {
		t.Errorf("thumb upload: %d %s", status, body)
	}
	if status, body := upload("thumb", "big.jpg", jpegFile(1, 70<<10)); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "缩略图最大 64.0 KB") {
		t.Errorf("a 70 KB thumb: %d %s", status, body)
	}
	if status, body := upload("voice", "song.wav", []byte("RIFF....WAVEfmt ")); status != http.StatusBadRequest || !strings.Contains(body, "media_format_invalid") {
		t.Errorf("a WAV voice: %d %s", status, body)
	}
	_, _, body = e.api("GET", "/api/v1/media?account=main", "")
	var listed struct {
		Media []struct {
			Type, Name string
		} `json:"media"`
	}
	_ = json.Unmarshal(body, &listed)
	if len(listed.Media) != 3 { // welcome.jpg as an image and as a news cover, and cover.jpg
		t.Errorf("media listed: %s", body)
	}
}

// raw sends a prepared request with the test's key.
func (e *sendE2E) raw(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
