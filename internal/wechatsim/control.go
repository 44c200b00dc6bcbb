package wechatsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// The control API (JSON under /sim/api/) drives the simulator from tests,
// scripts and the web page. Errors are HTTP 4xx/5xx with
// {"error":{"code":"…","message":"…"}}, messages in Chinese and English.

const maxControlBody = 1 << 20

// routes builds the simulator's whole URL space.
func (s *Simulator) routes() http.Handler {
	mux := http.NewServeMux()
	for _, route := range s.apiRoutes() {
		mux.Handle(route.path, s.serveAPI(route))
	}
	mux.HandleFunc("/cgi-bin/showqrcode", s.serveShowQRCode)
	mux.HandleFunc("GET "+qrURLPathPrefix+"{code}", s.serveQRURL)
	for _, prefix := range []string{"/cgi-bin/", "/sns/", "/wxaapi/"} {
		mux.HandleFunc(prefix, s.serveUnknownAPI)
	}

	mux.HandleFunc("GET /sim/api/apps", s.ctlListApps)
	mux.HandleFunc("POST /sim/api/apps", s.ctlAddApp)
	mux.HandleFunc("GET /sim/api/apps/{app_id}", s.ctlGetApp)
	mux.HandleFunc("PUT /sim/api/apps/{app_id}", s.ctlUpdateApp)
	mux.HandleFunc("GET /sim/api/apps/{app_id}/tokens", s.ctlTokens)
	mux.HandleFunc("POST /sim/api/apps/{app_id}/invalidate_tokens", s.ctlInvalidateTokens)
	mux.HandleFunc("GET /sim/api/apps/{app_id}/qrcodes", s.ctlQRCodes)
	mux.HandleFunc("POST /sim/api/apps/{app_id}/verify_url", s.ctlVerifyURL)
	mux.HandleFunc("GET /sim/api/apps/{app_id}/media/{media_id}", s.ctlMedia)
	mux.HandleFunc("GET /sim/api/users", s.ctlListUsers)
	mux.HandleFunc("POST /sim/api/users", s.ctlCreateUser)
	mux.HandleFunc("GET /sim/api/users/{openid}", s.ctlGetUser)
	mux.HandleFunc("POST /sim/api/users/{openid}/actions", s.ctlAct)
	mux.HandleFunc("GET /sim/api/users/{openid}/inbox", s.ctlInbox)
	mux.HandleFunc("GET /sim/api/users/{openid}/chat", s.ctlChat)
	mux.HandleFunc("GET /sim/api/faults", s.ctlListFaults)
	mux.HandleFunc("POST /sim/api/faults", s.ctlSetFault)
	mux.HandleFunc("DELETE /sim/api/faults", s.ctlClearFaults)
	mux.HandleFunc("DELETE /sim/api/faults/{id}", s.ctlRemoveFault)
	mux.HandleFunc("POST /sim/api/domains/{domain}", s.ctlDomain)
	mux.HandleFunc("POST /sim/api/reset", s.ctlReset)
	mux.HandleFunc("GET /sim/api/calls", s.ctlCalls)
	mux.HandleFunc("GET /sim/api/alarms", s.ctlAlarms)
	mux.HandleFunc("GET /sim/api/deliveries", s.ctlDeliveries)
	s.weatherRoutes(mux)
	s.bulkRoutes(mux)
	mux.HandleFunc("/sim/api/", func(w http.ResponseWriter, r *http.Request) {
		writeControlError(w, errorf(CodeNotFound, "没有这个接口 no such control route: %s %s", r.Method, r.URL.Path))
	})

	s.webRoutes(mux)
	return mux
}

// serveUnknownAPI answers paths the simulator does not implement, so an SDK
// gets a clear errcode instead of an HTML 404.
func (s *Simulator) serveUnknownAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, contentTypeFor(r), http.StatusNotFound, errorBody{ErrCode: 48001,
		ErrMsg: "api unauthorized: " + r.URL.Path + " is not simulated by wechatsim rid: " + rid(s.now())})
}

func writeControl(w http.ResponseWriter, status int, v any) {
	writeJSON(w, "application/json; charset=utf-8", status, v)
}

func writeControlError(w http.ResponseWriter, err error) {
	code := ErrorCodeOf(err)
	status := map[ErrorCode]int{
		CodeInvalid: http.StatusBadRequest, CodeNotFound: http.StatusNotFound,
		CodeConflict: http.StatusConflict, CodeExpired: http.StatusGone,
	}[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	msg := err.Error()
	var e *Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeControl(w, status, struct {
		Error body `json:"error"`
	}{body{string(code), msg}})
}

// readControl decodes a JSON body strictly: unknown fields are refused so
// that a misspelt field is reported rather than ignored.
func readControl(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody))
	if err != nil {
		return errorf(CodeInvalid, "读取请求失败 cannot read body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeInvalid, "请求 JSON 无效 invalid JSON body: %v", err)
	}
	return nil
}

