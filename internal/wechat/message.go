package wechat

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Message types (MsgType).
const (
	MsgTypeText            = "text"
	MsgTypeImage           = "image"
	MsgTypeVoice           = "voice"
	MsgTypeVideo           = "video"
	MsgTypeShortVideo      = "shortvideo"
	MsgTypeLocation        = "location"
	MsgTypeLink            = "link"
	MsgTypeMiniProgramPage = "miniprogrampage"
	MsgTypeEvent           = "event"
)

// Event names (Event, when MsgType is "event"). WeChat mixes cases; these are
// the exact strings it sends.
const (
	EventSubscribe               = "subscribe"
	EventUnsubscribe             = "unsubscribe"
	EventScan                    = "SCAN"
	EventLocation                = "LOCATION"
	EventClick                   = "CLICK"
	EventView                    = "VIEW"
	EventViewMiniProgram         = "view_miniprogram"
	EventScancodePush            = "scancode_push"
	EventScancodeWaitMsg         = "scancode_waitmsg"
	EventPicSysPhoto             = "pic_sysphoto"
	EventPicPhotoOrAlbum         = "pic_photo_or_album"
	EventPicWeixin               = "pic_weixin"
	EventLocationSelect          = "location_select"
	EventTemplateSendJobFinish   = "TEMPLATESENDJOBFINISH"
	EventMassSendJobFinish       = "MASSSENDJOBFINISH"
	EventSubscribeMsgPopup       = "subscribe_msg_popup_event"
	EventSubscribeMsgChange      = "subscribe_msg_change_event"
	EventSubscribeMsgSent        = "subscribe_msg_sent_event"
	EventKfCreateSession         = "kf_create_session"
	EventKfCloseSession          = "kf_close_session"
	EventKfSwitchSession         = "kf_switch_session"
	EventPublishJobFinish        = "PUBLISHJOBFINISH"
	EventUserInfoModified        = "user_info_modified"
	EventUserAuthorizationRevoke = "user_authorization_revoke"
	EventUserEnterTempSession    = "user_enter_tempsession"
)

// Status values of TEMPLATESENDJOBFINISH. WeChat writes the system failure
// with a space after the colon and the block without; both spellings of the
// former are accepted by TemplateJobStatus.
const (
	TemplateStatusSuccess      = "success"
	TemplateStatusUserBlock    = "failed:user block"
	TemplateStatusSystemFailed = "failed: system failed"
)

// QRScenePrefix starts the EventKey of a subscribe through a parametric QR code.
const QRScenePrefix = "qrscene_"

