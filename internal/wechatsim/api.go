package wechatsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// This file is the frame every WeChat API endpoint runs in: the route table,
// call counting, fault injection, access_token checks, daily quotas and the
// response format (HTTP 200, errcode/errmsg with a rid, Content-Types).

const (
	contentTypeJSON  = "application/json; encoding=utf-8"
	contentTypePlain = "text/plain"
	maxAPIBody       = 4 << 20
)

// apiError is a WeChat errcode answer.
type apiError struct {
	Code int
	Msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("errcode %d: %s", e.Code, e.Msg) }

// wxErr builds an errcode answer with WeChat's usual errmsg for the code.
func wxErr(code int) *apiError { return &apiError{Code: code, Msg: errmsgFor(code)} }

// wxErrf builds an errcode answer with a specific errmsg.
func wxErrf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errmsgs are the errmsg texts WeChat writes (without the rid suffix).
var errmsgs = map[int]string{
	-1:    "system error",
	40001: "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",
	40002: "invalid grant_type",
	40003: "invalid openid",
	40004: "invalid media type",
	40005: "invalid file type",
	40006: "invalid meida size",
	40007: "invalid media_id",
	40008: "invalid message type",
	40013: "invalid appid",
	40014: "invalid access_token",
	40016: "invalid button size",
	40017: "invalid button type",
	40018: "invalid button name size",
	40019: "invalid button key size",
	40020: "invalid button url size",
	40023: "invalid sub button size",
	40024: "invalid sub button type",
	40025: "invalid sub button name size",
	40026: "invalid sub button key size",
	40027: "invalid sub button url size",
	40029: "invalid code",
	40032: "invalid openid list size",
	40037: "invalid template_id",
	40059: "invalid msg id",
	40052: "invalid action name",
	40053: "invalid action info, please check document",
	40125: "invalid appsecret",
	40163: "code been used",
	40201: "invalid url",
	40202: "invalid action",
	40203: "invalid check operator",
	41001: "access_token missing",
	41002: "appid missing",
	41004: "appsecret missing",
	41005: "media data missing",
	41008: "missing code",
	42001: "access_token expired",
	43004: "require subscribe",
	43101: "user refuse to accept the msg",
	44002: "empty post data",
	44004: "empty content",
	45008: "article size out of limit",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit mustslower retry next minute",
	45015: "response out of time limit or subscription is canceled",
	45026: "template num exceeds limit",
	45028: "has no masssend quota",
	45047: "out of response count limit",
	45056: "too many tags",
	45057: "can't delete the tag that has too many fans",
	45058: "can't modify sys tag",
	45059: "too many tag now, no need to add new",
	45065: "clientmsgid exist",
	45066: "same clientmsgid retry too fast",
	45067: "clientmsgid size out of limit",
	45157: "invalid tag name",
	45158: "tag name too long",
	45159: "invalid tag id",
	46003: "menu no exist",
	47001: "data format error",
	47003: "argument invalid!",
	48001: "api unauthorized",
	48006: "forbid to clear quota because of reaching the limit",
	65301: "no conditional menu of this menuid",
	65302: "no such user",
	65303: "there is no selfmenu, please create selfmenu first",
	65304: "match rule empty",
	65316: "invalid url domain",
	65320: "matchrule contains privacy information (sex, region or language), which is no longer supported",
}

func errmsgFor(code int) string {
	if msg, ok := errmsgs[code]; ok {
		return msg
	}
	return "system error"
}

// apiCall is one request to the fake API as its handler sees it.
type apiCall struct {
	r     *http.Request
	now   time.Time
	body  []byte
	app   *appState    // the app of the access_token (auth routes)
	token *tokenRecord // nil on routes without access_token
}

func (c *apiCall) query(name string) string { return c.r.URL.Query().Get(name) }

// decode unmarshals the JSON body: 44002 when empty, 47001 when malformed.
func (c *apiCall) decode(v any) *apiError {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return wxErr(44002)
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return wxErrf(47001, "data format error")
	}
	return nil
}

type apiHandler func(c *apiCall) (any, *apiError)

type apiRoute struct {
	path string
	// auth routes take ?access_token= and run with the token's app.
	auth bool
	// kinds limits the route to apps of these kinds (48001 otherwise); nil
	// means every kind.
	kinds []string
	// unlocked handlers take s.mu themselves because they do I/O.
	unlocked bool
	// maxBody overrides maxAPIBody (uploads).
	maxBody int64
	handle  apiHandler
}

