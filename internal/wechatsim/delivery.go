package wechatsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// This file posts pushes to an app's server the way WeChat does (signed
// query, body per message mode, 5 s per attempt, identical re-sends) and
// reads the answer the way WeChat does (protocol doc §3.1, §4, §8.2–8.4).

// Outcomes of a delivery.
const (
	OutcomeNoCallback = "no_callback" // the app has no server URL: nothing is posted
	OutcomeNoReply    = "no_reply"    // answered empty or "success"
	OutcomeReply      = "reply"       // answered a valid passive reply, shown on the phone
	OutcomeIgnored    = "ignored"     // answered something to a push whose answer nobody sees
	OutcomeFailed     = "failed"      // no answer, an HTTP error or an invalid reply
)

// Delivery is one push and what became of it.
type Delivery struct {
	ID      int64     `json:"id"`
	AppID   string    `json:"app_id"`
	OpenID  string    `json:"openid"`
	At      time.Time `json:"at"`
	Mode    string    `json:"mode"`
	MsgType string    `json:"msgtype"`
	Event   string    `json:"event,omitempty"`
	// URL is the callback URL with the query of the first attempt.
	URL string `json:"url"`
	// XML is the push in plain XML; Body is what was posted (in safe mode
	// only ToUserName and Encrypt).
	XML      string    `json:"xml"`
	Body     string    `json:"body"`
	Attempts []Attempt `json:"attempts"`
	// Status and Response are the HTTP answer that ended the delivery
	// (Status 0 when every attempt failed).
	Status   int    `json:"status"`
	Response string `json:"response"`
	// ReplyXML is the passive reply in plain XML (decrypted when it was
	// encrypted).
	ReplyXML string `json:"reply_xml,omitempty"`
	Outcome  string `json:"outcome"`
	Error    string `json:"error,omitempty"`
}