// Message is every inbound push, messages and events alike, in one flat
// struct: WeChat sends one XML shape with optional elements, and a flat type
// keeps parsing total (unknown elements are kept in the raw body by callers).
// 64-bit ids are int64 and never pass through float64.
type Message struct {
	XMLName      xml.Name `xml:"xml" json:"-"`
	ToUserName   string   `xml:"ToUserName" json:"ToUserName,omitempty"`
	FromUserName string   `xml:"FromUserName" json:"FromUserName,omitempty"`
	CreateTime   int64    `xml:"CreateTime" json:"CreateTime,omitempty"`
	MsgType      string   `xml:"MsgType" json:"MsgType,omitempty"`

	// Standard messages.
	MsgID        int64   `xml:"MsgId" json:"MsgId,omitempty"`
	MsgDataID    string  `xml:"MsgDataId,omitempty" json:"MsgDataId,omitempty"`
	Idx          int64   `xml:"Idx,omitempty" json:"Idx,omitempty"`
	Content      string  `xml:"Content,omitempty" json:"Content,omitempty"`
	BizMsgMenuID string  `xml:"bizmsgmenuid,omitempty" json:"bizmsgmenuid,omitempty"`
	PicURL       string  `xml:"PicUrl,omitempty" json:"PicUrl,omitempty"`
	MediaID      string  `xml:"MediaId,omitempty" json:"MediaId,omitempty"`
	Format       string  `xml:"Format,omitempty" json:"Format,omitempty"`
	MediaID16K   string  `xml:"MediaId16K,omitempty" json:"MediaId16K,omitempty"`
	Recognition  string  `xml:"Recognition,omitempty" json:"Recognition,omitempty"`
	ThumbMediaID string  `xml:"ThumbMediaId,omitempty" json:"ThumbMediaId,omitempty"`
	LocationX    float64 `xml:"Location_X,omitempty" json:"Location_X,omitempty"`
	LocationY    float64 `xml:"Location_Y,omitempty" json:"Location_Y,omitempty"`
	Scale        float64 `xml:"Scale,omitempty" json:"Scale,omitempty"`
	Label        string  `xml:"Label,omitempty" json:"Label,omitempty"`
	Title        string  `xml:"Title,omitempty" json:"Title,omitempty"`
	Description  string  `xml:"Description,omitempty" json:"Description,omitempty"`
	URL          string  `xml:"Url,omitempty" json:"Url,omitempty"`
	AppID        string  `xml:"AppId,omitempty" json:"AppId,omitempty"`
	PagePath     string  `xml:"PagePath,omitempty" json:"PagePath,omitempty"`
	ThumbURL     string  `xml:"ThumbUrl,omitempty" json:"ThumbUrl,omitempty"`

	// Events.
	Event     string  `xml:"Event,omitempty" json:"Event,omitempty"`
	EventKey  string  `xml:"EventKey,omitempty" json:"EventKey,omitempty"`
	Ticket    string  `xml:"Ticket,omitempty" json:"Ticket,omitempty"`
	Latitude  float64 `xml:"Latitude,omitempty" json:"Latitude,omitempty"`
	Longitude float64 `xml:"Longitude,omitempty" json:"Longitude,omitempty"`
	Precision float64 `xml:"Precision,omitempty" json:"Precision,omitempty"`
	MenuID    string  `xml:"MenuId,omitempty" json:"MenuId,omitempty"`

	ScanCodeInfo     *ScanCodeInfo     `xml:"ScanCodeInfo,omitempty" json:"ScanCodeInfo,omitempty"`
	SendPicsInfo     *SendPicsInfo     `xml:"SendPicsInfo,omitempty" json:"SendPicsInfo,omitempty"`
	SendLocationInfo *SendLocationInfo `xml:"SendLocationInfo,omitempty" json:"SendLocationInfo,omitempty"`

	// TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH carry MsgID with a capital D.
	JobMsgID    int64  `xml:"MsgID,omitempty" json:"MsgID,omitempty"`
	Status      string `xml:"Status,omitempty" json:"Status,omitempty"`
	TotalCount  int64  `xml:"TotalCount,omitempty" json:"TotalCount,omitempty"`
	FilterCount int64  `xml:"FilterCount,omitempty" json:"FilterCount,omitempty"`
	SentCount   int64  `xml:"SentCount,omitempty" json:"SentCount,omitempty"`
	ErrorCount  int64  `xml:"ErrorCount,omitempty" json:"ErrorCount,omitempty"`

	// MASSSENDJOBFINISH also reports the originality check of the articles
	// and the permanent URLs of the articles it sent.
	CopyrightCheckResult *CopyrightCheckResult `xml:"CopyrightCheckResult,omitempty" json:"CopyrightCheckResult,omitempty"`
	ArticleURLResult     *ArticleURLResult     `xml:"ArticleUrlResult,omitempty" json:"ArticleUrlResult,omitempty"`

	// Subscription-message (订阅通知) events.
	SubscribeMsgPopupEvent  *SubscribeMsgEvent `xml:"SubscribeMsgPopupEvent,omitempty" json:"SubscribeMsgPopupEvent,omitempty"`
	SubscribeMsgChangeEvent *SubscribeMsgEvent `xml:"SubscribeMsgChangeEvent,omitempty" json:"SubscribeMsgChangeEvent,omitempty"`
	SubscribeMsgSentEvent   *SubscribeMsgEvent `xml:"SubscribeMsgSentEvent,omitempty" json:"SubscribeMsgSentEvent,omitempty"`

	// Customer-service session events and the Mini Program temp session.
	KfAccount     string `xml:"KfAccount,omitempty" json:"KfAccount,omitempty"`
	FromKfAccount string `xml:"FromKfAccount,omitempty" json:"FromKfAccount,omitempty"`
	ToKfAccount   string `xml:"ToKfAccount,omitempty" json:"ToKfAccount,omitempty"`
	SessionFrom   string `xml:"SessionFrom,omitempty" json:"SessionFrom,omitempty"`

	PublishEventInfo *PublishEventInfo `xml:"PublishEventInfo,omitempty" json:"PublishEventInfo,omitempty"`

	// Encrypt is present in compatible and safe mode bodies.
	Encrypt string `xml:"Encrypt,omitempty" json:"Encrypt,omitempty"`
}

