package wechatsim

import (
	"context"
	"slices"
	"time"
)

// User is a simulated WeChat user as seen by one app.
type User struct {
	AppID   string `json:"app_id"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	// Name is shown on the simulator's page only; WeChat no longer returns
	// nicknames.
	Name           string `json:"name,omitempty"`
	Subscribed     bool   `json:"subscribe"`
	SubscribeTime  int64  `json:"subscribe_time,omitempty"` // the last follow
	SubscribeScene string `json:"subscribe_scene,omitempty"`
	QRScene        int64  `json:"qr_scene,omitempty"`
	QRSceneStr     string `json:"qr_scene_str,omitempty"`
	Language       string `json:"language"`
	Remark         string `json:"remark,omitempty"`
	TagIDs         []int  `json:"tagid_list,omitempty"`
	// BlockedTemplates: the user refused the account's template messages
	// (TEMPLATESENDJOBFINISH then reports failed:user block).
	BlockedTemplates bool      `json:"blocked_templates,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// Subscribe scenes (user/info subscribe_scene).
const (
	SceneSearch = "ADD_SCENE_SEARCH"
	SceneQRCode = "ADD_SCENE_QR_CODE"
)

// CreateUserRequest is the body of POST /sim/api/users.
type CreateUserRequest struct {
	AppID string `json:"app_id"`
	// OpenID is generated (28 characters, "o…") when empty.
	OpenID string `json:"openid,omitempty"`
	// UnionID links this user to the same person in other apps of the Open
	// Platform group; generated when empty.
	UnionID string `json:"unionid,omitempty"`
	Name    string `json:"name,omitempty"`
	// Follow makes the user follow the official account at once (a
	// subscribe push is delivered). Ignored for mini programs.
	Follow bool `json:"follow"`
	// Scene is the subscribe_scene of that follow; ADD_SCENE_SEARCH by default.
	Scene    string `json:"scene,omitempty"`
	Language string `json:"language,omitempty"`
}

// CreateUser adds a user to an app, or returns the existing one with that
// openid. With Follow the user follows (the subscribe callback is delivered
// before CreateUser returns).
func (s *Simulator) CreateUser(ctx context.Context, req CreateUserRequest) (*User, error) {
	u, _, err := s.createUser(ctx, req)
	return u, err
}

// createUser also returns the result of the follow, for the control API.
func (s *Simulator) createUser(ctx context.Context, req CreateUserRequest) (*User, *ActionResult, error) {
	s.mu.Lock()
	app := s.st.Apps[req.AppID]
	if app == nil {
		s.mu.Unlock()
		return nil, nil, errorf(CodeNotFound, "应用不存在 app %q not found", req.AppID)
	}
	u := s.st.Users[req.OpenID]
	if u != nil && u.AppID != req.AppID {
		s.mu.Unlock()
		return nil, nil, errorf(CodeConflict, "openid %s 属于另一个应用 belongs to app %s", req.OpenID, u.AppID)
	}
	if u == nil {
		openid := req.OpenID
		if openid == "" {
			openid = newOpenID(req.AppID)
		}
		unionid := req.UnionID
		if unionid == "" {
			unionid = newUnionID(app.Config.OpenPlatform)
		}
		lang := req.Language
		if lang == "" {
			lang = "zh_CN"
		}
		u = &userState{User: User{AppID: req.AppID, OpenID: openid, UnionID: unionid, Name: req.Name, Language: lang, CreatedAt: s.now()}}
		s.st.Users[openid] = u
		app.UserOrder = append(app.UserOrder, openid)
	}
	user := u.User
	follow := req.Follow && !u.Subscribed && app.Config.Kind == KindOfficialAccount
	s.mu.Unlock()

	if !follow {
		return &user, nil, nil
	}
	res, err := s.Act(ctx, user.OpenID, Action{AppID: req.AppID, Type: ActionSubscribe, Scene: req.Scene})
	if err != nil {
		return nil, nil, err
	}
	return res.User, res, nil
}

// Users lists the users of an app in creation order.
func (s *Simulator) Users(appID string) ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil, errorf(CodeNotFound, "应用不存在 app %q not found", appID)
	}
	out := make([]User, 0, len(app.UserOrder))
	for _, openid := range app.UserOrder {
		if u := s.st.Users[openid]; u != nil {
			out = append(out, u.copyUser())
		}
	}
	return out, nil
}

// GetUser returns one user; appID may be empty (openids are unique).
func (s *Simulator) GetUser(appID, openid string) (*User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _, err := s.lookupUser(appID, openid)
	if err != nil {
		return nil, err
	}
	c := u.copyUser()
	return &c, nil
}

// lookupUser finds a user and their app; callers hold s.mu.
func (s *Simulator) lookupUser(appID, openid string) (*userState, *appState, error) {
	u := s.st.Users[openid]
	if u == nil || (appID != "" && u.AppID != appID) {
		return nil, nil, errorf(CodeNotFound, "用户不存在 user %q not found", openid)
	}
	app := s.st.Apps[u.AppID]
	if app == nil {
		return nil, nil, errorf(CodeNotFound, "应用不存在 app %q not found", u.AppID)
	}
	return u, app, nil
}

func (u *userState) copyUser() User {
	c := u.User
	c.TagIDs = slices.Clone(u.TagIDs)
	return c
}

