package api_test

// End-to-end tests of followers, persons and bindings: the real server
// and API on port 0, the queue delivering webhooks, and the simulator as
// WeChat and the phones.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	qrreader "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/api"
	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/db/dbtest"
	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/mass"
	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/msglog"
	"github.com/wxgate/wxgate/internal/push"
	"github.com/wxgate/wxgate/internal/queue"
	"github.com/wxgate/wxgate/internal/schedule"
	"github.com/wxgate/wxgate/internal/server/servertest"
	"github.com/wxgate/wxgate/internal/token"
	"github.com/wxgate/wxgate/internal/webhook"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

const (
	e2eOA        = "wx00000000000b1d01"
	e2eMP        = "wx00000000000b1d02"
	e2eSoloMP    = "wx00000000000b1d03"
	e2eSecret    = "bind-secret-0123456789abcdef0123"
	e2eToken     = "bindtoken"
	e2eGroup     = "open-platform-b1d"
	e2eSoloSuite = "solo"
)

// retrySoon retries failed jobs after a short fixed delay.
type retrySoon struct{}

func (retrySoon) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(20 * time.Millisecond) }

// hooked is a received webhook delivery.
type hooked struct {
	header http.Header
	body   []byte
}

type e2e struct {
	sim      *wechatsim.Simulator
	url      string // the gateway
	key      string // an API key with every scope
	d        *db.DB
	offset   atomic.Int64 // seconds the gateway's clock is ahead of the simulator's
	tokens   *token.Registry
	hookURL  string
	hooks    chan hooked
	hookFail atomic.Int32  // answer 500 to this many deliveries first
	logs     *lockedBuffer // everything logged, at debug level
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (e *e2e) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load()) * time.Second) }