// ScanCodeInfo belongs to scancode_push / scancode_waitmsg.
type ScanCodeInfo struct {
	ScanType   string `xml:"ScanType" json:"ScanType"`
	ScanResult string `xml:"ScanResult" json:"ScanResult"`
}

// SendPicsInfo belongs to the pic_* menu events.
type SendPicsInfo struct {
	Count   int64     `xml:"Count" json:"Count"`
	PicList []PicItem `xml:"PicList>item" json:"PicList"`
}

// PicItem is one picture of SendPicsInfo.
type PicItem struct {
	PicMd5Sum string `xml:"PicMd5Sum" json:"PicMd5Sum"`
}

// SendLocationInfo belongs to location_select.
type SendLocationInfo struct {
	LocationX float64 `xml:"Location_X" json:"Location_X"`
	LocationY float64 `xml:"Location_Y" json:"Location_Y"`
	Scale     float64 `xml:"Scale" json:"Scale"`
	Label     string  `xml:"Label" json:"Label"`
	Poiname   string  `xml:"Poiname" json:"Poiname"`
}

// SubscribeMsgEvent is the container of the subscription-message events; one
// List item per template.
type SubscribeMsgEvent struct {
	List []SubscribeMsgItem `xml:"List" json:"List"`
}

// SubscribeMsgItem is one template's result in a subscription-message event.
type SubscribeMsgItem struct {
	TemplateID            string `xml:"TemplateId" json:"TemplateId"`
	SubscribeStatusString string `xml:"SubscribeStatusString,omitempty" json:"SubscribeStatusString,omitempty"`
	PopupScene            int64  `xml:"PopupScene,omitempty" json:"PopupScene,omitempty"`
	MsgID                 int64  `xml:"MsgID,omitempty" json:"MsgID,omitempty"`
	ErrorCode             int64  `xml:"ErrorCode,omitempty" json:"ErrorCode,omitempty"`
	ErrorStatus           string `xml:"ErrorStatus,omitempty" json:"ErrorStatus,omitempty"`
}

// CopyrightCheckResult is MASSSENDJOBFINISH's originality check.
type CopyrightCheckResult struct {
	Count      int64                `xml:"Count" json:"Count"`
	ResultList []CopyrightCheckItem `xml:"ResultList>item" json:"ResultList,omitempty"`
	CheckState int64                `xml:"CheckState" json:"CheckState"`
}

// CopyrightCheckItem is the originality check of one article of a mass send.
type CopyrightCheckItem struct {
	ArticleIdx            int64  `xml:"ArticleIdx" json:"ArticleIdx"`
	UserDeclareState      int64  `xml:"UserDeclareState" json:"UserDeclareState"`
	AuditState            int64  `xml:"AuditState" json:"AuditState"`
	OriginalArticleURL    string `xml:"OriginalArticleUrl" json:"OriginalArticleUrl"`
	OriginalArticleType   int64  `xml:"OriginalArticleType" json:"OriginalArticleType"`
	CanReprint            int64  `xml:"CanReprint" json:"CanReprint"`
	NeedReplaceContent    int64  `xml:"NeedReplaceContent" json:"NeedReplaceContent"`
	NeedShowReprintSource int64  `xml:"NeedShowReprintSource" json:"NeedShowReprintSource"`
}

