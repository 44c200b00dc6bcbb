package wechatsim

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Bulk paths of the control API, for load tests and large end-to-end tests:
// tens of thousands of followers are created in one call, and what they
// received is counted in one call instead of one inbox read per user.
//
//	POST /sim/api/users/bulk {"app_id": "wx…", "count": 10000, "follow": true}
//	  → 201 {"app_id": "wx…", "openids": ["o…", …]}
//	GET  /sim/api/apps/{app_id}/inbox_stats?kind=template[&template_id=…]
//	  → 200 InboxStats

// MaxBulkUsers bounds one bulk creation.
const MaxBulkUsers = 200_000

// receivedKinds are the kinds InboxStats counts.
var receivedKinds = []string{ItemTemplate, ItemSubscribe, ItemCustom, ItemReply, ItemSystem}

// maxStatsExamples bounds the openids listed per anomaly in InboxStats.
const maxStatsExamples = 100

// BulkUsersRequest is the body of POST /sim/api/users/bulk.
type BulkUsersRequest struct {
	AppID string `json:"app_id"`
	Count int    `json:"count"`
	// Follow makes the users followers of the official account, as
	// followers who followed before the account's server was configured:
	// no subscribe push is delivered. Ignored for mini programs.
	Follow bool `json:"follow"`
	// Scene is the subscribe_scene of the follow; ADD_SCENE_SEARCH by default.
	Scene    string `json:"scene,omitempty"`
	Language string `json:"language,omitempty"`
}

// BulkUsersResult is the answer of POST /sim/api/users/bulk.
type BulkUsersResult struct {
	AppID   string   `json:"app_id"`
	OpenIDs []string `json:"openids"`
}

// InboxStats counts, for every user of an app, the items of one kind in
// their inbox.
type InboxStats struct {
	AppID      string `json:"app_id"`
	Kind       string `json:"kind"`
	TemplateID string `json:"template_id,omitempty"`
	// Users is the number of users of the app; Items the items counted.
	Users int `json:"users"`
	Items int `json:"items"`
	// Histogram maps an item count to the number of users with that many
	// ("0", "1", "2" …).
	Histogram map[string]int `json:"histogram"`
	// None and Several list up to 100 users (in creation order) who have no
	// such item, and who have more than one.
	None    []string `json:"none"`
	Several []string `json:"several"`
	// MaxPerSecond is the most items that arrived within any one second:
	// what a sender's rate limit must keep under its rate plus burst.
	MaxPerSecond int `json:"max_per_second"`
}

func (s *Simulator) bulkRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /sim/api/users/bulk", s.ctlBulkUsers)
	mux.HandleFunc("GET /sim/api/apps/{app_id}/inbox_stats", s.ctlInboxStats)
}

// CreateUsers adds count new users to an app in one step and returns
// their openids in creation order. With Follow they are followers at once,
// without a subscribe push.
func (s *Simulator) CreateUsers(req BulkUsersRequest) ([]string, error) {
	if req.AppID == "" {
		return nil, errorf(CodeInvalid, "缺少 app_id: app_id is required")
	}
	if req.Count < 1 || req.Count > MaxBulkUsers {
		return nil, errorf(CodeInvalid, "count 必须在 1 到 %d 之间 count must be between 1 and %d, got %d", MaxBulkUsers, MaxBulkUsers, req.Count)
	}
	scene := req.Scene
	if scene == "" {
		scene = SceneSearch
	}
	lang := req.Language
	if lang == "" {
		lang = "zh_CN"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[req.AppID]
	if app == nil {
		return nil, errorf(CodeNotFound, "应用不存在 app %q not found", req.AppID)
	}
	follow := req.Follow && app.Config.Kind == KindOfficialAccount
	now := s.now()
	openids := make([]string, 0, req.Count)
	for len(openids) < req.Count {
		openid := newOpenID(req.AppID)
		if s.st.Users[openid] != nil {
			continue
		}
		u := &userState{User: User{AppID: req.AppID, OpenID: openid, UnionID: newUnionID(app.Config.OpenPlatform),
			Language: lang, CreatedAt: now}}
		if follow {
			u.follow(now, scene, 0, "")
		}
		s.st.Users[openid] = u
		app.UserOrder = append(app.UserOrder, openid)
		openids = append(openids, openid)
	}
	return openids, nil
}

// InboxStats counts the items of kind (ItemTemplate, ItemSubscribe,
// ItemCustom …) each user of an app received, optionally only those of one
// template.
func (s *Simulator) InboxStats(appID, kind, templateID string) (*InboxStats, error) {
	if !slices.Contains(receivedKinds, kind) {
		return nil, errorf(CodeInvalid, "kind 无效 kind %q: want template, subscribe, custom, reply or system", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil, errorf(CodeNotFound, "应用不存在 app %q not found", appID)
	}
	st := &InboxStats{AppID: appID, Kind: kind, TemplateID: templateID, Histogram: map[string]int{}, None: []string{}, Several: []string{}}
	var arrivals []time.Time
	for _, openid := range app.UserOrder {
		u := s.st.Users[openid]
		if u == nil {
			continue
		}
		st.Users++
		n := 0
		for _, it := range u.Chat {
			if it.Kind == kind && (templateID == "" || it.TemplateID == templateID) {
				n++
				arrivals = append(arrivals, it.Time)
			}
		}
		st.Items += n
		st.Histogram[strconv.Itoa(n)]++
		switch {
		case n == 0 && len(st.None) < maxStatsExamples:
			st.None = append(st.None, openid)
		case n > 1 && len(st.Several) < maxStatsExamples:
			st.Several = append(st.Several, openid)
		}
	}
	st.MaxPerSecond = maxWithin(arrivals, time.Second)
	return st, nil
}

// maxWithin is the most of times that fall within any window of length w.
func maxWithin(times []time.Time, w time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func (s *Simulator) ctlBulkUsers(w http.ResponseWriter, r *http.Request) {
	var req BulkUsersRequest
	if err := readControl(r, &req); err != nil {
		writeControlError(w, err)
		return
	}
	openids, err := s.CreateUsers(req)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusCreated, BulkUsersResult{AppID: req.AppID, OpenIDs: openids})
}

func (s *Simulator) ctlInboxStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	st, err := s.InboxStats(r.PathValue("app_id"), q.Get("kind"), q.Get("template_id"))
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, st)
}
