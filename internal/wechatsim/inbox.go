package wechatsim

import (
	"encoding/json"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Kinds of chat items. "sent" is what the user did; every other kind is
// something the phone received.
const (
	ItemSent      = "sent"      // a message or event the user sent
	ItemReply     = "reply"     // a passive reply to a push
	ItemCustom    = "custom"    // message/custom/send
	ItemTemplate  = "template"  // message/template/send
	ItemSubscribe = "subscribe" // message/subscribe/bizsend or subscribe/send
	ItemSystem    = "system"    // WeChat's own notice, e.g. 该公众号暂时无法提供服务
)

// NoticeServiceUnavailable is what WeChat shows when the account's server
// did not answer in time or answered something invalid.
const NoticeServiceUnavailable = "该公众号暂时无法提供服务，请稍后再试"

// InboxItem is one entry of a user's chat with an app.
type InboxItem struct {
	ID      int64     `json:"id"`
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	MsgType string    `json:"msgtype,omitempty"`
	// Content is the text of text messages and a short description of
	// other sent items ("[关注 Follow]").
	Content     string           `json:"content,omitempty"`
	Event       string           `json:"event,omitempty"`
	EventKey    string           `json:"event_key,omitempty"`
	MediaID     string           `json:"media_id,omitempty"`
	PicURL      string           `json:"pic_url,omitempty"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	URL         string           `json:"url,omitempty"` // link, or the jump link of a template card
	Articles    []wechat.Article `json:"articles,omitempty"`
	// Template and subscription messages.
	TemplateID  string            `json:"template_id,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
	Text        string            `json:"text,omitempty"` // the template rendered with the data
	MiniProgram *MiniProgram      `json:"miniprogram,omitempty"`
	Page        string            `json:"page,omitempty"`
	MsgID       int64             `json:"msgid,omitempty"`
	// Status of a template message: sending, then success.
	Status string `json:"status,omitempty"`
	// Body is the custom message's JSON as the API received it.
	Body json.RawMessage `json:"body,omitempty"`
	// Reason explains a system notice (for tests and the page).
	Reason string `json:"reason,omitempty"`
}

// MiniProgram is a jump target inside a mini program.
type MiniProgram struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath,omitempty"`
}

// Received reports whether the item is something the phone received.
func (it InboxItem) Received() bool { return it.Kind != ItemSent }

// Inbox returns what a user received from an app, oldest first.
func (s *Simulator) Inbox(appID, openid string) ([]InboxItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _, err := s.lookupUser(appID, openid)
	if err != nil {
		return nil, err
	}
	var out []InboxItem
	for _, it := range u.Chat {
		if it.Received() {
			out = append(out, it)
		}
	}
	return out, nil
}

// Conversation returns what a user sent and received, oldest first.
func (s *Simulator) Conversation(appID, openid string) ([]InboxItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _, err := s.lookupUser(appID, openid)
	if err != nil {
		return nil, err
	}
	return append([]InboxItem(nil), u.Chat...), nil
}

// addItem appends to a user's chat; callers hold s.mu.
func (s *Simulator) addItem(u *userState, it InboxItem) InboxItem {
	s.st.NextItemID++
	it.ID = s.st.NextItemID
	if it.Time.IsZero() {
		it.Time = s.now()
	}
	u.Chat = append(u.Chat, it)
	// A phone keeps a long history, the simulator a bounded one.
	const maxChat = 2000
	if len(u.Chat) > maxChat {
		u.Chat = append([]InboxItem(nil), u.Chat[len(u.Chat)-maxChat:]...)
	}
	return it
}

// setItemStatus updates the status of a template item found by msgid.
func (s *Simulator) setItemStatus(openid string, msgID int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.st.Users[openid]
	if u == nil {
		return
	}
	for i := range u.Chat {
		if u.Chat[i].MsgID == msgID && u.Chat[i].Received() {
			u.Chat[i].Status = status
		}
	}
}
