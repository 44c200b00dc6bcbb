package wechat

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		path      string
		wantQuery []string // substrings of the raw query
		wantBody  string   // exact JSON body, "" for none
		answer    string
		call      func(ctx context.Context, c *Client) (any, error)
		want      any
	}{
		{
			name: "token", method: "GET", path: "/cgi-bin/token",
			wantQuery: []string{"grant_type=client_credential", "appid=wxA", "secret=SEC"},
			answer:    `{"access_token":"AT","expires_in":7200}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, err := c.GetToken(ctx, "wxA", "SEC")
				return [2]any{tok.Token, tok.ExpiresIn}, err
			},
			want: [2]any{"AT", 7200 * time.Second},
		},
		{
			name: "stable_token", method: "POST", path: "/cgi-bin/stable_token",
			wantBody: `{"grant_type":"client_credential","appid":"wxA","secret":"SEC","force_refresh":true}`,
			answer:   `{"access_token":"ST","expires_in":"300"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				tok, err := c.GetStableToken(ctx, "wxA", "SEC", true)
				return [2]any{tok.Token, tok.ExpiresIn}, err
			},
			want: [2]any{"ST", 300 * time.Second},
		},
		{
			name: "user/info", method: "GET", path: "/cgi-bin/user/info",
			wantQuery: []string{"openid=o1", "lang=zh_CN", "access_token=TOKEN-ONE-secret"},
			answer: `{"subscribe":1,"openid":"o1","language":"zh_CN","subscribe_time":1382694957,"unionid":"u1","remark":"",
				"groupid":0,"tagid_list":[128,2],"subscribe_scene":"ADD_SCENE_QR_CODE","qr_scene":98765,"qr_scene_str":"S-1024"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.UserInfo(ctx, "o1", "") },
			want: &UserInfo{Subscribe: 1, OpenID: "o1", UnionID: "u1", Language: "zh_CN", SubscribeTime: 1382694957,
				TagIDs: []Int64{128, 2}, SubscribeScene: "ADD_SCENE_QR_CODE", QRScene: 98765, QRSceneStr: "S-1024"},
		},
		{
			name: "user/info/batchget", method: "POST", path: "/cgi-bin/user/info/batchget",
			wantBody: `{"user_list":[{"openid":"o1","lang":"zh_CN"},{"openid":"o2"}]}`,
			answer:   `{"user_info_list":[{"subscribe":1,"openid":"o1"},{"subscribe":0,"openid":"o2","unionid":"u2"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.BatchUserInfo(ctx, []UserInfoRequest{{"o1", "zh_CN"}, {OpenID: "o2"}})
			},
			want: []UserInfo{{Subscribe: 1, OpenID: "o1"}, {OpenID: "o2", UnionID: "u2"}},
		},
		{
			name: "user/get", method: "GET", path: "/cgi-bin/user/get", wantQuery: []string{"next_openid=o0"},
			answer: `{"total":3,"count":2,"data":{"openid":["o1","o2"]},"next_openid":"o2"}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Followers(ctx, "o0") },
			want:   &FollowerPage{Total: 3, OpenIDs: []string{"o1", "o2"}, NextOpenID: "o2"},
		},
		{
			name: "user/get last page without data", method: "GET", path: "/cgi-bin/user/get",
			answer: `{"total":3,"count":0,"next_openid":""}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Followers(ctx, "") },
			want:   &FollowerPage{Total: 3},
		},
		{
			name: "template send", method: "POST", path: "/cgi-bin/message/template/send",
			wantBody: `{"touser":"o1","template_id":"T1","url":"https://e.com/?a=1&b=2","miniprogram":{"appid":"wxM","pagepath":"pages/lead?id=1"},"client_msg_id":"c1","data":{"thing1":{"value":"张三<客户>"}}}`,
			answer:   `{"errcode":0,"errmsg":"ok","msgid":3717005636572528642}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SendTemplate(ctx, &TemplateMessage{ToUser: "o1", TemplateID: "T1", URL: "https://e.com/?a=1&b=2",
					MiniProgram: &MiniProgramLink{AppID: "wxM", PagePath: "pages/lead?id=1"}, ClientMsgID: "c1",
					Data: Values(map[string]string{"thing1": "张三<客户>"})})
			},
			want: int64(3717005636572528642),
		},
		{
			name: "template list", method: "GET", path: "/cgi-bin/template/get_all_private_template",
			answer: `{"template_list":[{"template_id":"T1","title":"领取奖金提醒","content":"{{result.DATA}}"}]}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListTemplates(ctx) },
			want:   []Template{{TemplateID: "T1", Title: "领取奖金提醒", Content: "{{result.DATA}}"}},
		},
		{
			name: "template add", method: "POST", path: "/cgi-bin/template/api_add_template",
			wantBody: `{"template_id_short":"TM00015","keyword_name_list":["时间","地点"]}`,
			answer:   `{"errcode":0,"errmsg":"ok","template_id":"NEW"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.AddTemplate(ctx, "TM00015", []string{"时间", "地点"})
			},
			want: "NEW",
		},
		{
			name: "template delete", method: "POST", path: "/cgi-bin/template/del_private_template",
			wantBody: `{"template_id":"T1"}`, answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteTemplate(ctx, "T1") },
		},
		{
			name: "subscribe bizsend", method: "POST", path: "/cgi-bin/message/subscribe/bizsend",
			wantBody: `{"touser":"o1","template_id":"S1","page":"https://mp.weixin.qq.com","data":{"thing8":{"value":"广州"}}}`,
			answer:   `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SendSubscribe(ctx, &SubscribeMessage{ToUser: "o1", TemplateID: "S1", Page: "https://mp.weixin.qq.com",
					Data: Values(map[string]string{"thing8": "广州"})})
			},
			want: int64(0),
		},
		{
			name: "mini program subscribe send", method: "POST", path: "/cgi-bin/message/subscribe/send",
			wantBody: `{"touser":"o1","template_id":"M1","page":"index","miniprogram_state":"developer","lang":"zh_CN","data":{"number01":{"value":"339208499"}}}`,
			answer:   `{"errcode":0,"errmsg":"ok","msgid":1988810812324364291}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SendMiniProgramSubscribe(ctx, &MiniProgramSubscribeMessage{ToUser: "o1", TemplateID: "M1", Page: "index",
					State: MiniProgramStateDeveloper, Lang: "zh_CN", Data: Values(map[string]string{"number01": "339208499"})})
			},
			want: int64(1988810812324364291),
		},
		{
			name: "custom send", method: "POST", path: "/cgi-bin/message/custom/send",
			wantBody: `{"touser":"o1","msgtype":"text","text":{"content":"您好 <a href=\"https://e.com\">链接</a>"}}`,
			answer:   `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.SendCustom(ctx, NewCustomText("o1", `您好 <a href="https://e.com">链接</a>`))
			},
		},
		{
			name: "custom typing", method: "POST", path: "/cgi-bin/message/custom/typing",
			wantBody: `{"touser":"o1","command":"Typing"}`, answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.CustomTyping(ctx, "o1", true) },
		},
		{
			name: "qrcode create", method: "POST", path: "/cgi-bin/qrcode/create",
			wantBody: `{"expire_seconds":604800,"action_name":"QR_STR_SCENE","action_info":{"scene":{"scene_str":"bind:S-1024"}}}`,
			answer:   `{"ticket":"gQH47joAAAAAAAAAASxodHRwOi8v+/=","expire_seconds":604800,"url":"http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateQRCode(ctx, TempQRCode("bind:S-1024", 7*24*time.Hour))
			},
			want: &QRCode{Ticket: "gQH47joAAAAAAAAAASxodHRwOi8v+/=", ExpireSeconds: 604800, URL: "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"},
		},
		{
			name: "menu create", method: "POST", path: "/cgi-bin/menu/create",
			wantBody: `{"button":[{"type":"click","name":"今日歌曲","key":"V1001"},{"name":"菜单","sub_button":[{"type":"view","name":"搜索","url":"http://www.soso.com/"}]}]}`,
			answer:   `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.CreateMenu(ctx, &Menu{Buttons: []MenuButton{{Type: "click", Name: "今日歌曲", Key: "V1001"},
					{Name: "菜单", SubButtons: []MenuButton{{Type: "view", Name: "搜索", URL: "http://www.soso.com/"}}}}})
			},
		},
		{
			name: "menu get", method: "GET", path: "/cgi-bin/menu/get",
			answer: `{"menu":{"button":[{"type":"click","name":"赞","key":"V1001_GOOD"}],"menuid":208396938}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				m, err := c.GetMenu(ctx)
				if err != nil {
					return nil, err
				}
				return [2]any{m.Menu.Buttons[0].Key, int64(m.Menu.MenuID)}, nil
			},
			want: [2]any{"V1001_GOOD", int64(208396938)},
		},
		{
			name: "menu delete", method: "GET", path: "/cgi-bin/menu/delete", answer: `{"errcode":0,"errmsg":"ok"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteMenu(ctx) },
		},
		{
			name: "jscode2session", method: "GET", path: "/sns/jscode2session",
			wantQuery: []string{"appid=wxM", "secret=SEC", "js_code=CODE", "grant_type=authorization_code"},
			answer:    `{"openid":"oM","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"u1"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Code2Session(ctx, "wxM", "SEC", "CODE")
			},
			want: &Session{OpenID: "oM", SessionKey: "tiihtNczf5v6AKRyjwEUhQ==", UnionID: "u1"},
		},
		{
			name: "getcallbackip", method: "GET", path: "/cgi-bin/getcallbackip",
			answer: `{"ip_list":["101.226.103.0/25","127.0.0.1"]}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CallbackIPs(ctx) },
			want:   []string{"101.226.103.0/25", "127.0.0.1"},
		},
		{
			name: "get_api_domain_ip", method: "GET", path: "/cgi-bin/get_api_domain_ip",
			answer: `{"ip_list":["101.89.47.18"]}`,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.APIDomainIPs(ctx) },
			want:   []string{"101.89.47.18"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, answer(tt.answer))
			b := setupClient(t, srv.URL)
			got, err := tt.call(t.Context(), b.client)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			for _, q := range tt.wantQuery {
				if !strings.Contains(r.Query, q) {
					t.Errorf("query %q lacks %q", r.Query, q)
				}
			}
			if string(r.Body) != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", r.Body, tt.wantBody)
			}

			// The same call against an errcode answer returns a typed error.
			errSrv := newFakeServer(t, answer(`{"errcode":"40003","errmsg":"invalid openid rid: 652d44d0-1d0af18b-5b069232"}`))
			_, err = tt.call(t.Context(), setupClient(t, errSrv.URL).client)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != 40003 || apiErr.Path != tt.path || apiErr.RID != "652d44d0-1d0af18b-5b069232" {
				t.Errorf("error path: %v", err)
			}
		})
	}
}

