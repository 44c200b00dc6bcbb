package sdk

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/silenceper/wechat/v2/officialaccount"
	"github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// The callback side: the SDK's message server (officialaccount/server)
// behind an app's server URL. The simulated phones push to it; the SDK
// verifies signatures, decrypts in compatible and safe mode, and its
// passive replies must show on the phone.

const callbackToken = "sdkGoCallbackToken"

// sdkServer is an httptest server running the SDK's message server, keeping
// what the SDK parsed and any error it returned.
type sdkServer struct {
	*httptest.Server
	mu       sync.Mutex
	received []message.MixMessage
	openIDs  []string
	errs     []string
}

func (s *sdkServer) last() (message.MixMessage, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.received) == 0 {
		return message.MixMessage{}, ""
	}
	return s.received[len(s.received)-1], s.openIDs[len(s.openIDs)-1]
}

func (s *sdkServer) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

func (s *sdkServer) find(match func(message.MixMessage) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.received {
		if match(m) {
			return true
		}
	}
	return false
}

func startSDKServer(t *testing.T, oa *officialaccount.OfficialAccount) *sdkServer {
	s := &sdkServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv := oa.GetServer(r, w)
		srv.SetMessageHandler(func(msg *message.MixMessage) *message.Reply {
			s.mu.Lock()
			s.received = append(s.received, *msg)
			s.openIDs = append(s.openIDs, srv.GetOpenID())
			s.mu.Unlock()
			switch {
			case msg.MsgType == message.MsgTypeEvent && msg.Event == message.EventSubscribe:
				return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText("欢迎关注 Go")}
			case msg.MsgType == message.MsgTypeEvent && msg.Event == message.EventClick:
				return &message.Reply{MsgType: message.MsgTypeNews, MsgData: message.NewNews([]*message.Article{
					message.NewArticle("菜单 "+msg.EventKey, "点击了菜单", "https://example.com/p.png", "https://example.com/m"),
				})}
			case msg.MsgType == message.MsgTypeText && msg.Content == "silence":
				return nil
			case msg.MsgType == message.MsgTypeText:
				return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText("收到：" + msg.Content)}
			}
			return nil
		})
		if err := srv.Serve(); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err.Error())
			s.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := srv.Send(); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, "send: "+err.Error())
			s.mu.Unlock()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestCallbackServer(t *testing.T) {
	needSim(t)
	if proxyURL != "" {
		t.Skip("callbacks do not go through the API proxy; this test runs in the direct pass")
	}
	for _, mode := range []string{"plaintext", "compatible", "safe"} {
		t.Run(mode, func(t *testing.T) {
			appID := "wx5d1c0de1" + randomHex(4)
			secret := randomHex(16)
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			aesKey := strings.TrimRight(base64.StdEncoding.EncodeToString(key), "=")
			cfg := &config.Config{AppID: appID, AppSecret: secret, Token: callbackToken, Cache: newCache()}
			if mode != "plaintext" {
				cfg.EncodingAESKey = aesKey
			}
			oa := officialaccount.NewOfficialAccount(cfg)
			srv := startSDKServer(t, oa)
			control(t, "POST", "/sim/api/apps", map[string]any{
				"app_id": appID, "app_secret": secret, "kind": "official_account", "name": "SDK Go callback " + mode,
				"callback_url": srv.URL + "/wx", "token": callbackToken, "encoding_aes_key": cfg.EncodingAESKey, "mode": mode,
				"templates": []map[string]string{{"template_id": templateID, "title": "预约成功通知",
					"content": "预约人：{{name1.DATA}}\n预约时间：{{time2.DATA}}\n联系电话：{{phone_number3.DATA}}"}},
			}, nil)

			var verify struct {
				OK     bool   `json:"ok"`
				Status int    `json:"status"`
				Body   string `json:"body"`
				Error  string `json:"error"`
			}
			control(t, "POST", "/sim/api/apps/"+appID+"/verify_url", nil, &verify)
			if !verify.OK {
				t.Fatalf("server URL verification failed: %+v (SDK errors %v)", verify, srv.errors())
			}

			u := createUser(t, appID, true)
			if u.Reply == nil || u.Reply.MsgType != "text" || u.Reply.Content != "欢迎关注 Go" {
				t.Fatalf("follow: reply %+v, delivery %+v, SDK errors %v", u.Reply, u.Delivery, srv.errors())
			}
			if msg, openid := srv.last(); msg.Event != message.EventSubscribe || string(msg.FromUserName) != u.OpenID || openid != u.OpenID {
				t.Fatalf("the SDK parsed %+v (openid query %q)", msg, openid)
			}

			res := act(t, appID, u.OpenID, map[string]any{"type": "text", "content": "你好 <Go> & \"SDK\""})
			msg, _ := srv.last()
			if msg.MsgType != message.MsgTypeText || msg.Content != "你好 <Go> & \"SDK\"" || msg.MsgID == 0 || msg.CreateTime == 0 {
				t.Fatalf("the SDK parsed %+v; errors %v", msg, srv.errors())
			}
			if res.Reply == nil || res.Reply.Content != "收到：你好 <Go> & \"SDK\"" {
				t.Fatalf("text: reply %+v, delivery %+v, SDK errors %v", res.Reply, res.Delivery, srv.errors())
			}
			items := inbox(t, appID, u.OpenID)
			if len(items) == 0 || items[len(items)-1].Content != "收到：你好 <Go> & \"SDK\"" {
				t.Fatalf("inbox = %+v", items)
			}

			res = act(t, appID, u.OpenID, map[string]any{"type": "click", "event_key": "MENU_GO"})
			if res.Reply == nil || res.Reply.MsgType != "news" || len(res.Reply.Articles) != 1 || res.Reply.Articles[0].Title != "菜单 MENU_GO" {
				t.Fatalf("click: reply %+v, delivery %+v", res.Reply, res.Delivery)
			}

			// TEMPLATESENDJOBFINISH reaches the SDK with the msgid of the send.
			msgID, err := oa.GetTemplate().Send(&message.TemplateMessage{ToUser: u.OpenID, TemplateID: templateID,
				Data: map[string]*message.TemplateDataItem{"name1": {Value: "李四"}, "time2": {Value: "15:00"}, "phone_number3": {Value: "13800000000"}}})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "TEMPLATESENDJOBFINISH at the SDK server", func() bool {
				return srv.find(func(m message.MixMessage) bool {
					return m.Event == message.EventTemplateSendJobFinish && m.TemplateMsgID == msgID && m.Status == "success"
				})
			})

			if errs := srv.errors(); len(errs) > 0 {
				t.Fatalf("the SDK refused pushes: %v", errs)
			}
			var alarms []map[string]any
			control(t, "GET", "/sim/api/alarms?app_id="+appID, nil, &alarms)
			if len(alarms) > 0 {
				t.Fatalf("the simulator raised alarms against the SDK server: %v", alarms)
			}

			// A handler with nothing to say (nil reply). In plaintext mode the
			// SDK answers "success" and the phone shows nothing. In compatible
			// and safe mode it answers a signed Encrypt envelope around an empty
			// plaintext, which WeChat's documentation does not cover (it names
			// only "success" and a 0-byte body); the simulator's reading of it
			// is logged, not asserted.
			res = act(t, appID, u.OpenID, map[string]any{"type": "text", "content": "silence"})
			switch {
			case mode == "plaintext" && res.Reply != nil:
				t.Errorf("nil reply in plaintext mode: the phone shows %+v (the SDK answered %q)", res.Reply, res.Delivery.Response)
			case mode != "plaintext":
				shown := "nothing"
				if res.Reply != nil {
					shown = res.Reply.Content
				}
				t.Logf("nil reply in %s mode: the SDK answered %d bytes (%.40s…); outcome %q, the phone shows %s",
					mode, len(res.Delivery.Response), res.Delivery.Response, res.Delivery.Outcome, shown)
			}
		})
	}
}
