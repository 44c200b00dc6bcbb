package wechatsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is written into the state file; a file of another version is
// refused rather than half-read.
const stateVersion = 1

// state is everything the simulated platform remembers. It is one value so
// that persisting it is one json.Marshal; it is guarded by Simulator.mu.
type state struct {
	Version    int                     `json:"version"`
	Apps       map[string]*appState    `json:"apps"`
	Users      map[string]*userState   `json:"users"` // by openid; openids are unique across apps
	Tokens     map[string]*tokenRecord `json:"tokens"`
	Tickets    map[string]*qrTicket    `json:"tickets"`
	Codes      map[string]*loginCode   `json:"codes"`
	NextMsgID  int64                   `json:"next_msg_id"`
	NextItemID int64                   `json:"next_item_id"`
	Alarms     []Alarm                 `json:"alarms"`
}

func newState() *state {
	return &state{
		Version:   stateVersion,
		Apps:      map[string]*appState{},
		Users:     map[string]*userState{},
		Tokens:    map[string]*tokenRecord{},
		Tickets:   map[string]*qrTicket{},
		Codes:     map[string]*loginCode{},
		NextMsgID: firstMsgID(),
	}
}

// appState is the platform's memory of one app.
type appState struct {
	Config    AppConfig `json:"config"`
	UserOrder []string  `json:"user_order"` // openids in creation order: the order of user/get

	ClassicToken string `json:"classic_token,omitempty"`
	StableToken  string `json:"stable_token,omitempty"`
	// ForceRefreshes are the times of stable_token force refreshes today.
	ForceRefreshes []time.Time `json:"force_refreshes,omitempty"`

	Quota           map[string]*quotaCounter `json:"quota"`
	ClearQuotaMonth string                   `json:"clear_quota_month,omitempty"`
	ClearQuotaCount int                      `json:"clear_quota_count,omitempty"`

	Templates []*appTemplate `json:"templates"`
	Menu      []menuButton   `json:"menu,omitempty"`
	MenuID    int64          `json:"menu_id,omitempty"`
	// Conditional are the personalised menus (个性化菜单), oldest first;
	// a follower sees the newest one whose rule matches.
	Conditional []*conditionalMenu    `json:"conditional_menus,omitempty"`
	NextMenuID  int64                 `json:"next_menu_id,omitempty"`
	PermanentQR map[string]string     `json:"permanent_qr"` // scene → ticket
	Replays     map[string]*replay    `json:"replays"`      // openid + "\x00" + client_msg_id
	Tags        []*tag                `json:"tags,omitempty"`
	NextTagID   int                   `json:"next_tag_id,omitempty"`
	Media       map[string]*mediaFile `json:"media,omitempty"`
	Masses      []*massJob            `json:"masses,omitempty"`

	// replaysPrunedAt is when Replays was last swept (pruneReplays); not
	// saved, a loaded state is swept at its first send.
	replaysPrunedAt time.Time
}

func newAppState(cfg AppConfig) *appState {
	app := &appState{
		Config:      cfg,
		Quota:       map[string]*quotaCounter{},
		PermanentQR: map[string]string{},
		Replays:     map[string]*replay{},
		NextTagID:   100,
	}
	app.mergeTemplates(cfg.Templates)
	return app
}

// mergeTemplates adds configured templates that the app does not have yet
// and refreshes those it has.
func (a *appState) mergeTemplates(list []TemplateConfig) {
	for _, tc := range list {
		if t := a.template(tc.ID); t != nil {
			t.TemplateConfig = tc
			continue
		}
		a.Templates = append(a.Templates, &appTemplate{TemplateConfig: tc})
	}
}

func (a *appState) template(id string) *appTemplate {
	for _, t := range a.Templates {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// ensureMaps fills maps that an older or hand-written state file left nil.
func (a *appState) ensureMaps() {
	if a.Quota == nil {
		a.Quota = map[string]*quotaCounter{}
	}
	if a.PermanentQR == nil {
		a.PermanentQR = map[string]string{}
	}
	if a.Replays == nil {
		a.Replays = map[string]*replay{}
	}
	if a.NextTagID == 0 {
		a.NextTagID = 100
	}
}

type appTemplate struct {
	TemplateConfig
}

type replay struct {
	MsgID int64     `json:"msgid"`
	At    time.Time `json:"at"`
}

// userState is one follower of one app, with their phone's memory.
type userState struct {
	User
	Grants      map[string]int `json:"grants,omitempty"` // template id → unused subscription accepts
	MsgWindow   window         `json:"msg_window"`       // opened by a user message: 5 sends / 48 h
	EventWindow window         `json:"event_window"`     // opened by follow, QR scan, menu click: 3 sends / 1 min
	SessionKey  string         `json:"session_key,omitempty"`
	Chat        []InboxItem    `json:"chat"` // what the user sent and received, in order
}

// window is a customer-service interaction window.
type window struct {
	Until     time.Time `json:"until"`
	Remaining int       `json:"remaining"`
}

func (w window) open(now time.Time) bool { return now.Before(w.Until) }

type tokenRecord struct {
	Token     string    `json:"token"`
	AppID     string    `json:"app_id"`
	Stable    bool      `json:"stable"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt is when the token stops working before its expiry
	// (superseded, force-refreshed or invalidated); zero when it does not.
	RevokedAt time.Time `json:"revoked_at"`
}

type qrTicket struct {
	Ticket    string    `json:"ticket"`
	AppID     string    `json:"app_id"`
	URL       string    `json:"url"`
	Code      string    `json:"code"` // the last path segment of URL
	Action    string    `json:"action_name"`
	SceneID   int64     `json:"scene_id,omitempty"`
	SceneStr  string    `json:"scene_str,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // zero for permanent codes
}

// scene is the value carried in EventKey.
func (t *qrTicket) scene() string {
	if t.SceneStr != "" {
		return t.SceneStr
	}
	return fmt.Sprint(t.SceneID)
}

func (t *qrTicket) expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

type loginCode struct {
	Code      string    `json:"code"`
	AppID     string    `json:"app_id"`
	OpenID    string    `json:"openid"`
	IssuedAt  time.Time `json:"issued_at"`
	Used      bool      `json:"used"`
	UsedAt    time.Time `json:"used_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type tag struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := newState()
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%s: state version %d, this simulator reads %d", path, st.Version, stateVersion)
	}
	for _, app := range st.Apps {
		app.ensureMaps()
	}
	if st.NextMsgID == 0 {
		st.NextMsgID = firstMsgID()
	}
	return st, nil
}

// saveState writes the state file atomically (temp file + rename).
func (s *Simulator) saveState() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	data, err := json.MarshalIndent(s.st, "", " ")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.cfg.StateFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".wechatsim-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// The file holds app secrets and tokens: keep it private.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.cfg.StateFile)
}

func (s *Simulator) saveLoop() {
	defer s.wg.Done()
	ticker := time.NewTicker(s.cfg.SaveInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
			if err := s.saveState(); err != nil {
				s.log.Error("wechatsim: save state", "file", s.cfg.StateFile, "err", err)
			}
		}
	}
}

// Reset forgets users, tokens, QR codes, login codes, quotas, menus, alarms,
// call counts and faults; apps keep their configuration and configured
// templates.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	apps := s.st.Apps
	s.st = newState()
	for id, app := range apps {
		s.st.Apps[id] = newAppState(app.Config)
	}
	s.calls = map[string]map[string]int{}
	s.faults = nil
	s.downDomains = map[string]bool{}
	s.deliveries = nil
}
