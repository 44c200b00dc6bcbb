package wechatsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	qrcode "github.com/skip2/go-qrcode"
)

// Parametric QR codes (protocol doc §5.10).
const (
	qrDefaultExpiry   = 60 * time.Second
	qrMaxExpiry       = 2592000 * time.Second
	qrPermanentMax    = 100000 // codes per account, and the largest permanent scene_id
	qrSceneStrMaxLen  = 64
	qrImageSize       = 430
	defaultQRURLBase  = "http://weixin.qq.com"
	qrURLPathPrefix   = "/q/"
	actionQRScene     = "QR_SCENE"
	actionQRStrScene  = "QR_STR_SCENE"
	actionQRLimit     = "QR_LIMIT_SCENE"
	actionQRLimitStr  = "QR_LIMIT_STR_SCENE"
	maxTemporaryCodes = 200000
)

type qrCreateRequest struct {
	ExpireSeconds json.Number `json:"expire_seconds"`
	ActionName    string      `json:"action_name"`
	ActionInfo    struct {
		Scene struct {
			SceneID  json.Number `json:"scene_id"`
			SceneStr *string     `json:"scene_str"`
		} `json:"scene"`
	} `json:"action_info"`
}

type qrCreateAnswer struct {
	Ticket        string `json:"ticket"`
	ExpireSeconds int64  `json:"expire_seconds,omitempty"`
	URL           string `json:"url"`
}

// handleQRCreate is POST /cgi-bin/qrcode/create. Temporary codes default to
// 60 s and are capped at 30 days (a longer expire_seconds is capped, not
// refused); a permanent code for a scene that already has one returns the
// same ticket, so the 100 000 cap counts distinct scenes.
func (s *Simulator) handleQRCreate(c *apiCall) (any, *apiError) {
	var req qrCreateRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	scene := req.ActionInfo.Scene
	t := &qrTicket{AppID: c.app.Config.AppID, Action: req.ActionName, CreatedAt: c.now}
	permanent := false
	switch req.ActionName {
	case actionQRScene, actionQRLimit:
		id, err := scene.SceneID.Int64()
		if err != nil || id <= 0 || id > 1<<32-1 {
			return nil, wxErr(40053)
		}
		if req.ActionName == actionQRLimit && (id < 1 || id > qrPermanentMax) {
			return nil, wxErr(40053)
		}
		t.SceneID = id
		permanent = req.ActionName == actionQRLimit
	case actionQRStrScene, actionQRLimitStr:
		if scene.SceneStr == nil {
			return nil, wxErr(40053)
		}
		n := utf8.RuneCountInString(*scene.SceneStr)
		if n < 1 || n > qrSceneStrMaxLen {
			return nil, wxErr(40053)
		}
		t.SceneStr = *scene.SceneStr
		permanent = req.ActionName == actionQRLimitStr
	default:
		return nil, wxErr(40052)
	}

	if permanent {
		key := t.scene()
		if existing := s.st.Tickets[c.app.PermanentQR[key]]; existing != nil {
			return qrCreateAnswer{Ticket: existing.Ticket, URL: existing.URL}, nil
		}
		if len(c.app.PermanentQR) >= qrPermanentMax {
			return nil, wxErrf(45009, "reach max api daily quota limit, permanent qrcode count exceeds %d", qrPermanentMax)
		}
	} else {
		expiry := qrDefaultExpiry
		if req.ExpireSeconds != "" {
			secs, err := req.ExpireSeconds.Int64()
			if err != nil {
				return nil, wxErrf(47001, "data format error")
			}
			if secs > 0 {
				expiry = min(time.Duration(secs)*time.Second, qrMaxExpiry)
			}
		}
		t.ExpiresAt = c.now.Add(expiry)
		s.pruneTickets(c.now)
	}

	t.Code = newQRCodePath()
	t.URL = s.qrURLBase() + qrURLPathPrefix + t.Code
	t.Ticket = newTicket(t.URL, t.ExpiresAt)
	s.st.Tickets[t.Ticket] = t
	if permanent {
		c.app.PermanentQR[t.scene()] = t.Ticket
		return qrCreateAnswer{Ticket: t.Ticket, URL: t.URL}, nil
	}
	return qrCreateAnswer{Ticket: t.Ticket, ExpireSeconds: int64(t.ExpiresAt.Sub(c.now) / time.Second), URL: t.URL}, nil
}

