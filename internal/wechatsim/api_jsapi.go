package wechatsim

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// jsapiTicketLifetime is the validity WeChat gives a JS-SDK ticket.
const jsapiTicketLifetime = 7200

// handleGetTicket is GET /cgi-bin/ticket/getticket?type=jsapi|wx_card: the
// ticket web pages sign wx.config with. It stays the same for one app and
// type within a two-hour window, as WeChat's does while valid.
func (s *Simulator) handleGetTicket(c *apiCall) (any, *apiError) {
	kind := c.query("type")
	if kind != "jsapi" && kind != "wx_card" {
		return nil, wxErrf(40097, "invalid args")
	}
	window := c.now.Unix() / jsapiTicketLifetime
	sum := sha256.Sum256([]byte(c.app.Config.AppID + "|" + kind + "|" + strconv.FormatInt(window, 10)))
	ticket := "sM4AOVdWfPE4DxkXGEs8V" + base64.RawURLEncoding.EncodeToString(sum[:])
	return struct {
		ErrCode   int    `json:"errcode"`
		ErrMsg    string `json:"errmsg"`
		Ticket    string `json:"ticket"`
		ExpiresIn int64  `json:"expires_in"`
	}{0, "ok", ticket, (window+1)*jsapiTicketLifetime - c.now.Unix()}, nil
}

// handleUpdateRemark is POST /cgi-bin/user/info/updateremark.
func (s *Simulator) handleUpdateRemark(c *apiCall) (any, *apiError) {
	var req struct {
		OpenID string `json:"openid"`
		Remark string `json:"remark"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if len(req.Remark) > 30*3 {
		return nil, wxErrf(45003, "remark size out of limit")
	}
	u := s.appUser(c.app, req.OpenID)
	if u == nil {
		return nil, wxErr(40003)
	}
	u.Remark = req.Remark
	return okAnswer, nil
}