func startE2E(t *testing.T, d *db.DB, binding config.BindingConfig) *e2e {
	t.Helper()
	e := &e2e{d: d, hooks: make(chan hooked, 16), logs: &lockedBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if e.hookFail.Add(-1) >= 0 {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		e.hooks <- hooked{header: r.Header.Clone(), body: body}
	}))
	t.Cleanup(receiver.Close)
	e.hookURL = receiver.URL + "/hooks/wxgate"

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	sim, err := wechatsim.New(wechatsim.Config{Apps: []wechatsim.AppConfig{
		{AppID: e2eOA, AppSecret: e2eSecret, OpenPlatform: e2eGroup, CallbackURL: e.url + "/wx/main", Token: e2eToken,
			Templates: []wechatsim.TemplateConfig{{ID: "TPL-R", Title: "到货通知", Content: "商品：{{thing1.DATA}}", Kind: "template"}}},
		{AppID: e2eMP, AppSecret: e2eSecret, Kind: wechatsim.KindMiniProgram, OpenPlatform: e2eGroup},
		{AppID: e2eSoloMP, AppSecret: e2eSecret, Kind: wechatsim.KindMiniProgram},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e.sim = sim
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	cfg := config.Default()
	cfg.Accounts = []config.Account{
		{Name: "main", Kind: config.KindOfficialAccount, AppID: e2eOA, AppSecret: e2eSecret, Token: e2eToken,
			MessageMode: config.ModePlaintext, APIBaseURLs: []string{simSrv.URL}, Binding: binding},
		{Name: "shop-mp", Kind: config.KindMiniProgram, AppID: e2eMP, AppSecret: e2eSecret, APIBaseURLs: []string{simSrv.URL}},
		{Name: "solo-mp", Kind: config.KindMiniProgram, AppID: e2eSoloMP, AppSecret: e2eSecret, APIBaseURLs: []string{simSrv.URL}},
	}
	e.tokens = token.NewRegistry(d, token.Options{Now: e.now, Logger: logger})
	for _, a := range cfg.Accounts {
		if _, err := e.tokens.AddAccount(a, token.AccountOptions{HTTPClient: &http.Client{Timeout: 10 * time.Second}}); err != nil {
			t.Fatal(err)
		}
	}

	hooks := webhook.NewStore(d, e.now)
	workers := river.NewWorkers()
	river.AddWorker(workers, webhook.NewWorker(webhook.NewSender(hooks, nil, nil)).WithBackoff(func(int) time.Duration { return 20 * time.Millisecond }))
	river.AddWorker(workers, follower.NewSyncWorker(follower.NewSyncer(d, e.now, nil), e.tokens, nil))
	q, err := queue.New(ctx, d, queue.Options{Workers: workers, PollInterval: 50 * time.Millisecond, RetryPolicy: retrySoon{},
		Queues: map[string]int{queue.DefaultQueue: 2, follower.Queue: 2, push.Queue: 2}})
	if err != nil {
		t.Fatal(err)
	}
	followers := follower.NewStore(d, e.now)
	events := webhook.NewPublisher(hooks, q)
	// Push and schedules too, so that every /api/v1 route answers for real
	// (TestOpenAPIExamples); their workers join before the queue starts.
	pusher, err := push.New(push.Options{DB: d, Accounts: cfg.Accounts, Clients: e.tokens, Jobs: q, Resolver: followers,
		Windows: msglog.NewWindows(d), Events: events, Logger: logger, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	river.AddWorker(workers, pusher.Worker())
	scheduler := schedule.New(schedule.Options{DB: d, Accounts: cfg.Accounts, Push: pusher, Jobs: q, Bindings: followers,
		Logger: logger, Now: e.now})
	scheduler.Register(workers)
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(stop)
	})
	binder := follower.NewBinder(follower.BinderOptions{Store: followers, Accounts: cfg.Accounts, Clients: e.tokens,
		Events: events, Now: e.now, Logger: logger})

	keys := auth.NewStore(d, nil)
	messages := msglog.NewStore(d, msglog.Options{Now: e.now})
	library := media.New(media.Options{DB: d, Clients: e.tokens, Now: e.now, Logger: logger})
	srv, err := servertest.New(servertest.Options{Config: cfg, DB: d, Now: e.now, Responder: binder.Respond, Logger: logger,
		Messages: messages, Followers: followers,
		Routes: map[string]http.Handler{"/api/v1/": api.New(api.Options{Accounts: cfg.Accounts, Tokens: e.tokens, Auth: keys, Now: e.now, Logger: logger,
			Followers: followers, Binder: binder, Messages: messages, Webhooks: hooks, Push: pusher, Schedules: scheduler,
			WebhookEvents: events, Audit: api.NewAuditStore(d), Tags: follower.NewTags(followers, e.tokens), Clients: e.tokens,
			Deliveries: pusher, Windows: msglog.NewWindows(d),
			Media: library, Mass: mass.New(mass.Options{DB: d, Accounts: cfg.Accounts, Clients: e.tokens, Files: library, Now: e.now, Logger: logger}),
			Syncs: follower.NewSyncJobs(q, follower.NewSyncer(d, e.now, nil))})}})
	if err != nil {
		t.Fatal(err)
	}
	if e.key, _, err = keys.Create(ctx, "e2e", auth.AllScopes); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, ln)
		done <- errors.Join(err, srv.Close())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return e
}

// call makes an API request; key "" sends none.
func (e *e2e) call(t *testing.T, method, path, key string, body any) (int, map[string]any, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = e.url + path
	}
	req, _ := http.NewRequest(method, target, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, raw
}

func (e *e2e) must(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	status, out, raw := e.call(t, method, path, e.key, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, raw, want)
	}
	return out
}

// user creates a simulated user of an app.
func (e *e2e) user(t *testing.T, appID, unionid string, follow bool) string {
	t.Helper()
	u, err := e.sim.CreateUser(t.Context(), wechatsim.CreateUserRequest{AppID: appID, UnionID: unionid, Follow: follow})
	if err != nil {
		t.Fatal(err)
	}
	return u.OpenID
}

// scan makes a phone scan a QR code (by the text it encodes) and returns
// what the phone shows.
func (e *e2e) scan(t *testing.T, openid, qrURL string) string {
	t.Helper()
	res, err := e.sim.Act(t.Context(), openid, wechatsim.Action{Type: wechatsim.ActionScan, URL: qrURL})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply == nil {
		t.Fatalf("the scan by %s got no reply (delivery %+v)", openid, res.Delivery)
	}
	return res.Reply.Content
}