// ArticleURLResult lists the URLs of the articles a mass send published.
type ArticleURLResult struct {
	Count      int64            `xml:"Count" json:"Count"`
	ResultList []ArticleURLItem `xml:"ResultList>item" json:"ResultList,omitempty"`
}

// ArticleURLItem is one article of ArticleURLResult (ArticleIdx is 1-based).
type ArticleURLItem struct {
	ArticleIdx int64  `xml:"ArticleIdx" json:"ArticleIdx"`
	ArticleURL string `xml:"ArticleUrl" json:"ArticleUrl"`
}

// PublishEventInfo belongs to PUBLISHJOBFINISH.
type PublishEventInfo struct {
	PublishID     string                `xml:"publish_id" json:"publish_id"`
	PublishStatus int64                 `xml:"publish_status" json:"publish_status"`
	ArticleID     string                `xml:"article_id" json:"article_id"`
	ArticleDetail *PublishArticleDetail `xml:"article_detail,omitempty" json:"article_detail,omitempty"`
	FailIdx       []int64               `xml:"fail_idx" json:"fail_idx,omitempty"`
}

// PublishArticleDetail lists the articles of a successful publish.
type PublishArticleDetail struct {
	Count int64                `xml:"count" json:"count"`
	Items []PublishArticleItem `xml:"item" json:"item,omitempty"`
}

// PublishArticleItem is one published article (Idx is 1-based).
type PublishArticleItem struct {
	Idx        int64  `xml:"idx" json:"idx"`
	ArticleURL string `xml:"article_url" json:"article_url"`
}

// ErrMalformedMessage wraps every parse failure of an inbound body.
var ErrMalformedMessage = errors.New("malformed message")

// ParseMessage decodes an XML push body. The root element must be <xml>.
func ParseMessage(body []byte) (*Message, error) {
	var m Message
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if m.XMLName.Local != "xml" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <xml>", ErrMalformedMessage, m.XMLName.Local)
	}
	// A namespaced root is still <xml>; drop the namespace so that messages
	// compare and re-encode alike.
	m.XMLName = xml.Name{Local: "xml"}
	if !m.finite() {
		// strconv accepts "NaN" and "Inf", which no coordinate is; such a
		// message could not be stored as JSON nor compared with itself.
		return nil, fmt.Errorf("%w: non-finite number", ErrMalformedMessage)
	}
	return &m, nil
}

// finite reports whether every float field holds a finite number.
func (m *Message) finite() bool {
	fs := []float64{m.LocationX, m.LocationY, m.Scale, m.Latitude, m.Longitude, m.Precision}
	if l := m.SendLocationInfo; l != nil {
		fs = append(fs, l.LocationX, l.LocationY, l.Scale)
	}
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

// listContainers names, per subscription-message event, the XML element
// holding its List; the JSON format puts List at the top level instead.
var listContainers = map[string]string{
	EventSubscribeMsgPopup:  "SubscribeMsgPopupEvent",
	EventSubscribeMsgChange: "SubscribeMsgChangeEvent",
	EventSubscribeMsgSent:   "SubscribeMsgSentEvent",
}

// ParseJSONMessage decodes a Mini Program JSON push. WeChat's JSON format
// writes some numbers as strings and a single List item as an object instead
// of an array, and may put List at the top level; all of these are accepted.
func ParseJSONMessage(body []byte) (*Message, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: body is null, want an object", ErrMalformedMessage)
	}
	normalizeJSON(raw)
	if list, ok := raw["List"]; ok {
		if container := listContainers[fmt.Sprint(raw["Event"])]; container != "" {
			if _, exists := raw[container]; !exists {
				raw[container] = map[string]any{"List": list}
			}
		}
		delete(raw, "List")
	}
	normalized, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	var m Message
	if err := json.Unmarshal(normalized, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	m.XMLName = xml.Name{Local: "xml"}
	return &m, nil
}

// jsonNumericKeys are the fields that Mini Program JSON pushes may send as
// strings although they are numbers.
var jsonNumericKeys = map[string]bool{
	"CreateTime": true, "MsgId": true, "MsgID": true, "Idx": true, "PopupScene": true,
	"ErrorCode": true, "Count": true, "TotalCount": true, "FilterCount": true,
	"SentCount": true, "ErrorCount": true, "Location_X": true, "Location_Y": true,
	"Scale": true, "Latitude": true, "Longitude": true, "Precision": true,
}

func normalizeJSON(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if s, ok := val.(string); ok && jsonNumericKeys[k] {
				if s == "" {
					delete(t, k)
				} else if _, err := strconv.ParseFloat(s, 64); err == nil {
					t[k] = json.Number(s)
				}
				continue
			}
			if k == "List" {
				if obj, ok := val.(map[string]any); ok {
					t[k] = []any{obj}
				}
			}
			normalizeJSON(t[k])
		}
	case []any:
		for _, item := range t {
			normalizeJSON(item)
		}
	}
}