var (
	onlyOA = []string{KindOfficialAccount}
	onlyMP = []string{KindMiniProgram}
)

func (s *Simulator) apiRoutes() []apiRoute {
	return []apiRoute{
		{path: "/cgi-bin/token", handle: s.handleToken},
		{path: "/cgi-bin/stable_token", handle: s.handleStableToken},
		{path: "/cgi-bin/user/info", auth: true, kinds: onlyOA, handle: s.handleUserInfo},
		{path: "/cgi-bin/user/info/batchget", auth: true, kinds: onlyOA, handle: s.handleUserBatchGet},
		{path: "/cgi-bin/user/get", auth: true, kinds: onlyOA, handle: s.handleUserGet},
		{path: "/cgi-bin/user/info/updateremark", auth: true, kinds: onlyOA, handle: s.handleUpdateRemark},
		{path: "/cgi-bin/ticket/getticket", auth: true, kinds: onlyOA, handle: s.handleGetTicket},
		{path: "/cgi-bin/message/template/send", auth: true, kinds: onlyOA, handle: s.handleTemplateSend},
		{path: "/cgi-bin/template/get_all_private_template", auth: true, kinds: onlyOA, handle: s.handleTemplateList},
		{path: "/cgi-bin/template/api_add_template", auth: true, kinds: onlyOA, handle: s.handleTemplateAdd},
		{path: "/cgi-bin/template/del_private_template", auth: true, kinds: onlyOA, handle: s.handleTemplateDelete},
		{path: "/cgi-bin/message/subscribe/bizsend", auth: true, kinds: onlyOA, handle: s.handleBizSend},
		{path: "/cgi-bin/message/subscribe/send", auth: true, kinds: onlyMP, handle: s.handleSubscribeSend},
		{path: "/wxaapi/newtmpl/gettemplate", auth: true, handle: s.handleSubscribeTemplateList},
		{path: "/cgi-bin/message/custom/send", auth: true, handle: s.handleCustomSend},
		{path: "/cgi-bin/message/custom/typing", auth: true, handle: s.handleCustomTyping},
		{path: "/cgi-bin/qrcode/create", auth: true, kinds: onlyOA, handle: s.handleQRCreate},
		{path: "/cgi-bin/menu/create", auth: true, kinds: onlyOA, handle: s.handleMenuCreate},
		{path: "/cgi-bin/menu/get", auth: true, kinds: onlyOA, handle: s.handleMenuGet},
		{path: "/cgi-bin/menu/delete", auth: true, kinds: onlyOA, handle: s.handleMenuDelete},
		{path: "/cgi-bin/menu/addconditional", auth: true, kinds: onlyOA, handle: s.handleMenuAddConditional},
		{path: "/cgi-bin/menu/delconditional", auth: true, kinds: onlyOA, handle: s.handleMenuDelConditional},
		{path: "/cgi-bin/menu/trymatch", auth: true, kinds: onlyOA, handle: s.handleMenuTryMatch},
		{path: "/sns/jscode2session", handle: s.handleJSCode2Session},
		{path: "/cgi-bin/getcallbackip", auth: true, handle: s.handleCallbackIP},
		{path: "/cgi-bin/get_api_domain_ip", auth: true, handle: s.handleAPIDomainIP},
		{path: "/cgi-bin/callback/check", auth: true, unlocked: true, handle: s.handleCallbackCheck},
		{path: "/cgi-bin/clear_quota", auth: true, handle: s.handleClearQuota},
		{path: "/cgi-bin/tags/create", auth: true, kinds: onlyOA, handle: s.handleTagCreate},
		{path: "/cgi-bin/tags/get", auth: true, kinds: onlyOA, handle: s.handleTagGet},
		{path: "/cgi-bin/tags/update", auth: true, kinds: onlyOA, handle: s.handleTagUpdate},
		{path: "/cgi-bin/tags/delete", auth: true, kinds: onlyOA, handle: s.handleTagDelete},
		{path: "/cgi-bin/tags/members/batchtagging", auth: true, kinds: onlyOA, handle: s.handleTagBatchTagging},
		{path: "/cgi-bin/tags/members/batchuntagging", auth: true, kinds: onlyOA, handle: s.handleTagBatchUntagging},
		{path: "/cgi-bin/tags/getidlist", auth: true, kinds: onlyOA, handle: s.handleTagIDList},
		{path: "/cgi-bin/user/tag/get", auth: true, kinds: onlyOA, handle: s.handleTagUsers},
		{path: "/cgi-bin/media/upload", auth: true, maxBody: maxMediaBody, handle: s.handleMediaUpload},
		{path: "/cgi-bin/media/get", auth: true, handle: s.handleMediaGet},
		{path: "/cgi-bin/media/uploadimg", auth: true, kinds: onlyOA, maxBody: maxMediaBody, handle: s.handleUploadNewsImage},
		{path: "/cgi-bin/material/add_material", auth: true, kinds: onlyOA, maxBody: maxMediaBody, handle: s.handleAddMaterial},
		{path: "/cgi-bin/material/get_material", auth: true, kinds: onlyOA, handle: s.handleGetMaterial},
		{path: "/cgi-bin/material/del_material", auth: true, kinds: onlyOA, handle: s.handleDelMaterial},
		{path: "/cgi-bin/material/get_materialcount", auth: true, kinds: onlyOA, handle: s.handleMaterialCount},
		{path: "/cgi-bin/material/batchget_material", auth: true, kinds: onlyOA, handle: s.handleBatchGetMaterial},
		{path: "/cgi-bin/message/mass/sendall", auth: true, kinds: onlyOA, handle: s.handleMassSendAll},
		{path: "/cgi-bin/message/mass/send", auth: true, kinds: onlyOA, handle: s.handleMassSend},
		{path: "/cgi-bin/message/mass/preview", auth: true, kinds: onlyOA, handle: s.handleMassPreview},
		{path: "/cgi-bin/message/mass/delete", auth: true, kinds: onlyOA, handle: s.handleMassDelete},
		{path: "/cgi-bin/message/mass/get", auth: true, kinds: onlyOA, handle: s.handleMassGet},
	}
}