func (e *e2e) waitHook(t *testing.T) hooked {
	t.Helper()
	select {
	case h := <-e.hooks:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook received")
	}
	return hooked{}
}

func (e *e2e) noHook(t *testing.T) {
	t.Helper()
	select {
	case h := <-e.hooks:
		t.Errorf("unexpected webhook %s", h.body)
	case <-time.After(300 * time.Millisecond):
	}
}

// decodeQR reads the text of a PNG QR code.
func decodeQR(t *testing.T, pngData []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrreader.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		// gozxing's finder-pattern detector misreads about 1 in 300 clean
		// codes; a generated image is a pure barcode, which it reads exactly.
		pure := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
		res, err = qrreader.NewQRCodeReader().Decode(bmp, pure)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res.GetText()
}

func str(m map[string]any, keys ...string) string {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func list(m map[string]any, key string) []map[string]any {
	raw, _ := m[key].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, item := range raw {
		mm, _ := item.(map[string]any)
		out = append(out, mm)
	}
	return out
}

// A phone scans a binding QR code: the binding is recorded, the phone gets
// the confirmation as the reply to its push, the business gets a signed
// binding.completed webhook (retried until it answers 2xx), and the page
// polling the code sees it completed. A used or expired code binds nothing
// and says why, to the phone and to the poll.
func TestBindingByQRCode(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})

	hook := e.must(t, "POST", "/api/v1/webhooks", map[string]any{"url": e.hookURL, "events": []string{"binding.completed"}}, 201)
	secret := str(hook, "secret")
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("webhook = %v", hook)
	}
	if _, listed, _ := e.call(t, "GET", "/api/v1/webhooks", e.key, nil); strings.Contains(fmt.Sprint(listed), secret) {
		t.Error("the webhook list shows the secret")
	}

	qr := e.must(t, "POST", "/api/v1/bindings/qrcode", map[string]any{"account": "main", "external_id": "S-1024", "expires_in": 600}, 201)
	ticket, qrURL, pollURL := str(qr, "ticket"), str(qr, "url"), str(qr, "poll_url")
	if ticket == "" || qrURL == "" || str(qr, "expires_in") != "600" || str(qr, "expires_at") == "" || !strings.Contains(str(qr, "image_url"), "showqrcode?ticket=") {
		t.Fatalf("qrcode answer = %v", qr)
	}
	if strings.Contains(fmt.Sprint(qr), "S-1024\"") || strings.Contains(qrURL, "S-1024") {
		t.Error("the external id leaks into the QR code")
	}
	pngData, err := base64.StdEncoding.DecodeString(str(qr, "png_base64"))
	if err != nil || decodeQR(t, pngData) != qrURL {
		t.Errorf("the embedded PNG does not encode %s (%v)", qrURL, err)
	}
	codes := e.sim.QRCodes(e2eOA)
	if len(codes) != 1 || !strings.HasPrefix(codes[0].Scene, follower.BindScenePrefix) || codes[0].Action != "QR_STR_SCENE" {
		t.Fatalf("QR codes at WeChat: %+v", codes)
	}

	// The page polls without an API key; a wrong poll token is refused.
	if _, st, raw := e.call(t, "GET", pollURL, "", nil); str(st, "status") != follower.QRPending {
		t.Errorf("poll before the scan: %s", raw)
	}
	if status, _, _ := e.call(t, "GET", strings.Split(pollURL, "?")[0]+"?poll_token=wrong", "", nil); status != 401 {
		t.Errorf("a wrong poll token: %d", status)
	}
	if status, _, _ := e.call(t, "GET", strings.Split(pollURL, "?")[0], "", nil); status != 401 {
		t.Errorf("no key, no poll token: %d", status)
	}
	status, _, raw := e.call(t, "GET", str(qr, "png_url"), "", nil)
	if status != 200 || decodeQR(t, raw) != qrURL {
		t.Errorf("the served PNG: %d", status)
	}

	// The first delivery of the webhook fails: it is retried.
	e.hookFail.Store(1)
	alice := e.user(t, e2eOA, "", false)
	if got := e.scan(t, alice, qrURL); got != follower.DefaultBindReply {
		t.Errorf("alice's phone shows %q after the scan", got)
	}
	inbox, _ := e.sim.Inbox(e2eOA, alice)
	if last := inbox[len(inbox)-1]; last.Kind != wechatsim.ItemReply || last.Content != "绑定成功" {
		t.Errorf("alice's inbox ends with %+v", last)
	}
	bindings := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-1024", nil, 200), "bindings")
	if len(bindings) != 1 || str(bindings[0], "openid") != alice || str(bindings[0], "source") != "qrcode" || str(bindings[0], "account") != "main" {
		t.Fatalf("bindings of S-1024 = %v", bindings)
	}
	h := e.waitHook(t)
	if err := webhook.Verify(secret, h.header, h.body, e.now(), 0); err != nil {
		t.Errorf("webhook signature: %v (%s)", err, h.header.Get(webhook.HeaderSignature))
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Binding follower.Binding `json:"binding"`
			Ticket  string           `json:"ticket"`
		} `json:"data"`
	}
	if err := json.Unmarshal(h.body, &ev); err != nil || ev.Type != "binding.completed" || ev.Data.Binding.ExternalID != "S-1024" ||
		ev.Data.Binding.OpenID != alice || ev.Data.Ticket != ticket || h.header.Get(webhook.HeaderEvent) != "binding.completed" {
		t.Errorf("webhook body %s (%v)", h.body, err)
	}
	// The delivery is recorded once the receiver's answer is in.
	var deliveries []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		deliveries = list(e.must(t, "GET", "/api/v1/webhooks/"+str(hook, "id")+"/deliveries", nil, 200), "deliveries")
		if len(deliveries) == 1 && str(deliveries[0], "status") == "delivered" {
			break
		}
	}
	if len(deliveries) != 1 || str(deliveries[0], "status") != "delivered" || str(deliveries[0], "attempts") != "2" ||
		str(deliveries[0], "last_status") != "200" {
		t.Errorf("deliveries = %v", deliveries)
	}
	if _, st, raw := e.call(t, "GET", pollURL, "", nil); str(st, "status") != follower.QRCompleted || str(st, "binding", "openid") != alice {
		t.Errorf("poll after the scan: %s", raw)
	}

	// Alice scans again (or WeChat retries): the same confirmation, nothing new.
	if got := e.scan(t, alice, qrURL); got != follower.DefaultBindReply {
		t.Errorf("alice's second scan shows %q", got)
	}
	// Bob, a follower already, scans the used code: SCAN, nothing bound.
	bob := e.user(t, e2eOA, "", true)
	if got := e.scan(t, bob, qrURL); got != follower.DefaultUsedReply {
		t.Errorf("bob's scan of a used code shows %q", got)
	}
	e.noHook(t)
	if b := list(e.must(t, "GET", "/api/v1/bindings?openid="+bob, nil, 200), "bindings"); len(b) != 0 {
		t.Errorf("bob got bindings %v", b)
	}
	if _, st, raw := e.call(t, "GET", "/api/v1/bindings/qrcode/"+ticketPath(ticket), e.key, nil); str(st, "status") != follower.QRCompleted ||
		str(st, "rejected_scan", "reason") != "used" || !strings.Contains(str(st, "reason"), "used") {
		t.Errorf("poll after bob's scan: %s", raw)
	}

	// An expired code: WeChat still delivers a scan made just in time,
	// wxgate's clock says the token expired.
	late := e.must(t, "POST", "/api/v1/bindings/qrcode", map[string]any{"account": "main", "external_id": "S-2048", "expires_in": 30}, 201)
	e.offset.Store(31)
	if got := e.scan(t, bob, str(late, "url")); got != follower.DefaultExpiredReply {
		t.Errorf("bob's scan of an expired code shows %q", got)
	}
	if b := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-2048", nil, 200), "bindings"); len(b) != 0 {
		t.Errorf("an expired code bound %v", b)
	}
	if _, st, raw := e.call(t, "GET", str(late, "poll_url"), "", nil); str(st, "status") != follower.QRExpired ||
		!strings.Contains(str(st, "reason"), "after it expired") {
		t.Errorf("poll of the expired code: %s", raw)
	}
	e.noHook(t)

	// One-to-one: a new code for S-1024 scanned by bob (SCAN) replaces
	// alice's binding, which stays in the history.
	again := e.must(t, "POST", "/api/v1/bindings/qrcode", map[string]any{"account": "main", "external_id": "S-1024"}, 201)
	if got := e.scan(t, bob, str(again, "url")); got != follower.DefaultBindReply {
		t.Errorf("bob's scan shows %q", got)
	}
	h = e.waitHook(t)
	if !strings.Contains(string(h.body), `"replaced":[`) {
		t.Errorf("the webhook of a replacing binding: %s", h.body)
	}
	active := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-1024", nil, 200), "bindings")
	all := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-1024&history=true", nil, 200), "bindings")
	if len(active) != 1 || str(active[0], "openid") != bob || len(all) != 2 || str(all[1], "end_reason") != "replaced" ||
		str(all[1], "replaced_by") != str(active[0], "id") {
		t.Errorf("after the replacement: active %v, all %v", active, all)
	}

	// Delete through the API: ended, kept in the history.
	e.must(t, "DELETE", "/api/v1/bindings/"+str(active[0], "id"), nil, 200)
	if b := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-1024", nil, 200), "bindings"); len(b) != 0 {
		t.Errorf("still bound after the delete: %v", b)
	}
	e.must(t, "DELETE", "/api/v1/bindings/999999", nil, 404)

	// Followers API: bob follows; the bound filter follows the bindings.
	if f := list(e.must(t, "GET", "/api/v1/followers?account=main&subscribed=true", nil, 200), "followers"); len(f) != 2 {
		t.Errorf("subscribed followers = %v", f)
	}
	detail := e.must(t, "GET", "/api/v1/followers/"+alice+"?account=main", nil, 200)
	if str(detail, "follower", "openid") != alice || len(list(detail, "bindings")) != 0 || len(list(detail, "recent_messages")) == 0 {
		t.Errorf("alice = %v", detail)
	}
}