// AppView is an app as the control API shows it: the secret is left out.
type AppView struct {
	AppConfig
	HasSecret bool         `json:"has_secret"`
	Users     int          `json:"users"`
	Followers int          `json:"followers"`
	Menu      []menuButton `json:"menu,omitempty"`
}

func (s *Simulator) appView(app *appState) AppView {
	v := AppView{AppConfig: app.Config, HasSecret: app.Config.AppSecret != "", Menu: app.Menu}
	v.AppSecret = ""
	v.Templates = nil
	for _, t := range app.Templates {
		v.Templates = append(v.Templates, t.TemplateConfig)
	}
	for _, openid := range app.UserOrder {
		if u := s.st.Users[openid]; u != nil {
			v.Users++
			if u.Subscribed {
				v.Followers++
			}
		}
	}
	return v
}

func (s *Simulator) ctlListApps(w http.ResponseWriter, r *http.Request) {
	var out []AppView
	for _, cfg := range s.Apps() {
		s.mu.Lock()
		if app := s.st.Apps[cfg.AppID]; app != nil {
			out = append(out, s.appView(app))
		}
		s.mu.Unlock()
	}
	if out == nil {
		out = []AppView{}
	}
	writeControl(w, http.StatusOK, out)
}

func (s *Simulator) getAppView(appID string) (AppView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return AppView{}, errorf(CodeNotFound, "应用不存在 app %q not found", appID)
	}
	return s.appView(app), nil
}

func (s *Simulator) ctlAddApp(w http.ResponseWriter, r *http.Request) {
	var cfg AppConfig
	if err := readControl(r, &cfg); err != nil {
		writeControlError(w, err)
		return
	}
	if err := s.AddApp(cfg); err != nil {
		writeControlError(w, err)
		return
	}
	v, err := s.getAppView(cfg.AppID)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusCreated, v)
}

func (s *Simulator) ctlGetApp(w http.ResponseWriter, r *http.Request) {
	v, err := s.getAppView(r.PathValue("app_id"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, v)
}

// ctlUpdateApp replaces an app's configuration; an empty app_secret keeps
// the current one (the control API never shows it).
func (s *Simulator) ctlUpdateApp(w http.ResponseWriter, r *http.Request) {
	appID := r.PathValue("app_id")
	var cfg AppConfig
	if err := readControl(r, &cfg); err != nil {
		writeControlError(w, err)
		return
	}
	if cfg.AppID != "" && cfg.AppID != appID {
		writeControlError(w, errorf(CodeInvalid, "app_id 与路径不一致 app_id in the body differs from the path"))
		return
	}
	cfg.AppID = appID
	if cfg.AppSecret == "" {
		s.mu.Lock()
		if app := s.st.Apps[appID]; app != nil {
			cfg.AppSecret = app.Config.AppSecret
		}
		s.mu.Unlock()
	}
	if err := s.UpdateApp(cfg); err != nil {
		writeControlError(w, err)
		return
	}
	v, err := s.getAppView(appID)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, v)
}

func (s *Simulator) ctlTokens(w http.ResponseWriter, r *http.Request) {
	appID := r.PathValue("app_id")
	if _, err := s.getAppView(appID); err != nil {
		writeControlError(w, err)
		return
	}
	list := s.Tokens(appID)
	if list == nil {
		list = []TokenInfo{}
	}
	writeControl(w, http.StatusOK, list)
}

func (s *Simulator) ctlInvalidateTokens(w http.ResponseWriter, r *http.Request) {
	if err := s.InvalidateTokens(r.PathValue("app_id")); err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Simulator) ctlQRCodes(w http.ResponseWriter, r *http.Request) {
	appID := r.PathValue("app_id")
	if _, err := s.getAppView(appID); err != nil {
		writeControlError(w, err)
		return
	}
	list := s.QRCodes(appID)
	if list == nil {
		list = []QRCode{}
	}
	writeControl(w, http.StatusOK, list)
}

func (s *Simulator) ctlVerifyURL(w http.ResponseWriter, r *http.Request) {
	res, err := s.VerifyURL(r.Context(), r.PathValue("app_id"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, res)
}

func (s *Simulator) ctlListUsers(w http.ResponseWriter, r *http.Request) {
	appID := r.URL.Query().Get("app_id")
	if appID == "" {
		writeControlError(w, errorf(CodeInvalid, "缺少 app_id: app_id is required"))
		return
	}
	users, err := s.Users(appID)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, users)
}