// IsEvent reports whether the push is an event rather than a user message.
func (m *Message) IsEvent() bool { return m.MsgType == MsgTypeEvent }

// QRScene returns the scene of a parametric QR code carried by a subscribe
// (EventKey "qrscene_<scene>") or SCAN (EventKey "<scene>") event, and whether
// there was one.
func (m *Message) QRScene() (string, bool) {
	switch m.Event {
	case EventSubscribe:
		scene, ok := strings.CutPrefix(m.EventKey, QRScenePrefix)
		if !ok || scene == "" {
			return "", false
		}
		return scene, true
	case EventScan:
		return m.EventKey, m.EventKey != ""
	}
	return "", false
}

// TemplateJobStatus normalises TEMPLATESENDJOBFINISH's Status to "success",
// "user_block" or "system_failed" (or the raw value when unknown).
func TemplateJobStatus(status string) string {
	s := strings.ToLower(strings.ReplaceAll(status, " ", ""))
	switch s {
	case "success":
		return "success"
	case "failed:userblock":
		return "user_block"
	case "failed:systemfailed":
		return "system_failed"
	}
	return status
}

// DedupKey identifies one push across WeChat's retries (same XML each time).
// Messages are keyed by MsgId; job-finish events by their MsgID; other events
// by sender, CreateTime, Event and EventKey plus the fields that tell two
// events in the same second apart.
func (m *Message) DedupKey() string {
	if !m.IsEvent() && m.MsgID != 0 {
		return "msg:" + strconv.FormatInt(m.MsgID, 10)
	}
	switch m.Event {
	case EventTemplateSendJobFinish, EventMassSendJobFinish:
		if m.JobMsgID != 0 {
			return "job:" + strings.ToLower(m.Event) + ":" + strconv.FormatInt(m.JobMsgID, 10)
		}
	}
	h := sha1.New()
	for _, part := range []string{
		m.FromUserName, strconv.FormatInt(m.CreateTime, 10), m.MsgType, m.Event, m.EventKey, m.Ticket,
		strconv.FormatFloat(m.Latitude, 'f', -1, 64), strconv.FormatFloat(m.Longitude, 'f', -1, 64),
		m.Status, m.Content, m.MediaID,
	} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	for _, ev := range []*SubscribeMsgEvent{m.SubscribeMsgPopupEvent, m.SubscribeMsgChangeEvent, m.SubscribeMsgSentEvent} {
		if ev == nil {
			continue
		}
		for _, item := range ev.List {
			fmt.Fprintf(h, "%s|%s|%d|%d\x00", item.TemplateID, item.SubscribeStatusString, item.MsgID, item.ErrorCode)
		}
	}
	return "evt:" + m.FromUserName + ":" + strconv.FormatInt(m.CreateTime, 10) + ":" + hex.EncodeToString(h.Sum(nil))[:16]
}