// ticketPath escapes a ticket for a URL path (tickets are base64 with / and +).
func ticketPath(ticket string) string {
	return strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(ticket)
}

// Mini-program login records the openid and unionid and links the person
// to the follower with the same unionid; with external_id it binds. A
// reused or bad code gets a clear error; a mini program without an Open
// Platform binding is "not linked", not an error. The session_key is
// never in the answer.
func TestMiniProgramLogin(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	ctx := t.Context()

	// Carol follows the official account and uses the mini program.
	carolOA := e.user(t, e2eOA, "u-carol", true)
	carolMP := e.user(t, e2eMP, "u-carol", false)
	// A full sync through the queue fills the follower's unionid.
	if st := e.must(t, "GET", "/api/v1/followers/sync?account=main", nil, 200); str(st, "status") != "never" {
		t.Errorf("sync status before any = %v", st)
	}
	started := e.must(t, "POST", "/api/v1/followers/sync", map[string]any{"account": "main"}, 202)
	if str(started, "job_id") == "" {
		t.Errorf("sync start = %v", started)
	}
	var st map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st = e.must(t, "GET", "/api/v1/followers/sync?account=main", nil, 200); str(st, "status") == follower.SyncCompleted {
			break
		}
	}
	if str(st, "status") != follower.SyncCompleted || str(st, "listed") != "1" || str(st, "batch_calls") != "1" {
		t.Fatalf("sync = %v", st)
	}

	login := func(openid, account, externalID string) (string, int, map[string]any, []byte) {
		t.Helper()
		res, err := e.sim.Act(ctx, openid, wechatsim.Action{Type: wechatsim.ActionOpenMiniProgram})
		if err != nil {
			t.Fatal(err)
		}
		status, out, raw := e.call(t, "POST", "/api/v1/miniprogram/login", e.key,
			map[string]any{"account": account, "code": res.Code, "external_id": externalID})
		return res.Code, status, out, raw
	}
	code, status, out, raw := login(carolMP, "shop-mp", "C-88")
	if status != 200 || str(out, "openid") != carolMP || str(out, "unionid") != "u-carol" || str(out, "link") != follower.LinkLinked {
		t.Fatalf("login: %d %s", status, raw)
	}
	if f := list(out, "followers"); len(f) != 1 || str(f[0], "openid") != carolOA || str(f[0], "account") != "main" {
		t.Errorf("linked followers = %v", f)
	}
	if str(out, "binding", "external_id") != "C-88" || str(out, "binding", "source") != "miniprogram" {
		t.Errorf("binding = %v", out["binding"])
	}
	if bytes.Contains(raw, []byte("session_key")) {
		t.Error("the answer carries the session_key")
	}
	if logs := e.logs.String(); !strings.Contains(logs, "mini-program login") || strings.Contains(logs, "session_key") || strings.Contains(logs, code) {
		t.Error("the log shows the session_key or the login code")
	}

	// The code works once.
	status, out, raw = e.call(t, "POST", "/api/v1/miniprogram/login", e.key, map[string]any{"account": "shop-mp", "code": code})
	if status != 400 || str(out, "error", "code") != "code_used" {
		t.Errorf("reused code: %d %s", status, raw)
	}
	status, out, raw = e.call(t, "POST", "/api/v1/miniprogram/login", e.key, map[string]any{"account": "shop-mp", "code": "never-issued"})
	if status != 400 || str(out, "error", "code") != "invalid_code" {
		t.Errorf("bad code: %d %s", status, raw)
	}
	status, out, _ = e.call(t, "POST", "/api/v1/miniprogram/login", e.key, map[string]any{"account": "main", "code": "x"})
	if status != 400 || str(out, "error", "code") != "wrong_account_kind" {
		t.Errorf("login on an official account: %d %v", status, out)
	}

	// The binding made in the mini program reaches the follower by unionid.
	detail := e.must(t, "GET", "/api/v1/followers/"+carolOA+"?account=main", nil, 200)
	ids := list(detail["person"].(map[string]any), "identities")
	if str(detail, "link") != "linked" || len(ids) != 2 || str(ids[1], "openid") != carolMP || str(ids[1], "kind") != "mini_program" {
		t.Errorf("carol's person = %v", detail["person"])
	}
	if b := list(detail, "bindings"); len(b) != 1 || str(b[0], "external_id") != "C-88" {
		t.Errorf("carol's bindings = %v", b)
	}
	if f := list(e.must(t, "GET", "/api/v1/followers?account=main&bound=true", nil, 200), "followers"); len(f) != 1 || str(f[0], "openid") != carolOA {
		t.Errorf("bound followers = %v", f)
	}
	if b := list(e.must(t, "GET", "/api/v1/bindings?unionid=u-carol", nil, 200), "bindings"); len(b) != 1 {
		t.Errorf("bindings by unionid = %v", b)
	}

	// A mini program without Open Platform: no unionid, not linked.
	dave := e.user(t, e2eSoloMP, "", false)
	_, status, out, raw = login(dave, "solo-mp", "")
	if status != 200 || str(out, "openid") != dave || str(out, "unionid") != "" || str(out, "link") != follower.LinkNotLinked ||
		str(out, "link_reason") == "" || len(list(out, "followers")) != 0 || out["binding"] != nil {
		t.Errorf("solo login: %d %s", status, raw)
	}
}

// Scans of several phones at once bind each code once.
func TestConcurrentScans(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	qr := e.must(t, "POST", "/api/v1/bindings/qrcode", map[string]any{"account": "main", "external_id": "S-7"}, 201)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		shown  = map[string]int{}
		phones []string
	)
	for range 4 {
		phones = append(phones, e.user(t, e2eOA, "", true))
	}
	for _, p := range phones {
		wg.Go(func() {
			got := e.scan(t, p, str(qr, "url"))
			mu.Lock()
			shown[got]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if shown[follower.DefaultBindReply] != 1 || shown[follower.DefaultUsedReply] != 3 {
		t.Errorf("replies = %v", shown)
	}
	if b := list(e.must(t, "GET", "/api/v1/bindings?external_id=S-7", nil, 200), "bindings"); len(b) != 1 {
		t.Errorf("bindings = %v", b)
	}
}