func (s *Simulator) qrURLBase() string {
	if s.cfg.PublicBaseURL != "" {
		return strings.TrimRight(s.cfg.PublicBaseURL, "/")
	}
	return defaultQRURLBase
}

// pruneTickets forgets temporary codes expired for a day; callers hold s.mu.
func (s *Simulator) pruneTickets(now time.Time) {
	if len(s.st.Tickets) < maxTemporaryCodes/2 {
		return
	}
	for k, t := range s.st.Tickets {
		if !t.ExpiresAt.IsZero() && now.Sub(t.ExpiresAt) > 24*time.Hour {
			delete(s.st.Tickets, k)
		}
	}
}

// findTicket finds a QR code by ticket or by the url it encodes (what a
// phone reads from the image); callers hold s.mu.
func (s *Simulator) findTicket(ticket, url string) (*qrTicket, error) {
	if ticket == "" && url == "" {
		return nil, errorf(CodeInvalid, "缺少 ticket 或 url: scan needs the QR ticket or its url")
	}
	if ticket != "" {
		if t := s.st.Tickets[ticket]; t != nil {
			return t, nil
		}
		return nil, errorf(CodeNotFound, "二维码不存在 QR ticket not found")
	}
	code := url
	if i := strings.LastIndex(url, qrURLPathPrefix); i >= 0 {
		code = url[i+len(qrURLPathPrefix):]
	}
	for _, t := range s.st.Tickets {
		if t.URL == url || t.Code == code {
			return t, nil
		}
	}
	return nil, errorf(CodeNotFound, "二维码不存在 no QR code encodes %q", url)
}

// serveShowQRCode is GET /cgi-bin/showqrcode?ticket=: the QR image (no
// access_token), HTTP 404 for an unknown or expired ticket.
func (s *Simulator) serveShowQRCode(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	t := s.st.Tickets[ticket]
	if t == nil && strings.Contains(ticket, " ") {
		// Several SDKs put the ticket in the URL without encoding it, so a
		// "+" of its base64 arrives as a space: read it back as "+".
		t = s.st.Tickets[strings.ReplaceAll(ticket, " ", "+")]
	}
	var content string
	if t != nil && !t.expired(s.now()) {
		content = t.URL
	}
	appID := ""
	if t != nil {
		appID = t.AppID
	}
	s.mu.Unlock()
	s.countCall(appID, "/cgi-bin/showqrcode")
	if content == "" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	png, err := qrcode.Encode(content, qrcode.Medium, qrImageSize)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode QR: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(png)
}

// serveQRURL answers the url a QR code encodes (what a camera app would
// open) with a short page: it cannot follow the account outside WeChat.
func (s *Simulator) serveQRURL(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimPrefix(r.URL.Path, qrURLPathPrefix)
	s.mu.Lock()
	var found *qrTicket
	for _, t := range s.st.Tickets {
		if t.Code == code {
			c := *t
			found = &c
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "请使用微信扫一扫 Scan with WeChat: scene %s of %s.\nIn the simulator, use the scan action with this url or ticket.\n", found.scene(), found.AppID)
}

// QRCode describes a QR code of an app, for the control API and the page.
type QRCode struct {
	Ticket    string    `json:"ticket"`
	URL       string    `json:"url"`
	Action    string    `json:"action_name"`
	Scene     string    `json:"scene"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Expired   bool      `json:"expired"`
}

// QRCodes lists an app's QR codes, newest first.
func (s *Simulator) QRCodes(appID string) []QRCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []QRCode
	for _, t := range s.st.Tickets {
		if t.AppID == appID {
			out = append(out, QRCode{t.Ticket, t.URL, t.Action, t.scene(), t.CreatedAt, t.ExpiresAt, t.expired(now)})
		}
	}
	sortByTimeDesc(out, func(q QRCode) time.Time { return q.CreatedAt })
	return out
}