// userInfo is one entry of user/info and batchget. A follower has every
// field (zero values included, as WeChat writes them); a non-follower only
// subscribe, openid and unionid.
type userInfo struct {
	Subscribe      int     `json:"subscribe"`
	OpenID         string  `json:"openid"`
	Language       string  `json:"language,omitempty"`
	SubscribeTime  int64   `json:"subscribe_time,omitempty"`
	UnionID        string  `json:"unionid,omitempty"`
	Remark         *string `json:"remark,omitempty"`
	GroupID        *int    `json:"groupid,omitempty"`
	TagIDList      *[]int  `json:"tagid_list,omitempty"`
	SubscribeScene string  `json:"subscribe_scene,omitempty"`
	QRScene        *int64  `json:"qr_scene,omitempty"`
	QRSceneStr     *string `json:"qr_scene_str,omitempty"`
}

func (s *Simulator) userInfoOf(app *appState, u *userState) userInfo {
	info := userInfo{OpenID: u.OpenID}
	if app.Config.OpenPlatform != "" {
		info.UnionID = u.UnionID
	}
	if !u.Subscribed {
		return info
	}
	tags := slices.Clone(u.TagIDs)
	if tags == nil {
		tags = []int{}
	}
	groupID := 0
	remark, sceneStr, scene := u.Remark, u.QRSceneStr, u.QRScene
	info.Subscribe = 1
	info.Language = u.Language
	info.SubscribeTime = u.SubscribeTime
	info.Remark = &remark
	info.GroupID = &groupID
	info.TagIDList = &tags
	info.SubscribeScene = u.SubscribeScene
	info.QRScene = &scene
	info.QRSceneStr = &sceneStr
	return info
}

// appUser returns the user with that openid if they belong to app.
func (s *Simulator) appUser(app *appState, openid string) *userState {
	u := s.st.Users[openid]
	if u == nil || u.AppID != app.Config.AppID {
		return nil
	}
	return u
}

// handleUserInfo is GET /cgi-bin/user/info?openid=&lang=.
func (s *Simulator) handleUserInfo(c *apiCall) (any, *apiError) {
	openid := c.query("openid")
	if openid == "" {
		return nil, wxErrf(41009, "missing openid")
	}
	u := s.appUser(c.app, openid)
	if u == nil {
		return nil, wxErr(40003)
	}
	return s.userInfoOf(c.app, u), nil
}

// maxBatchGet is the batchget limit; more is 40032, WeChat's code for an
// openid list of the wrong size.
const maxBatchGet = 100

// handleUserBatchGet is POST /cgi-bin/user/info/batchget.
func (s *Simulator) handleUserBatchGet(c *apiCall) (any, *apiError) {
	var req struct {
		UserList []struct {
			OpenID string `json:"openid"`
			Lang   string `json:"lang"`
		} `json:"user_list"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if len(req.UserList) == 0 || len(req.UserList) > maxBatchGet {
		return nil, wxErr(40032)
	}
	out := make([]userInfo, 0, len(req.UserList))
	for _, item := range req.UserList {
		u := s.appUser(c.app, item.OpenID)
		if u == nil {
			return nil, wxErr(40003)
		}
		out = append(out, s.userInfoOf(c.app, u))
	}
	return struct {
		UserInfoList []userInfo `json:"user_info_list"`
	}{out}, nil
}

// userGetPageSize is user/get's page size.
const userGetPageSize = 10000

type userGetAnswer struct {
	Total      int          `json:"total"`
	Count      int          `json:"count"`
	Data       *openidsData `json:"data,omitempty"`
	NextOpenID string       `json:"next_openid"`
}

type openidsData struct {
	OpenID []string `json:"openid"`
}

// handleUserGet is GET /cgi-bin/user/get?next_openid=: followers in the
// order they were created, 10 000 per page. A full page names its last
// openid as next_openid; a short page (the last) has an empty next_openid;
// asking past the end gives count 0 and no data.
func (s *Simulator) handleUserGet(c *apiCall) (any, *apiError) {
	var followers []string
	for _, openid := range c.app.UserOrder {
		if u := s.st.Users[openid]; u != nil && u.Subscribed {
			followers = append(followers, openid)
		}
	}
	start := 0
	if next := c.query("next_openid"); next != "" {
		i := slices.Index(followers, next)
		if i < 0 {
			if s.appUser(c.app, next) == nil {
				return nil, wxErr(40003)
			}
			// A user who unfollowed since: continue after where they were.
			i = s.positionAfter(c.app, next, followers) - 1
		}
		start = i + 1
	}
	page := followers[start:min(start+userGetPageSize, len(followers))]
	ans := userGetAnswer{Total: len(followers), Count: len(page)}
	if len(page) > 0 {
		ans.Data = &openidsData{OpenID: slices.Clone(page)}
	}
	if len(page) == userGetPageSize {
		ans.NextOpenID = page[len(page)-1]
	}
	return ans, nil
}

// positionAfter finds where a non-follower would sit in the follower list.
func (s *Simulator) positionAfter(app *appState, openid string, followers []string) int {
	pos := 0
	for _, id := range app.UserOrder {
		if id == openid {
			return pos
		}
		if pos < len(followers) && followers[pos] == id {
			pos++
		}
	}
	return pos
}