// serveAPI wraps one endpoint: count the call, apply faults, check the
// token, run the handler, write the answer.
func (s *Simulator) serveAPI(route apiRoute) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := int64(maxAPIBody)
		if route.maxBody > 0 {
			limit = route.maxBody
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit))
		if err != nil {
			return // the client went away
		}
		c := &apiCall{r: r, now: s.now(), body: body}

		appID := s.identifyApp(route, c)
		s.countCall(appID, route.path)

		fault := s.pickFault(domainOf(r), appID, route.path)
		if fault != nil {
			if !s.applyFault(r, fault) {
				return
			}
			if fault.ErrCode != 0 {
				msg := fault.ErrMsg
				if msg == "" {
					msg = errmsgFor(fault.ErrCode)
				}
				s.writeAPIError(w, r, c.now, &apiError{Code: fault.ErrCode, Msg: msg})
				return
			}
		}

		result, apiErr := s.runAPI(route, c)
		if fault != nil && fault.LoseAnswer {
			s.loseAnswer(r)
			return
		}
		if apiErr != nil {
			s.writeAPIError(w, r, c.now, apiErr)
			return
		}
		switch v := result.(type) {
		case rawResponse:
			for k, vals := range v.header {
				w.Header()[k] = vals
			}
			w.Header().Set("Content-Type", v.contentType)
			w.WriteHeader(v.status)
			_, _ = w.Write(v.body)
		default:
			writeJSON(w, contentTypeFor(r), http.StatusOK, v)
		}
	}
}