// Attempt is one POST of a push.
type Attempt struct {
	N          int     `json:"n"`
	Status     int     `json:"status"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// Alarm is what WeChat's admin console would report about the app's server.
type Alarm struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	AppID      string    `json:"app_id"`
	OpenID     string    `json:"openid,omitempty"`
	Kind       string    `json:"kind"` // callback_timeout | callback_http_error | invalid_reply
	Message    string    `json:"message"`
	MsgType    string    `json:"msgtype,omitempty"`
	Event      string    `json:"event,omitempty"`
	DeliveryID int64     `json:"delivery_id,omitempty"`
}

// Alarm kinds.
const (
	AlarmTimeout      = "callback_timeout"
	AlarmHTTPError    = "callback_http_error"
	AlarmInvalidReply = "invalid_reply"
)

// pushKind says who sees the answer to a push.
type pushKind int

const (
	// pushUserMessage: a user's message; a reply is shown, news with one
	// article at most.
	pushUserMessage pushKind = iota
	// pushUserEvent: an event the user caused in the chat (follow, scan,
	// click …); a reply is shown, news up to 8 articles.
	pushUserEvent
	// pushSilent: unfollow, VIEW, job-finish and subscription events; the
	// answer is ignored and failures only raise an alarm.
	pushSilent
)

const (
	maxReplyBody  = 1 << 20
	maxDeliveries = 500
	maxAlarms     = 1000
)

// deliveryTarget is a snapshot of what a delivery needs from the app, taken
// under the lock so the POST runs without it.
type deliveryTarget struct {
	app     AppConfig
	crypter *wechat.Crypter
}

func (s *Simulator) targetOf(appID string) (deliveryTarget, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return deliveryTarget{}, false
	}
	return deliveryTarget{app: app.Config, crypter: s.crypters[appID]}, true
}

// deliver posts msg to the app's server and returns the delivery and the
// item the phone shows as a result (a reply or WeChat's notice), which is
// already appended to the user's chat.
func (s *Simulator) deliver(ctx context.Context, appID string, msg *wechat.Message, kind pushKind) (*Delivery, *InboxItem) {
	d := &Delivery{AppID: appID, OpenID: msg.FromUserName, At: s.now(), MsgType: msg.MsgType, Event: msg.Event}
	target, found := s.targetOf(appID)
	if !found {
		d.Outcome, d.Error = OutcomeFailed, "app not found"
		return d, nil
	}
	d.Mode = target.app.Mode
	var (
		plain []byte
		err   error
	)
	if target.app.DataFormat == DataFormatJSON {
		plain, err = wechat.EncodeJSONMessage(msg)
	} else {
		plain = encodePush(msg)
	}
	if err != nil {
		d.Outcome, d.Error = OutcomeFailed, err.Error()
		s.recordDelivery(d, nil, nil, "")
		return d, nil
	}
	d.XML = string(plain)
	if target.app.CallbackURL == "" {
		d.Outcome = OutcomeNoCallback
		s.recordDelivery(d, nil, nil, "")
		return d, nil
	}

	body, encrypted, err := s.pushBody(target, msg, plain)
	if err != nil {
		d.Outcome, d.Error = OutcomeFailed, err.Error()
		s.recordDelivery(d, nil, nil, "")
		return d, nil
	}
	d.Body = string(body)

	answer, status := s.post(ctx, target, d, body, encrypted, msg.FromUserName)
	shown, alarm := s.interpret(target, d, msg, kind, answer, status)
	return d, s.recordDelivery(d, shown, alarm, msg.FromUserName)
}

// encodePush renders a push with wechat.EncodeMessage. EncodeMessage leaves
// out zero numbers, but subscribe_msg_sent_event carries <ErrorCode>0</ErrorCode>
// for a success, so it is put back after each item's MsgID.
func encodePush(msg *wechat.Message) []byte {
	out := wechat.EncodeMessage(msg)
	if msg.SubscribeMsgSentEvent == nil {
		return out
	}
	start := bytes.Index(out, []byte("<SubscribeMsgSentEvent>"))
	end := bytes.Index(out, []byte("</SubscribeMsgSentEvent>"))
	if start < 0 || end < start {
		return out
	}
	section := out[start:end]
	var fixed []byte
	for i, part := range bytes.Split(section, []byte("</List>")) {
		if i > 0 {
			fixed = append(fixed, "</List>"...)
		}
		if !bytes.Contains(part, []byte("<ErrorCode>")) {
			part = bytes.Replace(part, []byte("</MsgID>"), []byte("</MsgID><ErrorCode>0</ErrorCode>"), 1)
		}
		fixed = append(fixed, part...)
	}
	result := append([]byte(nil), out[:start]...)
	result = append(result, fixed...)
	return append(result, out[end:]...)
}

// pushBody renders the body for the app's mode: plain XML, plain XML plus
// Encrypt (compatible) or ToUserName plus Encrypt (safe). A fresh random
// prefix is used per push, and the same bytes are re-sent on retries.
func (s *Simulator) pushBody(target deliveryTarget, msg *wechat.Message, plain []byte) (body []byte, encrypted string, err error) {
	if target.app.Mode == ModePlaintext {
		return plain, "", nil
	}
	if target.crypter == nil {
		return nil, "", fmt.Errorf("mode %s needs an EncodingAESKey", target.app.Mode)
	}
	encrypted, err = target.crypter.Encrypt(plain, 0)
	if err != nil {
		return nil, "", fmt.Errorf("encrypt push: %w", err)
	}
	if target.app.DataFormat == DataFormatJSON {
		return jsonPushBody(target.app.Mode, plain, msg.ToUserName, encrypted), encrypted, nil
	}
	if target.app.Mode == ModeCompatible {
		return wechat.CompatibleModeBody(plain, encrypted), encrypted, nil
	}
	return wechat.SafeModeBody(msg.ToUserName, encrypted), encrypted, nil
}

// jsonPushBody is the JSON form of an encrypted push: the plain fields
// plus Encrypt in compatible mode, ToUserName and Encrypt in safe mode.
func jsonPushBody(mode string, plain []byte, toUser, encrypted string) []byte {
	if mode == ModeCompatible {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(plain, &fields); err == nil {
			enc, _ := json.Marshal(encrypted)
			fields["Encrypt"] = enc
			if out, err := json.Marshal(fields); err == nil {
				return out
			}
		}
	}
	out, _ := json.Marshal(struct {
		ToUserName string
		Encrypt    string
	}{toUser, encrypted})
	return out
}

// pushURL builds the callback URL with WeChat's query, in WeChat's order:
// signature, timestamp, nonce, openid, then encrypt_type and msg_signature.
func (s *Simulator) pushURL(target deliveryTarget, encrypted, openid string) string {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce := newNonce()
	token := target.app.Token
	var q strings.Builder
	q.WriteString("signature=" + wechat.Signature(token, ts, nonce))
	q.WriteString("&timestamp=" + ts)
	q.WriteString("&nonce=" + nonce)
	if openid != "" {
		q.WriteString("&openid=" + url.QueryEscape(openid))
	}
	if encrypted != "" {
		q.WriteString("&encrypt_type=aes&msg_signature=" + wechat.Signature(token, ts, nonce, encrypted))
	}
	return appendQuery(target.app.CallbackURL, q.String())
}

func appendQuery(base, query string) string {
	if strings.Contains(base, "?") {
		return base + "&" + query
	}
	return base + "?" + query
}

// post sends the push up to CallbackAttempts times, each attempt limited to
// CallbackTimeout, and stops at the first HTTP answer of any status.
func (s *Simulator) post(ctx context.Context, target deliveryTarget, d *Delivery, body []byte, encrypted, openid string) (answer []byte, status int) {
	var endpoint string
	for n := 1; n <= s.cfg.CallbackAttempts; n++ {
		if n == 1 || s.cfg.RefreshQueryOnRetry {
			endpoint = s.pushURL(target, encrypted, openid)
		}
		if n == 1 {
			d.URL = endpoint
		}
		start := time.Now()
		answer, status, err := s.postOnce(ctx, endpoint, body, target.app.DataFormat == DataFormatJSON)
		att := Attempt{N: n, Status: status, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			att.Error = err.Error()
		}
		d.Attempts = append(d.Attempts, att)
		if err == nil {
			return answer, status
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0
}

func (s *Simulator) postOnce(ctx context.Context, endpoint string, body []byte, isJSON bool) ([]byte, int, error) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("build request: %w", err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "text/xml")
	}
	req.Header.Set("User-Agent", "Mozilla/4.0")
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(actx.Err(), context.DeadlineExceeded) {
			return nil, 0, fmt.Errorf("no answer within %s", s.cfg.CallbackTimeout)
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		// The answer must be complete within the attempt's time.
		return nil, resp.StatusCode, fmt.Errorf("read answer: %w", err)
	}
	return answer, resp.StatusCode, nil
}

// interpret reads the server's answer as WeChat does and returns what the
// phone shows and the alarm to raise, if any.
func (s *Simulator) interpret(target deliveryTarget, d *Delivery, msg *wechat.Message, kind pushKind, answer []byte, status int) (*InboxItem, *Alarm) {
	d.Status, d.Response = status, string(answer)
	fail := func(alarmKind, reason string) (*InboxItem, *Alarm) {
		d.Outcome, d.Error = OutcomeFailed, reason
		alarm := &Alarm{AppID: d.AppID, OpenID: d.OpenID, Kind: alarmKind, Message: reason, MsgType: msg.MsgType, Event: msg.Event}
		if kind == pushSilent {
			return nil, alarm
		}
		return &InboxItem{Kind: ItemSystem, MsgType: wechat.MsgTypeText, Content: NoticeServiceUnavailable, Reason: reason}, alarm
	}
	switch {
	case status == 0:
		return fail(AlarmTimeout, fmt.Sprintf("微信服务器向公众号推送消息或事件后，开发者5秒内没有返回 no answer after %d attempts (%s each)", len(d.Attempts), s.cfg.CallbackTimeout))
	case status != http.StatusOK:
		return fail(AlarmHTTPError, fmt.Sprintf("服务器返回错误 the server answered HTTP %d", status))
	case wechat.IsNoReply(answer):
		d.Outcome = OutcomeNoReply
		return nil, nil
	case kind == pushSilent:
		d.Outcome = OutcomeIgnored
		return nil, nil
	case target.app.DataFormat == DataFormatJSON:
		// A mini program's only passive reply is a hand-over to customer
		// service, which the simulator does not model.
		return fail(AlarmInvalidReply, "回复无效 invalid reply: a mini program push in JSON format takes \"success\" or an empty answer")
	}
	plain, err := openReply(target, answer)
	if err != nil {
		return fail(AlarmInvalidReply, "回复无效 invalid reply: "+err.Error())
	}
	if wechat.IsNoReply(plain) {
		// A correctly signed envelope around nothing (or "success") is how
		// some SDKs say "no reply" in encrypted modes; WeChat shows nothing.
		d.Outcome = OutcomeNoReply
		return nil, nil
	}
	d.ReplyXML = string(plain)
	item, err := readReply(plain, msg, kind)
	if err != nil {
		return fail(AlarmInvalidReply, "回复无效 invalid reply: "+err.Error())
	}
	d.Outcome = OutcomeReply
	return item, nil
}

// openReply returns the plain reply XML: safe mode requires the encrypted
// envelope, compatible mode takes either, plaintext mode plain XML only.
// An encrypted reply's MsgSignature is verified and its appid checked.
func openReply(target deliveryTarget, answer []byte) ([]byte, error) {
	r, err := wechat.ParseReply(answer)
	if err != nil {
		return nil, errors.New("not an XML reply")
	}
	encrypted := r.Encrypt != ""
	switch {
	case target.app.Mode == ModePlaintext && encrypted:
		return nil, errors.New("encrypted reply but the account is in plaintext mode")
	case target.app.Mode == ModeSafe && !encrypted:
		return nil, errors.New("safe mode requires an encrypted reply (Encrypt, MsgSignature, TimeStamp, Nonce)")
	case !encrypted:
		return answer, nil
	}
	plain, err := target.crypter.OpenReply(target.app.Token, answer)
	switch {
	case errors.Is(err, wechat.ErrInvalidSignature):
		return nil, errors.New("MsgSignature does not match")
	case wechat.IsCryptoCode(err, wechat.CodeValidateAppID):
		return nil, errors.New("the reply is encrypted for another appid")
	case err != nil:
		return nil, fmt.Errorf("cannot decrypt: %w", err)
	}
	return plain, nil
}

// replyTypes are the MsgTypes of passive replies.
var replyTypes = map[string]bool{
	"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true,
	"transfer_customer_service": true,
}

// readReply checks a plain reply (ids swapped, known type, required fields,
// article count) and turns it into what the phone shows; nil for a hand-over
// to customer service, which shows nothing.
func readReply(plain []byte, msg *wechat.Message, kind pushKind) (*InboxItem, error) {
	r, err := wechat.ParseReply(plain)
	if err != nil {
		return nil, errors.New("not an XML reply")
	}
	switch {
	case r.ToUserName != msg.FromUserName:
		return nil, fmt.Errorf("ToUserName %q is not the user's openid %q", r.ToUserName, msg.FromUserName)
	case r.FromUserName != msg.ToUserName:
		return nil, fmt.Errorf("FromUserName %q is not the account's original id %q", r.FromUserName, msg.ToUserName)
	case !replyTypes[r.MsgType]:
		return nil, fmt.Errorf("unknown MsgType %q", r.MsgType)
	}
	item := &InboxItem{Kind: ItemReply, MsgType: r.MsgType}
	switch r.MsgType {
	case "text":
		if r.Content == "" {
			return nil, errors.New("text reply without Content")
		}
		item.Content = r.Content
	case "image":
		item.MediaID = r.Image.MediaID
	case "voice":
		item.MediaID = r.Voice.MediaID
	case "video":
		item.MediaID, item.Title, item.Description = r.Video.MediaID, r.Video.Title, r.Video.Description
	case "music":
		if r.Music.ThumbMediaID == "" {
			return nil, errors.New("music reply without ThumbMediaId")
		}
		item.Title, item.Description, item.URL, item.MediaID = r.Music.Title, r.Music.Description, r.Music.MusicURL, r.Music.ThumbMediaID
	case "news":
		n := len(r.Articles)
		switch {
		case n == 0 || n > 8:
			return nil, fmt.Errorf("news reply with %d articles", n)
		case r.ArticleCount != n:
			return nil, fmt.Errorf("ArticleCount %d but %d articles", r.ArticleCount, n)
		case kind == pushUserMessage && n > 1:
			return nil, fmt.Errorf("a news reply to a user message may carry 1 article, got %d", n)
		}
		for _, a := range r.Articles {
			item.Articles = append(item.Articles, wechat.Article{Title: a.Title, Description: a.Description, PicURL: a.PicURL, URL: a.URL})
		}
	case "transfer_customer_service":
		return nil, nil
	}
	if item.MsgType != "text" && item.MsgType != "news" && item.MediaID == "" {
		return nil, fmt.Errorf("%s reply without MediaId", item.MsgType)
	}
	return item, nil
}

// recordDelivery keeps the delivery in the recent log, raises the alarm and
// appends what the phone shows; it returns the stored item.
func (s *Simulator) recordDelivery(d *Delivery, shown *InboxItem, alarm *Alarm, openid string) *InboxItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextDelID++
	d.ID = s.nextDelID
	s.deliveries = append(s.deliveries, d)
	if len(s.deliveries) > maxDeliveries {
		s.deliveries = append([]*Delivery(nil), s.deliveries[len(s.deliveries)-maxDeliveries:]...)
	}
	if alarm != nil {
		alarm.At, alarm.DeliveryID = s.now(), d.ID
		alarm.ID = int64(len(s.st.Alarms)) + 1
		if n := len(s.st.Alarms); n > 0 {
			alarm.ID = s.st.Alarms[n-1].ID + 1
		}
		s.st.Alarms = append(s.st.Alarms, *alarm)
		if len(s.st.Alarms) > maxAlarms {
			s.st.Alarms = append([]Alarm(nil), s.st.Alarms[len(s.st.Alarms)-maxAlarms:]...)
		}
	}
	s.log.Info("wechatsim: push delivered", "app_id", d.AppID, "openid", d.OpenID, "msgtype", d.MsgType,
		"event", d.Event, "attempts", len(d.Attempts), "status", d.Status, "outcome", d.Outcome, "error", d.Error)
	if shown == nil {
		return nil
	}
	u := s.st.Users[openid]
	if u == nil {
		return nil
	}
	stored := s.addItem(u, *shown)
	return &stored
}

// Deliveries returns the recent pushes (the last 500), oldest first,
// optionally only those of one app and user.
func (s *Simulator) Deliveries(appID, openid string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	for _, d := range s.deliveries {
		if (appID == "" || d.AppID == appID) && (openid == "" || d.OpenID == openid) {
			out = append(out, *d)
		}
	}
	return out
}

// Alarms returns the alarms raised about apps' servers, oldest first;
// appID "" returns all.
func (s *Simulator) Alarms(appID string) []Alarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Alarm
	for _, a := range s.st.Alarms {
		if appID == "" || a.AppID == appID {
			out = append(out, a)
		}
	}
	return out
}

// VerifyResult is the outcome of the server URL verification (the GET that
// WeChat's console sends on "submit").
type VerifyResult struct {
	URL     string `json:"url"`
	Echostr string `json:"echostr"`
	Status  int    `json:"status"`
	Body    string `json:"body"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// VerifyURL sends the GET verification to an app's server URL. It succeeds
// only when the answer is HTTP 200 with the echostr byte for byte (no
// quotes, newline, BOM or XML around it). The GET is plaintext in every mode.
func (s *Simulator) VerifyURL(ctx context.Context, appID string) (*VerifyResult, error) {
	target, found := s.targetOf(appID)
	if !found {
		return nil, errorf(CodeNotFound, "应用不存在 app %q not found", appID)
	}
	if target.app.CallbackURL == "" {
		return nil, errorf(CodeInvalid, "应用 %s 未配置服务器地址 app has no callback_url", appID)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce, echostr := newNonce(), newEchostr()
	endpoint := appendQuery(target.app.CallbackURL, "signature="+wechat.Signature(target.app.Token, ts, nonce)+
		"&echostr="+echostr+"&timestamp="+ts+"&nonce="+nonce)
	res := &VerifyResult{URL: endpoint, Echostr: echostr}
	actx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, errorf(CodeInvalid, "服务器地址无效 invalid callback_url: %v", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		res.Error = "请求失败 request failed: " + err.Error()
		return res, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		res.Error = "读取失败 read failed: " + err.Error()
		return res, nil
	}
	res.Status, res.Body = resp.StatusCode, string(body)
	switch {
	case resp.StatusCode != http.StatusOK:
		res.Error = fmt.Sprintf("Token验证失败 the server answered HTTP %d", resp.StatusCode)
	case res.Body != echostr:
		res.Error = fmt.Sprintf("Token验证失败 the body %q is not the echostr %q", truncate(res.Body, 80), echostr)
	default:
		res.OK = true
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