// userResult is the answer of POST /sim/api/users: the user, and what their
// follow delivered.
type userResult struct {
	User
	Grants   map[string]int `json:"grants,omitempty"`
	Delivery *Delivery      `json:"delivery,omitempty"`
	Reply    *InboxItem     `json:"reply,omitempty"`
}

func (s *Simulator) ctlCreateUser(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	if err := readControl(r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	if req.AppID == "" {
		writeControlError(w, errorf(CodeInvalid, "缺少 app_id: app_id is required"))
		return
	}
	s.mu.Lock()
	existed := req.OpenID != "" && s.st.Users[req.OpenID] != nil
	s.mu.Unlock()
	u, res, err := s.createUser(r.Context(), req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	out := userResult{User: *u}
	if res != nil {
		out.Delivery, out.Reply = res.Delivery, res.Reply
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeControl(w, status, out)
}

func (s *Simulator) ctlGetUser(w http.ResponseWriter, r *http.Request) {
	appID, openid := r.URL.Query().Get("app_id"), r.PathValue("openid")
	u, err := s.GetUser(appID, openid)
	if err != nil {
		writeControlError(w, err)
		return
	}
	grants, _ := s.SubscriptionGrants(appID, openid)
	writeControl(w, http.StatusOK, userResult{User: *u, Grants: grants})
}

func (s *Simulator) ctlAct(w http.ResponseWriter, r *http.Request) {
	var a Action
	if err := readControl(r, &a); err != nil {
		writeControlError(w, err)
		return
	}
	res, err := s.Act(r.Context(), r.PathValue("openid"), a)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, res)
}

func (s *Simulator) ctlInbox(w http.ResponseWriter, r *http.Request) {
	items, err := s.Inbox(r.URL.Query().Get("app_id"), r.PathValue("openid"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	if items == nil {
		items = []InboxItem{}
	}
	writeControl(w, http.StatusOK, items)
}

func (s *Simulator) ctlChat(w http.ResponseWriter, r *http.Request) {
	items, err := s.Conversation(r.URL.Query().Get("app_id"), r.PathValue("openid"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	if items == nil {
		items = []InboxItem{}
	}
	writeControl(w, http.StatusOK, items)
}

// ctlMedia serves a stored file, so the phone page shows an image reply
// or a mass image as the follower would see it.
func (s *Simulator) ctlMedia(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var m *mediaFile
	if app := s.st.Apps[r.PathValue("app_id")]; app != nil {
		m = app.liveMedia(r.PathValue("media_id"), s.now())
	}
	s.mu.Unlock()
	if m == nil {
		writeControlError(w, errorf(CodeNotFound, "没有这个素材，或已过期 no such media, or it expired"))
		return
	}
	w.Header().Set("Content-Type", m.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(m.Data)
}

func (s *Simulator) ctlListFaults(w http.ResponseWriter, r *http.Request) {
	writeControl(w, http.StatusOK, s.Faults())
}

func (s *Simulator) ctlSetFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := readControl(r, &f); err != nil {
		writeControlError(w, err)
		return
	}
	id, err := s.SetFault(f)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusCreated, map[string]int{"id": id})
}

func (s *Simulator) ctlClearFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) ctlRemoveFault(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !s.RemoveFault(id) {
		writeControlError(w, errorf(CodeNotFound, "故障不存在 fault %q not found", r.PathValue("id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) ctlDomain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Down bool `json:"down"`
	}
	if err := readControl(r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	s.SetDomainDown(r.PathValue("domain"), req.Down)
	writeControl(w, http.StatusOK, map[string]any{"domain": r.PathValue("domain"), "down": req.Down})
}

func (s *Simulator) ctlReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	writeControl(w, http.StatusOK, map[string]bool{"ok": true})
}

func (s *Simulator) ctlCalls(w http.ResponseWriter, r *http.Request) {
	all := s.CallCounts()
	if appID := r.URL.Query().Get("app_id"); appID != "" {
		paths := all[appID]
		if paths == nil {
			paths = map[string]int{}
		}
		writeControl(w, http.StatusOK, paths)
		return
	}
	writeControl(w, http.StatusOK, all)
}

func (s *Simulator) ctlAlarms(w http.ResponseWriter, r *http.Request) {
	list := s.Alarms(r.URL.Query().Get("app_id"))
	if list == nil {
		list = []Alarm{}
	}
	writeControl(w, http.StatusOK, list)
}

func (s *Simulator) ctlDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list := s.Deliveries(q.Get("app_id"), q.Get("openid"))
	if list == nil {
		list = []Delivery{}
	}
	writeControl(w, http.StatusOK, list)
}