func (s *Simulator) runAPI(route apiRoute, c *apiCall) (any, *apiError) {
	if !route.auth {
		if route.unlocked {
			return route.handle(c)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return route.handle(c)
	}
	s.mu.Lock()
	if apiErr := s.authenticate(route, c); apiErr != nil {
		s.mu.Unlock()
		return nil, apiErr
	}
	if apiErr := c.app.checkQuota(route.path, c.now); apiErr != nil {
		s.mu.Unlock()
		return nil, apiErr
	}
	if route.unlocked {
		s.mu.Unlock()
		result, apiErr := route.handle(c)
		if apiErr == nil {
			s.mu.Lock()
			c.app.useQuota(route.path, c.now)
			s.mu.Unlock()
		}
		return result, apiErr
	}
	defer s.mu.Unlock()
	result, apiErr := route.handle(c)
	if apiErr == nil {
		c.app.useQuota(route.path, c.now)
	}
	return result, apiErr
}

// authenticate resolves ?access_token= to its app; callers hold s.mu.
func (s *Simulator) authenticate(route apiRoute, c *apiCall) *apiError {
	tok := c.query("access_token")
	if tok == "" {
		return wxErr(41001)
	}
	rec, apiErr := s.checkToken(tok, c.now)
	if apiErr != nil {
		return apiErr
	}
	app := s.st.Apps[rec.AppID]
	if app == nil {
		return wxErr(40001)
	}
	if route.kinds != nil && !slices.Contains(route.kinds, app.Config.Kind) {
		return wxErr(48001)
	}
	c.app, c.token = app, rec
	return nil
}

// identifyApp finds which app a call is for, before any check, so that call
// counts and per-app faults see every call, failing ones included.
func (s *Simulator) identifyApp(route apiRoute, c *apiCall) string {
	if route.auth {
		s.mu.Lock()
		defer s.mu.Unlock()
		if rec := s.st.Tokens[c.query("access_token")]; rec != nil {
			return rec.AppID
		}
		return ""
	}
	if id := c.query("appid"); id != "" {
		return id
	}
	var body struct {
		AppID string `json:"appid"`
	}
	_ = json.Unmarshal(c.body, &body)
	return body.AppID
}

func (s *Simulator) countCall(appID, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.calls[appID]
	if m == nil {
		m = map[string]int{}
		s.calls[appID] = m
	}
	m[path]++
}

// CallCount reports how many times an API path was called for an app
// (failed calls included); appID "" counts calls that named no known app.
func (s *Simulator) CallCount(appID, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[appID][path]
}

// CallCounts returns every call count: app id → path → count.
func (s *Simulator) CallCounts() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int, len(s.calls))
	for app, paths := range s.calls {
		m := make(map[string]int, len(paths))
		for p, n := range paths {
			m[p] = n
		}
		out[app] = m
	}
	return out
}

// rawResponse lets a handler answer something other than JSON (the QR image).
type rawResponse struct {
	status      int
	contentType string
	body        []byte
	header      http.Header
}

func contentTypeFor(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/sns/") {
		return contentTypePlain
	}
	return contentTypeJSON
}

func (s *Simulator) writeAPIError(w http.ResponseWriter, r *http.Request, now time.Time, e *apiError) {
	writeJSON(w, contentTypeFor(r), http.StatusOK, errorBody{ErrCode: e.Code, ErrMsg: e.Msg + " rid: " + rid(now)})
}

type errorBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// okBody is the answer of action APIs.
type okBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

var okAnswer = okBody{ErrCode: 0, ErrMsg: "ok"}

// writeJSON writes v without HTML escaping (WeChat writes & < > literally)
// and without a trailing newline.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

// Daily quotas of a new account (protocol doc §7); a test account gets a
// tenth. AppConfig.Quotas overrides them per path.
var dailyQuotas = map[string]int{
	"/cgi-bin/token":                 2000,
	"/cgi-bin/stable_token":          500000,
	"/cgi-bin/menu/create":           1000,
	"/cgi-bin/menu/get":              10000,
	"/cgi-bin/menu/delete":           1000,
	"/cgi-bin/menu/addconditional":   2000,
	"/cgi-bin/menu/delconditional":   2000,
	"/cgi-bin/menu/trymatch":         20000,
	"/cgi-bin/message/custom/send":   500000,
	"/cgi-bin/qrcode/create":         100000,
	"/cgi-bin/user/get":              500,
	"/cgi-bin/user/info":             5000000,
	"/cgi-bin/user/info/batchget":    5000000,
	"/cgi-bin/message/template/send": 100000,
	"/cgi-bin/media/upload":          100000,
	"/cgi-bin/media/get":             200000,
	"/cgi-bin/message/mass/sendall":  100,
}

type quotaCounter struct {
	Day   string `json:"day"`
	Count int    `json:"count"`
}

func (a *appState) quotaLimit(path string) int {
	if n, ok := a.Config.Quotas[path]; ok {
		return n
	}
	n, ok := dailyQuotas[path]
	if !ok {
		return 0
	}
	if a.Config.Test {
		n /= 10
	}
	return n
}

// checkQuota answers 45009 once the day's calls of path reached the limit.
func (a *appState) checkQuota(path string, now time.Time) *apiError {
	limit := a.quotaLimit(path)
	if limit == 0 {
		return nil
	}
	if q := a.Quota[path]; q != nil && q.Day == wechat.QuotaDay(now) && q.Count >= limit {
		return wxErr(45009)
	}
	return nil
}

// useQuota counts one successful call of path.
func (a *appState) useQuota(path string, now time.Time) {
	if a.quotaLimit(path) == 0 {
		return
	}
	day := wechat.QuotaDay(now)
	q := a.Quota[path]
	if q == nil || q.Day != day {
		q = &quotaCounter{Day: day}
		a.Quota[path] = q
	}
	q.Count++
}
