package wechatsim

import (
	"net/http"
	"time"
)

// Mini program login (protocol doc §5.12).

const jscodeMinuteLimit = 100 // calls per user per minute

type sessionAnswer struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid,omitempty"`
}

// handleJSCode2Session is GET /sns/jscode2session. Codes come from the
// phone's open_miniprogram action: single use (40163 the second time),
// five minutes (40029 after, and for codes never issued or issued to
// another app). POST gives 41002 as WeChat does, since it reads the query
// only. Each login issues a new session_key.
func (s *Simulator) handleJSCode2Session(c *apiCall) (any, *apiError) {
	if c.r.Method != http.MethodGet {
		return nil, wxErr(41002)
	}
	q := c.r.URL.Query()
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	switch {
	case appID == "":
		return nil, wxErr(41002)
	case secret == "":
		return nil, wxErr(41004)
	case code == "":
		return nil, wxErr(41008)
	case q.Get("grant_type") != "authorization_code":
		return nil, wxErr(40002)
	}
	app := s.st.Apps[appID]
	if app == nil || app.Config.Kind != KindMiniProgram {
		return nil, wxErr(40013)
	}
	if secret != app.Config.AppSecret {
		return nil, wxErr(40125)
	}
	lc := s.st.Codes[code]
	if lc == nil || lc.AppID != appID || !c.now.Before(lc.ExpiresAt) {
		return nil, wxErr(40029)
	}
	if lc.Used {
		return nil, wxErr(40163)
	}
	u := s.st.Users[lc.OpenID]
	if u == nil {
		return nil, wxErr(40029)
	}
	if s.jscodeCallsLastMinute(u, c.now) >= jscodeMinuteLimit {
		return nil, wxErr(45011)
	}
	lc.Used, lc.UsedAt = true, c.now
	u.SessionKey = newSessionKey()
	ans := sessionAnswer{OpenID: u.OpenID, SessionKey: u.SessionKey}
	if app.Config.OpenPlatform != "" {
		ans.UnionID = u.UnionID
	}
	return ans, nil
}

// jscodeCallsLastMinute counts the user's logins of the last minute.
func (s *Simulator) jscodeCallsLastMinute(u *userState, now time.Time) int {
	n := 0
	for _, lc := range s.st.Codes {
		if lc.OpenID == u.OpenID && lc.Used && now.Sub(lc.UsedAt) < time.Minute {
			n++
		}
	}
	return n
}
