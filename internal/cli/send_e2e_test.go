package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/webhook"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// The real-estate flow end to end, through the real gateway (queue,
// callback, API) against the simulator: a salesperson's phone binds by QR
// code; a send to the external id arrives as the rendered card in that
// phone's inbox; the receipt turns it delivered; the webhooks fire. A
// blocked follower ends blocked, an unfollowed one is skipped, and an
// Idempotency-Key replay sends nothing.
func TestSendEndToEnd(t *testing.T) {
	t.Parallel()
	const (
		appID    = "wx0000000000e2e001"
		appSec   = "e2e-secret-0123456789abcdef012345"
		tplVisit = "Tm-NewVisitor-0000000000000000000000000001"
	)
	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{
			AppID: appID, AppSecret: appSec, Kind: wechatsim.KindOfficialAccount, CallbackURL: gatewayURL + "/wx/main", Token: "e2etoken",
			Templates: []wechatsim.TemplateConfig{{ID: tplVisit, Title: "新客户访问提醒",
				Content: "客户：{{thing1.DATA}}\n访问页面：{{thing2.DATA}}\n访问时间：{{time3.DATA}}"}},
		}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "main", Kind: config.KindOfficialAccount, AppID: appID, AppSecret: appSec, Token: "e2etoken",
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simURL}, TokenMode: config.TokenModeStable}}
	})
	sim, api, ctx := e.sim, e.api, e.ctx
	must := func(status int, want int, body []byte) {
		t.Helper()
		if status != want {
			t.Fatalf("status %d, want %d: %s", status, want, body)
		}
	}

	// The business's webhook receiver, checking signatures.
	var (
		mu     sync.Mutex
		events []map[string]any
		secret string
	)
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		events = append(events, e)
	}))
	t.Cleanup(hooks.Close)
	status, _, body := api("POST", "/api/v1/webhooks", `{"url":"`+hooks.URL+`","events":["*"]}`)
	must(status, http.StatusCreated, body)
	var ep struct {
		Secret string `json:"secret"`
	}
	_ = json.Unmarshal(body, &ep)
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()
	eventsOf := func(typ string) []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		var out []map[string]any
		for _, e := range events {
			if e["type"] == typ {
				out = append(out, e)
			}
		}
		return out
	}

	// Templates and the alias.
	status, _, body = api("POST", "/api/v1/templates/sync", `{"account":"main"}`)
	must(status, http.StatusOK, body)
	status, _, body = api("PUT", "/api/v1/templates/aliases/main/new_visitor",
		`{"template_id":"`+tplVisit+`","fields":{"customer":"thing1","page":"thing2","time":"time3"},"miniprogram":{"appid":"wxmp0000000000001","pagepath":"pages/lead?id=1"}}`)
	must(status, http.StatusOK, body)
	status, _, body = api("POST", "/api/v1/templates/preview", `{"account":"main","template":"new_visitor","data":{"customer":"张三","page":"楼盘A","time":"10:00~11:00"}}`)
	must(status, http.StatusOK, body)
	if !strings.Contains(string(body), `客户：张三\n访问页面：楼盘A\n访问时间：10:00~11:00`) {
		t.Errorf("preview: %s", body)
	}
	status, _, body = api("POST", "/api/v1/messages", `{"account":"main","to":{"openids":["o1"]},"template":"new_visitor","data":{"customer":"张三","page":"楼盘A","time":"soon"}}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"code":"invalid_value"`) || !strings.Contains(string(body), "data.time") {
		t.Errorf("invalid time: %d %s", status, body)
	}

	// The salesperson follows and binds by scanning the QR code of S-1024.
	sales, err := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Name: "销售 S-1024", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	status, _, body = api("POST", "/api/v1/bindings/qrcode", `{"account":"main","external_id":"S-1024"}`)
	must(status, http.StatusCreated, body)
	var qr struct {
		Ticket string `json:"ticket"`
	}
	_ = json.Unmarshal(body, &qr)
	if _, err := sim.Act(ctx, sales.OpenID, wechatsim.Action{Type: wechatsim.ActionScan, Ticket: qr.Ticket}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "binding.completed webhook", func() bool { return len(eventsOf("binding.completed")) == 1 })
	if _, err := sim.Act(ctx, sales.OpenID, wechatsim.Action{Type: wechatsim.ActionText, Content: "收到"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "follower.subscribed and message.received webhooks", func() bool {
		got := eventsOf("message.received")
		return len(eventsOf("follower.subscribed")) == 1 && len(got) == 1 && got[0]["data"].(map[string]any)["content"] == "收到"
	})

	// A customer opens the mini program through the salesperson's share:
	// the business notifies S-1024.
	send := `{"account":"main","to":{"external_ids":["S-1024","S-9"]},"template":"new_visitor",
	  "data":{"customer":"张三","page":"楼盘A 3室2厅","time":"2026-11-24 10:00"}}`
	status, _, first := api("POST", "/api/v1/messages", send, "Idempotency-Key", "visit-8812")
	must(status, http.StatusAccepted, first)
	var accepted struct {
		ID         string `json:"id"`
		Recipients []struct {
			ExternalID, OpenID, Status, Reason string
		} `json:"recipients"`
	}
	if err := json.Unmarshal(first, &accepted); err != nil {
		t.Fatal(err)
	}
	if len(accepted.Recipients) != 2 || accepted.Recipients[0].OpenID != sales.OpenID || accepted.Recipients[0].Status != "queued" ||
		accepted.Recipients[1].Status != "skipped" || accepted.Recipients[1].Reason != "not_bound" {
		t.Fatalf("202 body: %s", first)
	}
	waitStatus(t, api, accepted.ID, "delivered", "skipped")
	items, _ := sim.Inbox(appID, sales.OpenID)
	var cards []wechatsim.InboxItem
	for _, it := range items {
		if it.Kind == wechatsim.ItemTemplate {
			cards = append(cards, it)
		}
	}
	if len(cards) != 1 || cards[0].Text != "客户：张三\n访问页面：楼盘A 3室2厅\n访问时间：2026-11-24 10:00" ||
		cards[0].MiniProgram == nil || cards[0].MiniProgram.PagePath != "pages/lead?id=1" {
		t.Errorf("the salesperson's cards: %+v", cards)
	}
	waitFor(t, "message webhooks", func() bool {
		return len(eventsOf("message.sent")) == 1 && len(eventsOf("message.delivered")) == 1
	})
	delivered := eventsOf("message.delivered")[0]["data"].(map[string]any)
	if delivered["message_id"] != accepted.ID || delivered["recipient"].(map[string]any)["external_id"] != "S-1024" {
		t.Errorf("message.delivered data: %v", delivered)
	}

	// The same Idempotency-Key: the first answer, nothing sent.
	calls := sim.CallCount(appID, "/cgi-bin/message/template/send")
	status, h, again := api("POST", "/api/v1/messages", send, "Idempotency-Key", "visit-8812")
	must(status, http.StatusAccepted, again)
	if !bytes.Equal(again, first) || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %s (header %q), want %s", again, h.Get("Idempotent-Replayed"), first)
	}
	time.Sleep(300 * time.Millisecond)
	if n := sim.CallCount(appID, "/cgi-bin/message/template/send"); n != calls {
		t.Errorf("the replay sent %d more", n-calls)
	}

	// A follower who blocked the account's messages ends blocked; one who
	// unfollowed is skipped.
	blocker, _ := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	leaver, _ := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if _, err := sim.Act(ctx, blocker.OpenID, wechatsim.Action{Type: wechatsim.ActionBlockTemplates}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Act(ctx, leaver.OpenID, wechatsim.Action{Type: wechatsim.ActionUnsubscribe}); err != nil {
		t.Fatal(err)
	}
	status, _, body = api("POST", "/api/v1/messages", `{"account":"main","to":{"openids":["`+blocker.OpenID+`","`+leaver.OpenID+`"]},
	  "template":"new_visitor","data":{"customer":"李四","page":"楼盘B","time":"2026-11-24 11:00"}}`)
	must(status, http.StatusAccepted, body)
	_ = json.Unmarshal(body, &accepted)
	if accepted.Recipients[1].Status != "skipped" || accepted.Recipients[1].Reason != "not_subscribed" {
		t.Errorf("the unfollowed recipient: %s", body)
	}
	waitFor(t, "follower.unsubscribed webhook", func() bool {
		got := eventsOf("follower.unsubscribed")
		return len(got) == 1 && got[0]["data"].(map[string]any)["openid"] == leaver.OpenID
	})
	m := waitStatus(t, api, accepted.ID, "blocked", "skipped")
	if m.Recipients[0].Reason != "user_block" {
		t.Errorf("blocked recipient: %+v", m.Recipients[0])
	}
	status, _, body = api("GET", "/api/v1/messages?account=main&status=blocked", "")
	must(status, http.StatusOK, body)
	if !strings.Contains(string(body), accepted.ID) || strings.Count(string(body), `"id"`) != 1 {
		t.Errorf("list of blocked messages: %s", body)
	}

	// wxgate send, beside the running gateway: preview, then send and wait.
	cfgFile := filepath.Join(e.dir, "wxgate.yaml")
	yaml := "database_url: " + e.databaseURL + "\naccounts:\n  - name: main\n    app_id: " + appID + "\n    app_secret: " + appSec +
		"\n    token: e2etoken\n    message_mode: plaintext\n    api_base_urls: [" + e.simURL + "]\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (int, string, string) {
		var out, errOut syncBuffer
		n := 1
		if args[0] == "templates" {
			n = 2 // templates SUBCOMMAND --config …
		}
		full := append(append(append([]string{}, args[:n]...), "--config", cfgFile), args[n:]...)
		code := Run(ctx, full, Env{Stdout: &out, Stderr: &errOut})
		return code, out.String(), errOut.String()
	}
	code, out, errOut := cli("send", "--account", "main", "--template", "new_visitor", "--preview",
		"--data", "customer=王五", "--data", "page=楼盘C", "--data", "time=2026-11-25 09:00")
	if code != 0 || out != "新客户访问提醒\n客户：王五\n访问页面：楼盘C\n访问时间：2026-11-25 09:00\n" {
		t.Errorf("send --preview: %d %q %s", code, out, errOut)
	}
	code, out, errOut = cli("send", "--account", "main", "--to", "external:S-1024", "--template", "new_visitor",
		"--data", "customer=王五", "--data", "page=楼盘C", "--data", "time=2026-11-25 09:00", "--wait", "20s")
	if code != 0 || !strings.Contains(out, "external:S-1024") || !strings.Contains(out, "delivered") {
		t.Errorf("send --wait: %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = cli("send", "--account", "main", "--to", "external:S-1024", "--template", "new_visitor", "--data", "customer=王五")
	if code == 0 || !strings.Contains(errOut, "data.page") {
		t.Errorf("send with a missing field: %d %s", code, errOut)
	}
	// A customer-service image from a local file, to a follower who wrote.
	writer, _ := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: appID, Follow: true})
	if _, err := sim.Act(ctx, writer.OpenID, wechatsim.Action{Type: wechatsim.ActionText, Content: "有海报吗"}); err != nil {
		t.Fatal(err)
	}
	poster := filepath.Join(e.dir, "poster.jpg")
	if err := os.WriteFile(poster, append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 300)...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli("send", "--account", "main", "--to", "openid:"+writer.OpenID, "--image", poster, "--wait", "20s")
	if code != 0 || !strings.Contains(out, "delivered") {
		t.Errorf("send --image: %d\n%s\n%s", code, out, errOut)
	}
	if chat, _ := sim.Conversation(appID, writer.OpenID); len(chat) == 0 || chat[len(chat)-1].MsgType != "image" || chat[len(chat)-1].MediaID == "" {
		t.Errorf("the follower's chat after send --image: %+v", chat)
	}
	code, out, errOut = cli("templates", "list", "--account", "main")
	if code != 0 || !strings.Contains(out, tplVisit) || !strings.Contains(out, "new_visitor") {
		t.Errorf("templates list: %d %s %s", code, out, errOut)
	}
}