func TestQRCodeValidation(t *testing.T) {
	t.Parallel()
	bad := []*QRCodeRequest{
		TempQRCode("", time.Hour),
		TempQRCode(strings.Repeat("x", 65), time.Hour),
		TempQRCode("ok", 31*24*time.Hour),
		{ActionName: QRLimitScene, ActionInfo: QRActionInfo{Scene: QRSceneValue{SceneID: 100001}}},
		{ActionName: "QR_WHATEVER"},
	}
	c := NewClient(ClientOptions{BaseURLs: []string{"http://127.0.0.1:1"}}).WithTokenSource(&staticTokens{tokens: []string{"x"}})
	for _, r := range bad {
		if _, err := c.CreateQRCode(t.Context(), r); err == nil || errors.As(err, new(*TransportError)) {
			t.Errorf("%+v: err = %v, want a validation error", r, err)
		}
	}
	if got := c.ShowQRCodeURL("a+b/c="); got != "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=a%2Bb%2Fc%3D" {
		t.Errorf("ShowQRCodeURL = %s", got)
	}
}

func TestBatchUserInfoLimit(t *testing.T) {
	t.Parallel()
	c := NewClient(ClientOptions{BaseURLs: []string{"http://127.0.0.1:1"}}).WithTokenSource(&staticTokens{tokens: []string{"x"}})
	if _, err := c.BatchUserInfo(t.Context(), make([]UserInfoRequest, 101)); err == nil {
		t.Fatal("101 openids accepted")
	}
}

func TestContentTypeIgnored(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `{"openid":"o","session_key":"k"}`)
	})
	s, err := setupClient(t, srv.URL).client.Code2Session(t.Context(), "a", "b", "c")
	if err != nil || s.OpenID != "o" {
		t.Fatalf("%v %v", s, err)
	}
}
