package wechatsim

import (
	"net/url"
)

// Custom menu (protocol doc §5.11).

// menuButton is a button as menu/create takes it and menu/get returns it
// (sub_button is always written, [] for leaves, as WeChat does).
type menuButton struct {
	Type      string       `json:"type,omitempty"`
	Name      string       `json:"name"`
	Key       string       `json:"key,omitempty"`
	URL       string       `json:"url,omitempty"`
	AppID     string       `json:"appid,omitempty"`
	PagePath  string       `json:"pagepath,omitempty"`
	MediaID   string       `json:"media_id,omitempty"`
	ArticleID string       `json:"article_id,omitempty"`
	SubButton []menuButton `json:"sub_button"`
}

// Menu limits.
const (
	maxTopButtons     = 3
	maxSubButtons     = 5
	maxTopNameBytes   = 16
	maxSubNameBytes   = 60
	maxKeyBytes       = 128
	maxURLBytes       = 1024
	maxMenuURLDomains = 3
)

// clickLikeTypes need a key.
var clickLikeTypes = map[string]bool{
	"click": true, "scancode_push": true, "scancode_waitmsg": true, "pic_sysphoto": true,
	"pic_photo_or_album": true, "pic_weixin": true, "location_select": true,
}

var menuTypes = map[string]bool{
	"click": true, "view": true, "scancode_push": true, "scancode_waitmsg": true, "pic_sysphoto": true,
	"pic_photo_or_album": true, "pic_weixin": true, "location_select": true, "media_id": true,
	"view_limited": true, "article_id": true, "article_view_limited": true, "miniprogram": true,
}

// handleMenuCreate is POST /cgi-bin/menu/create.
func (s *Simulator) handleMenuCreate(c *apiCall) (any, *apiError) {
	var req struct {
		Button []menuButton `json:"button"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if apiErr := validateMenu(req.Button); apiErr != nil {
		return nil, apiErr
	}
	c.app.Menu = normalizeMenu(req.Button)
	return okAnswer, nil
}

// handleMenuGet is GET /cgi-bin/menu/get: 46003 when there is no menu.
func (s *Simulator) handleMenuGet(c *apiCall) (any, *apiError) {
	if len(c.app.Menu) == 0 {
		return nil, wxErr(46003)
	}
	type menu struct {
		Button []menuButton `json:"button"`
	}
	return struct {
		Menu menu `json:"menu"`
	}{menu{normalizeMenu(c.app.Menu)}}, nil
}

// handleMenuDelete is GET /cgi-bin/menu/delete.
func (s *Simulator) handleMenuDelete(c *apiCall) (any, *apiError) {
	c.app.Menu = nil
	return okAnswer, nil
}

func normalizeMenu(buttons []menuButton) []menuButton {
	out := make([]menuButton, len(buttons))
	for i, b := range buttons {
		if b.SubButton == nil {
			b.SubButton = []menuButton{}
		} else {
			b.SubButton = normalizeMenu(b.SubButton)
		}
		out[i] = b
	}
	return out
}

// validateMenu applies the limits of §5.11 with WeChat's errcodes: counts
// (40016/40023), types (40017/40024), name sizes (40018/40025), key sizes
// (40019/40026), url sizes (40020/40027), media/article ids (40007) and at
// most three link domains (65316).
func validateMenu(buttons []menuButton) *apiError {
	if len(buttons) < 1 || len(buttons) > maxTopButtons {
		return wxErr(40016)
	}
	domains := map[string]bool{}
	for _, b := range buttons {
		if len(b.SubButton) == 0 {
			if apiErr := validateButton(b, false, domains); apiErr != nil {
				return apiErr
			}
			continue
		}
		if b.Name == "" || len(b.Name) > maxTopNameBytes {
			return wxErr(40018)
		}
		if len(b.SubButton) > maxSubButtons {
			return wxErr(40023)
		}
		for _, sub := range b.SubButton {
			if len(sub.SubButton) > 0 {
				return wxErrf(40022, "invalid sub menu level")
			}
			if apiErr := validateButton(sub, true, domains); apiErr != nil {
				return apiErr
			}
		}
	}
	if len(domains) > maxMenuURLDomains {
		return wxErr(65316)
	}
	return nil
}

func validateButton(b menuButton, sub bool, domains map[string]bool) *apiError {
	pick := func(top, inSub int) *apiError {
		if sub {
			return wxErr(inSub)
		}
		return wxErr(top)
	}
	maxName := maxTopNameBytes
	if sub {
		maxName = maxSubNameBytes
	}
	switch {
	case !menuTypes[b.Type]:
		return pick(40017, 40024)
	case b.Name == "" || len(b.Name) > maxName:
		return pick(40018, 40025)
	case clickLikeTypes[b.Type] && (b.Key == "" || len(b.Key) > maxKeyBytes):
		return pick(40019, 40026)
	}
	switch b.Type {
	case "view", "miniprogram":
		u, err := url.Parse(b.URL)
		if b.URL == "" || len(b.URL) > maxURLBytes || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return pick(40020, 40027)
		}
		domains[u.Hostname()] = true
		if b.Type == "miniprogram" && (b.AppID == "" || b.PagePath == "") {
			return wxErr(40013)
		}
	case "media_id", "view_limited":
		if b.MediaID == "" {
			return wxErr(40007)
		}
	case "article_id", "article_view_limited":
		if b.ArticleID == "" {
			return wxErr(40007)
		}
	}
	return nil
}

// MenuButton is a button of an app's menu, for the page.
type MenuButton struct {
	Type, Name, Key, URL string
	Sub                  []MenuButton
}

// Menu returns an app's menu (empty when none).
func (s *Simulator) Menu(appID string) []MenuButton {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil
	}
	var conv func([]menuButton) []MenuButton
	conv = func(in []menuButton) []MenuButton {
		var out []MenuButton
		for _, b := range in {
			out = append(out, MenuButton{Type: b.Type, Name: b.Name, Key: b.Key, URL: b.URL, Sub: conv(b.SubButton)})
		}
		return out
	}
	return conv(app.Menu)
}
