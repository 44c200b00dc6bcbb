package wechatsim

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wxgate/wxgate/internal/wechat"
)

// decodeQR reads the content of a QR image as a phone camera would.
func decodeQR(t *testing.T, img []byte) string {
	t.Helper()
	pic, err := png.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("showqrcode is not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(pic)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		// gozxing's finder-pattern detector misreads about 1 in 300 clean
		// codes; a generated image is a pure barcode, which it reads exactly.
		pure := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
		res, err = gozxingqr.NewQRCodeReader().Decode(bmp, pure)
	}
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

func (b *bundle) showQR(t *testing.T, ticket string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(b.srv.URL + "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(ticket))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestQRScanToSignedSubscribe(t *testing.T) {
	t.Parallel()
	b := setup(t, withMode(ModeSafe), func(o *setupOptions) {
		o.configure = func(c *Config) { c.PublicBaseURL = "http://127.0.0.1:8081" }
	})
	tok := b.token(t, testOA, testOASecret)
	a := b.post(t, "/cgi-bin/qrcode/create", tq(tok), map[string]any{
		"expire_seconds": 604800, "action_name": "QR_STR_SCENE", "action_info": map[string]any{"scene": map[string]any{"scene_str": "S-1024"}}})
	ticket, qrURL := a.str("ticket"), a.str("url")
	if ticket == "" || a.int("expire_seconds") != 604800 || !strings.HasPrefix(qrURL, "http://127.0.0.1:8081/q/") {
		t.Fatalf("qrcode/create: %s", a.raw)
	}

	status, img := b.showQR(t, ticket)
	if status != 200 {
		t.Fatalf("showqrcode HTTP %d", status)
	}
	content := decodeQR(t, img)
	if content != qrURL {
		t.Fatalf("QR encodes %q, want %q", content, qrURL)
	}

	// A new user scans what the camera read: subscribe with qrscene_.
	u := b.user(t, testOA, false)
	b.act(t, u.OpenID, Action{Type: ActionScan, URL: content})
	p := b.recv.wait(t)
	if p.Err != "" {
		t.Fatalf("push verification: %s", p.Err)
	}
	if p.Query.Get("encrypt_type") != "aes" || !wechat.VerifyMsgSignature(testToken, p.Query.Get("timestamp"), p.Query.Get("nonce"), mustEnvelope(t, p.Body), p.Query.Get("msg_signature")) {
		t.Fatal("msg_signature does not verify")
	}
	if p.Msg.Event != wechat.EventSubscribe || p.Msg.EventKey != "qrscene_S-1024" || p.Msg.Ticket != ticket {
		t.Fatalf("subscribe push: %s", p.Plain)
	}
	if scene, ok := p.Msg.QRScene(); !ok || scene != "S-1024" {
		t.Fatalf("QRScene() = %q %v", scene, ok)
	}
	info := b.get(t, "/cgi-bin/user/info", tq(tok, "openid", u.OpenID))
	if info.str("subscribe_scene") != SceneQRCode || info.str("qr_scene_str") != "S-1024" {
		t.Errorf("user/info after QR follow: %s", info.raw)
	}

	// Scanning again while following: SCAN with the bare scene.
	b.act(t, u.OpenID, Action{Type: ActionScan, Ticket: ticket})
	p = b.recv.wait(t)
	if p.Msg.Event != wechat.EventScan || p.Msg.EventKey != "S-1024" || p.Msg.Ticket != ticket {
		t.Fatalf("SCAN push: %s", p.Plain)
	}
}

func mustEnvelope(t *testing.T, body []byte) string {
	t.Helper()
	m, err := wechat.ParseMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return m.Encrypt
}

func TestQRCreateRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	create := func(body map[string]any) apiAnswer {
		return b.post(t, "/cgi-bin/qrcode/create", tq(tok), body)
	}
	scene := func(k string, v any) map[string]any { return map[string]any{"scene": map[string]any{k: v}} }
	tests := []struct {
		name       string
		body       map[string]any
		want       int64
		wantExpiry int64 // -1: absent
	}{
		{"temporary default 60 s", map[string]any{"action_name": "QR_SCENE", "action_info": scene("scene_id", 123)}, 0, 60},
		{"temporary capped at 30 days", map[string]any{"expire_seconds": 9999999, "action_name": "QR_SCENE", "action_info": scene("scene_id", 1)}, 0, 2592000},
		{"permanent id", map[string]any{"action_name": "QR_LIMIT_SCENE", "action_info": scene("scene_id", 100000)}, 0, -1},
		{"permanent id too big", map[string]any{"action_name": "QR_LIMIT_SCENE", "action_info": scene("scene_id", 100001)}, 40053, 0},
		{"permanent str", map[string]any{"action_name": "QR_LIMIT_STR_SCENE", "action_info": scene("scene_str", "test")}, 0, -1},
		{"scene_str too long", map[string]any{"action_name": "QR_STR_SCENE", "action_info": scene("scene_str", strings.Repeat("x", 65))}, 40053, 0},
		{"scene_str empty", map[string]any{"action_name": "QR_STR_SCENE", "action_info": scene("scene_str", "")}, 40053, 0},
		{"scene_id zero", map[string]any{"action_name": "QR_SCENE", "action_info": scene("scene_id", 0)}, 40053, 0},
		{"bad action", map[string]any{"action_name": "QR_NOPE", "action_info": scene("scene_id", 1)}, 40052, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := create(tt.body)
			wantErrcode(t, a, tt.want)
			if tt.want != 0 {
				return
			}
			_, has := a.m["expire_seconds"]
			if tt.wantExpiry == -1 && has || tt.wantExpiry > 0 && a.int("expire_seconds") != tt.wantExpiry {
				t.Errorf("expire_seconds: %s", a.raw)
			}
		})
	}
	// The same permanent scene gives the same ticket.
	p1 := create(map[string]any{"action_name": "QR_LIMIT_STR_SCENE", "action_info": scene("scene_str", "same")}).str("ticket")
	p2 := create(map[string]any{"action_name": "QR_LIMIT_STR_SCENE", "action_info": scene("scene_str", "same")}).str("ticket")
	if p1 != p2 {
		t.Error("permanent scene re-created with a new ticket")
	}
	// Expired and unknown tickets: HTTP 404; scanning an expired one fails.
	tmp := create(map[string]any{"expire_seconds": 30, "action_name": "QR_SCENE", "action_info": scene("scene_id", 7)}).str("ticket")
	if status, _ := b.showQR(t, tmp); status != 200 {
		t.Fatalf("fresh ticket: HTTP %d", status)
	}
	b.clock.Advance(31 * time.Second)
	if status, _ := b.showQR(t, tmp); status != 404 {
		t.Fatalf("expired ticket: HTTP %d", status)
	}
	if status, _ := b.showQR(t, "nope"); status != 404 {
		t.Fatalf("unknown ticket: HTTP %d", status)
	}
	u := b.user(t, testOA, false)
	if _, err := b.sim.Act(t.Context(), u.OpenID, Action{Type: ActionScan, Ticket: tmp}); ErrorCodeOf(err) != CodeExpired {
		t.Fatalf("scanning an expired code: %v", err)
	}
}

func TestShowQRCodeUnencodedTicket(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.token(t, testOA, testOASecret)
	// Create tickets until one contains "+", which an SDK that does not
	// URL-encode the ticket sends as a space.
	for i := 0; i < 200; i++ {
		a := b.post(t, "/cgi-bin/qrcode/create", tq(tok), map[string]any{
			"expire_seconds": 600, "action_name": "QR_SCENE", "action_info": map[string]any{"scene": map[string]any{"scene_id": i + 1}}})
		ticket := a.str("ticket")
		if !strings.Contains(ticket, "+") {
			continue
		}
		resp, err := http.Get(b.srv.URL + "/cgi-bin/showqrcode?ticket=" + ticket) // deliberately not escaped
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unencoded ticket %q: HTTP %d, want 200", ticket, resp.StatusCode)
		}
		return
	}
	t.Fatal("no ticket with '+' in 200 tries")
}