// sendE2E is the real gateway (`startGateway`, SQLite in a temporary
// directory) in front of a simulator, and an API caller with a key of
// every scope.
type sendE2E struct {
	sim         *wechatsim.Simulator
	gatewayURL  string
	simURL      string
	databaseURL string
	dir         string // the gateway's data directory
	ctx         context.Context
	api         func(method, path, body string, header ...string) (int, http.Header, []byte)
	key         string
}

func startSendE2E(t *testing.T, apps func(gatewayURL string) []wechatsim.AppConfig, accounts func(simURL string) []config.Account, configure ...func(*config.Config)) *sendE2E {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gatewayURL := "http://" + ln.Addr().String()
	sim, err := wechatsim.New(wechatsim.Config{JobFinishDelay: 100 * time.Millisecond, Apps: apps(gatewayURL)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	cfg := config.Default()
	cfg.Listen = ln.Addr().String()
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.PublicURL = gatewayURL
	dir := t.TempDir()
	cfg.DatabaseURL = "sqlite://" + filepath.ToSlash(filepath.Join(dir, "wxgate.db"))
	cfg.Accounts = accounts(simSrv.URL)
	for _, f := range configure {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := startGateway(ctx, cfg, discardLogger(), gatewayOptions{listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := gw.Wait(); err != nil {
			t.Errorf("gateway stopped with %v", err)
		}
	})
	key, _, err := auth.NewStore(gw.db, time.Now).Create(ctx, "e2e", auth.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	api := func(method, path, body string, header ...string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, gatewayURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	return &sendE2E{sim: sim, gatewayURL: gatewayURL, simURL: simSrv.URL, databaseURL: cfg.DatabaseURL, dir: dir, ctx: ctx, api: api, key: key}
}

type e2eMessage struct {
	ID         string `json:"id"`
	Done       bool   `json:"done"`
	Recipients []struct {
		OpenID string `json:"openid"`
		Status string `json:"status"`
		Reason string `json:"reason"`
		MsgID  int64  `json:"msgid"`
	} `json:"recipients"`
}

// waitStatus polls GET /api/v1/messages/{id} until its recipients have
// the statuses given, in order (the last one repeats).
func waitStatus(t *testing.T, api func(string, string, string, ...string) (int, http.Header, []byte), id string, want ...string) e2eMessage {
	t.Helper()
	var m e2eMessage
	waitFor(t, "message "+id+" "+strings.Join(want, ","), func() bool {
		status, _, body := api("GET", "/api/v1/messages/"+id, "")
		if status != http.StatusOK {
			t.Fatalf("GET message: %d %s", status, body)
		}
		m = e2eMessage{}
		_ = json.Unmarshal(body, &m)
		if !m.Done {
			return false
		}
		for i, r := range m.Recipients {
			w := want[min(i, len(want)-1)]
			if r.Status != w {
				return false
			}
		}
		return true
	})
	return m
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A mini program whose message push uses the JSON data format in safe
// mode, end to end: the phone accepts the subscription popup (the grant
// arrives as an encrypted JSON push), a subscription message is sent to
// it, and WeChat's subscribe_msg_sent_event receipt, also JSON, turns the
// recipient delivered.
func TestMiniProgramJSONReceiptEndToEnd(t *testing.T) {
	t.Parallel()
	const (
		mpID    = "wx0000000000e2emp1"
		mpSec   = "e2e-mp-secret-0123456789abcdef0123"
		mpKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
		tplShip = "Sb-Shipped-000000000000000000000000000001"
	)
	e := startSendE2E(t, func(gatewayURL string) []wechatsim.AppConfig {
		return []wechatsim.AppConfig{{
			AppID: mpID, AppSecret: mpSec, Kind: wechatsim.KindMiniProgram, CallbackURL: gatewayURL + "/wx/shop", Token: "mptoken",
			EncodingAESKey: mpKey, Mode: wechatsim.ModeSafe, DataFormat: wechatsim.DataFormatJSON,
			Templates: []wechatsim.TemplateConfig{{ID: tplShip, Title: "订单发货", Content: "订单号：{{character_string1.DATA}}\n商品：{{thing2.DATA}}"}},
		}}
	}, func(simURL string) []config.Account {
		return []config.Account{{Name: "shop", Kind: config.KindMiniProgram, AppID: mpID, AppSecret: mpSec, Token: "mptoken",
			EncodingAESKey: mpKey, MessageMode: config.ModeSafe, APIBaseURLs: []string{simURL}}}
	})
	buyer, err := e.sim.CreateUser(e.ctx, wechatsim.CreateUserRequest{AppID: mpID, Name: "买家"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.sim.Act(e.ctx, buyer.OpenID, wechatsim.Action{Type: wechatsim.ActionSubscribePopup, TemplateIDs: []string{tplShip}})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Delivery; d == nil || d.Outcome != wechatsim.OutcomeNoReply || !strings.HasPrefix(d.Body, `{"ToUserName":`) {
		t.Fatalf("the popup push: %+v", d)
	}

	status, _, body := e.api("POST", "/api/v1/templates/sync", `{"account":"shop"}`)
	if status != http.StatusOK {
		t.Fatalf("templates sync: %d %s", status, body)
	}
	send := `{"account":"shop","channel":"mp_subscribe","to":{"openids":["` + buyer.OpenID + `"]},"template":"` + tplShip + `",
	  "data":{"character_string1":"8812","thing2":"咖啡豆"},"page":"pages/order?id=8812"}`
	status, _, body = e.api("POST", "/api/v1/messages", send)
	if status != http.StatusAccepted {
		t.Fatalf("send: %d %s", status, body)
	}
	var accepted struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &accepted)
	m := waitStatus(t, e.api, accepted.ID, "delivered")
	deliveries := e.sim.Deliveries(mpID, buyer.OpenID)
	var receipt *wechatsim.Delivery
	for i := range deliveries {
		if deliveries[i].Event == "subscribe_msg_sent_event" {
			receipt = &deliveries[i]
		}
	}
	if receipt == nil || receipt.Outcome != wechatsim.OutcomeNoReply || !strings.Contains(receipt.XML, fmt.Sprintf(`"MsgID":%d`, m.Recipients[0].MsgID)) {
		t.Errorf("the receipt push (msgid %d): %+v", m.Recipients[0].MsgID, receipt)
	}
}
