package push

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Request is the body of POST /api/v1/messages.
type Request struct {
	Account string     `json:"account"`
	To      Recipients `json:"to"`
	// Channel is template, subscribe, mp_subscribe or custom; empty means
	// the channel of the template (or custom with text/custom).
	Channel  string                     `json:"channel,omitempty"`
	Template string                     `json:"template,omitempty"`
	Data     map[string]json.RawMessage `json:"data,omitempty"`
	// URL opens a web page (template; subscribe uses it as its page).
	URL         string       `json:"url,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	// Page is the page of a subscription message: a web page for
	// subscribe, a path of the mini program for mp_subscribe.
	Page             string `json:"page,omitempty"`
	MiniProgramState string `json:"miniprogram_state,omitempty"`
	Lang             string `json:"lang,omitempty"`
	// Text is a customer-service text message.
	Text string `json:"text,omitempty"`
	// Custom is any customer-service message as WeChat's custom/send takes
	// it, without touser: {"msgtype":"news","news":{…}}.
	Custom json.RawMessage `json:"custom,omitempty"`
	// Truncate overrides the alias: shorten values that are too long.
	Truncate *bool `json:"truncate,omitempty"`
}

// Recipients are who a message goes to.
type Recipients struct {
	OpenIDs     []string `json:"openids,omitempty"`
	UnionIDs    []string `json:"unionids,omitempty"`
	ExternalIDs []string `json:"external_ids,omitempty"`
	// Tag adds every subscribed follower carrying this WeChat user tag
	// (official accounts), as openids.
	Tag *int64 `json:"tag,omitempty"`
	// All adds every subscribed follower of the account (at most
	// MaxRecipients).
	All bool `json:"all,omitempty"`
}

// SendOptions carry what comes with a request besides its body.
type SendOptions struct {
	// IdempotencyKey: the same key (for the same API key) returns the first
	// response and sends nothing more.
	IdempotencyKey string
	// APIKeyID scopes the idempotency key; 0 for the CLI, ConsoleScope
	// for an admin of the console.
	APIKeyID int64
}

// ConsoleScope is the idempotency scope of an admin user of the console,
// which has no API key: API keys have positive ids and the CLI 0, so a
// console key never replays another caller's message.
func ConsoleScope(adminUserID int64) int64 { return -adminUserID }

// Recipient statuses.
const (
	StatusQueued    = "queued"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusBlocked   = "blocked"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	// StatusUnconfirmed is final: sent, but no receipt came within the
	// receipt timeout (reason receipt_missing). A late receipt still moves
	// it to delivered, blocked or failed.
	StatusUnconfirmed = "unconfirmed"
)

// Reasons of skipped recipients.
const (
	ReasonNotBound       = "not_bound"
	ReasonUnknownUnionID = "unknown_unionid"
	ReasonNotSubscribed  = "not_subscribed"
	ReasonNoGrant        = "no_grant"
	ReasonOutsideWindow  = "outside_window"
	ReasonDuplicate      = "duplicate"
)

// Accepted is the 202 answer of a send.
type Accepted struct {
	ID         string            `json:"id"`
	Recipients []RecipientResult `json:"recipients"`
}

// RecipientResult is one recipient in the 202 answer.
type RecipientResult struct {
	ExternalID string `json:"external_id,omitempty"`
	UnionID    string `json:"unionid,omitempty"`
	OpenID     string `json:"openid,omitempty"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	// Channel is set when it differs from the message's (a fallback).
	Channel string `json:"channel,omitempty"`
}

// SendResult is what Send returns: the answer, its exact bytes (replayed
// byte for byte for a repeated Idempotency-Key) and whether it is a replay.
type SendResult struct {
	Accepted Accepted
	Body     []byte
	Replayed bool
}

// Recipient-kind names, as in the answer.
const (
	toOpenID     = "openid"
	toUnionID    = "unionid"
	toExternalID = "external_id"
)

// payload is what the worker sends to each recipient of a message.
type payload struct {
	Channel     string          `json:"channel"`
	TemplateID  string          `json:"template_id,omitempty"`
	Data        DataMap         `json:"data,omitempty"`
	URL         string          `json:"url,omitempty"`
	MiniProgram *MiniProgram    `json:"miniprogram,omitempty"`
	Page        string          `json:"page,omitempty"`
	State       string          `json:"miniprogram_state,omitempty"`
	Lang        string          `json:"lang,omitempty"`
	Custom      json.RawMessage `json:"custom,omitempty"`
}

// SendArgs is the River job of one recipient.
type SendArgs struct {
	RecipientID int64 `json:"recipient_id"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "push_send" }

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// Send validates a request, resolves its recipients and queues one job per
// recipient, all in one transaction.
func (s *Service) Send(ctx context.Context, req Request, o SendOptions) (*SendResult, error) {
	if s.opts.Jobs == nil {
		return nil, errors.New("push: this gateway has no queue to send with")
	}
	key := strings.TrimSpace(o.IdempotencyKey)
	if utf8.RuneCountInString(key) > maxIdempotencyKey {
		return nil, problem.Invalidf("invalid_idempotency_key", "Idempotency-Key",
			"the Idempotency-Key header is longer than %d characters — Idempotency-Key 不能超过 %d 个字符", maxIdempotencyKey, maxIdempotencyKey)
	}
	hash := requestHash(req)
	if key != "" {
		if res, err := s.replay(ctx, o.APIKeyID, key, hash); res != nil || err != nil {
			return res, err
		}
	}
	plan, err := s.plan(ctx, req)
	if err != nil {
		return nil, err
	}
	res, err := s.commit(ctx, plan, key, hash, o.APIKeyID)
	if err != nil && key != "" {
		// Another request with the same key may have won the race.
		if again, rerr := s.replay(ctx, o.APIKeyID, key, hash); again != nil || rerr != nil {
			return again, rerr
		}
	}
	return res, err
}

// replay returns the stored answer of an Idempotency-Key, nil when the key
// is new, or a conflict when it came with another body.
func (s *Service) replay(ctx context.Context, apiKeyID int64, key, hash string) (*SendResult, error) {
	var storedHash, body string
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, response FROM push_messages WHERE api_key_id = $1 AND idempotency_key = $2`,
		apiKeyID, key).Scan(&storedHash, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("push: idempotency key: %w", err)
	}
	if storedHash != hash {
		return nil, problem.Conflictf("idempotency_key_reused", "Idempotency-Key",
			"Idempotency-Key %q was used for a different request; use a new key for a new message — 此 Idempotency-Key 已用于另一个请求，新消息请使用新的 key", key)
	}
	res := &SendResult{Body: []byte(body), Replayed: true}
	if err := json.Unmarshal([]byte(body), &res.Accepted); err != nil {
		return nil, fmt.Errorf("push: stored answer of %q: %w", key, err)
	}
	return res, nil
}

// requestHash identifies a request's content for idempotency checks.
func requestHash(req Request) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sendPlan is a validated request with its recipients decided, ready to
// be written.
type sendPlan struct {
	account  config.Account
	channel  string
	template string // as requested
	main     payload
	fallback *payload
	// templateID of the subscription grants to spend; "" for other channels.
	grantTemplate string
	recipients    []*planned
}

type planned struct {
	toKind, toValue string
	openid          string
	status, reason  string
	channel         string
	fallback        bool
	needsGrant      bool
	grantID         int64
}

// plan checks a request and resolves its recipients; it writes nothing.
func (s *Service) plan(ctx context.Context, req Request) (*sendPlan, error) {
	a, err := s.account(req.Account)
	if err != nil {
		return nil, err
	}
	p := &sendPlan{account: a, template: req.Template}
	channel := req.Channel
	if channel == "" && req.Template == "" && (req.Text != "" || len(req.Custom) > 0) {
		channel = ChannelCustom
	}
	if channel != "" {
		if err := checkChannel(channel, a); err != nil {
			return nil, err
		}
	}
	if channel == ChannelCustom {
		body, err := customBody(req)
		if err != nil {
			return nil, err
		}
		if body, err = s.uploadCustomFiles(ctx, a.Name, body); err != nil {
			return nil, err
		}
		p.channel = ChannelCustom
		p.main = payload{Channel: ChannelCustom, Custom: body}
	} else {
		if req.Text != "" || len(req.Custom) > 0 {
			return nil, problem.Invalidf("text_not_allowed", "text",
				"text and custom are for channel custom (customer-service messages) — text 和 custom 仅用于客服消息 (channel custom)")
		}
		c, err := s.compose(ctx, a, channel, req.Template, req.Data, req.Truncate)
		if err != nil {
			return nil, err
		}
		p.channel = c.channel
		p.main, err = jumpPayload(c, req, a)
		if err != nil {
			return nil, err
		}
		if c.channel == ChannelSubscribe || c.channel == ChannelMPSubscribe {
			p.grantTemplate = c.template.TemplateID
			if c.alias != nil && c.alias.Fallback != "" {
				fb, err := s.compose(ctx, a, ChannelTemplate, c.alias.Fallback, req.Data, req.Truncate)
				if err != nil {
					if perr, ok := problem.As(err); ok {
						perr.Message = "fallback alias " + c.alias.Fallback + ": " + perr.Message
					}
					return nil, err
				}
				fbReq := req
				fbReq.MiniProgram, fbReq.Page = nil, ""
				fbp, err := jumpPayload(fb, fbReq, a)
				if err != nil {
					return nil, err
				}
				if fbp.URL == "" && fbp.MiniProgram == nil {
					fbp.URL, fbp.MiniProgram = req.URL, req.MiniProgram
				}
				p.fallback = &fbp
			}
		}
	}
	if err := s.resolve(ctx, p, req.To); err != nil {
		return nil, err
	}
	return p, nil
}

// jumpPayload builds the payload of a composed template send with its
// jump: the request's, else the alias's.
func jumpPayload(c *composed, req Request, a config.Account) (payload, error) {
	p := payload{Channel: c.channel, TemplateID: c.template.TemplateID, Data: c.data,
		URL: req.URL, MiniProgram: req.MiniProgram, Page: req.Page}
	if al := c.alias; al != nil && p.URL == "" && p.MiniProgram == nil && p.Page == "" {
		p.URL, p.MiniProgram, p.Page = al.URL, al.MiniProgram, al.Page
	}
	if p.MiniProgram != nil && p.MiniProgram.AppID == "" {
		return p, problem.Invalidf("miniprogram_appid_required", "miniprogram.appid",
			"miniprogram.appid is required to open a mini program — 跳转小程序需要 miniprogram.appid")
	}
	switch c.channel {
	case ChannelTemplate:
		if p.Page != "" {
			return p, problem.Invalidf("page_not_allowed", "page",
				"a template message opens url or miniprogram, not page — 模板消息使用 url 或 miniprogram 跳转，不支持 page")
		}
	case ChannelSubscribe:
		if p.Page == "" {
			p.Page, p.URL = p.URL, ""
		} else if p.URL != "" {
			return p, problem.Invalidf("url_and_page", "url",
				"a subscription notification opens page (a web page); give page or url, not both — 订阅通知只需 page 或 url 之一")
		}
	case ChannelMPSubscribe:
		if p.URL != "" || p.MiniProgram != nil {
			return p, problem.Invalidf("jump_not_allowed", "url",
				"url and miniprogram do not apply: a mini program subscription message opens page, a path of the mini program — 小程序订阅消息不支持 url 或 miniprogram，只能用 page 跳转到本小程序页面")
		}
		switch req.MiniProgramState {
		case "", "developer", "trial", "formal":
		default:
			return p, problem.Invalidf("invalid_miniprogram_state", "miniprogram_state",
				"miniprogram_state must be developer, trial or formal — miniprogram_state 只能是 developer、trial 或 formal")
		}
		switch req.Lang {
		case "", "zh_CN", "en_US", "zh_HK", "zh_TW":
		default:
			return p, problem.Invalidf("invalid_lang", "lang", "lang must be zh_CN, en_US, zh_HK or zh_TW — lang 只能是 zh_CN、en_US、zh_HK 或 zh_TW")
		}
		p.State, p.Lang = req.MiniProgramState, req.Lang
	}
	_ = a
	return p, nil
}

// customMsgTypes are the message types of custom/send.
var customMsgTypes = map[string]bool{"text": true, "image": true, "voice": true, "video": true, "music": true, "news": true,
	"mpnews": true, "mpnewsarticle": true, "msgmenu": true, "wxcard": true, "miniprogrampage": true}

// customBody checks a customer-service message and returns its body
// without touser.
func customBody(req Request) (json.RawMessage, error) {
	if req.Template != "" || len(req.Data) > 0 {
		return nil, problem.Invalidf("template_not_allowed", "template",
			"a custom (customer-service) message has no template or data; send text or custom — 客服消息不使用模板，请使用 text 或 custom")
	}
	if req.Text != "" && len(req.Custom) > 0 {
		return nil, problem.Invalidf("text_and_custom", "custom", "give text or custom, not both — text 与 custom 只能二选一")
	}
	if req.Text != "" {
		b, _ := json.Marshal(map[string]any{"msgtype": "text", "text": map[string]string{"content": req.Text}})
		return b, nil
	}
	if len(req.Custom) == 0 {
		return nil, problem.Invalidf("content_required", "text", "a custom message needs text or custom — 客服消息需要 text 或 custom")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(req.Custom, &m); err != nil {
		return nil, problem.Invalidf("invalid_custom", "custom", "custom must be a JSON object like {\"msgtype\":\"text\",\"text\":{\"content\":\"…\"}} — custom 必须是 JSON 对象")
	}
	var msgType string
	if err := json.Unmarshal(m["msgtype"], &msgType); err != nil || !customMsgTypes[msgType] {
		return nil, problem.Invalidf("invalid_msgtype", "custom.msgtype",
			"custom.msgtype must be one of text, image, voice, video, music, news, mpnews, mpnewsarticle, msgmenu, wxcard, miniprogrampage — custom.msgtype 无效")
	}
	if len(bytes.TrimSpace(m[msgType])) == 0 {
		return nil, problem.Invalidf("missing_content", "custom."+msgType, "custom.%s is required for msgtype %s — 缺少 custom.%s", msgType, msgType, msgType)
	}
	delete(m, "touser")
	b, _ := json.Marshal(m)
	return b, nil
}

// customFiles are the file keys a customer-service body may carry in
// place of a media id, by message type: the key, the id it becomes and
// the media type it is uploaded as.
var customFiles = map[string][][3]string{
	"image": {{"file", "media_id", wechat.MediaImage}},
	"voice": {{"file", "media_id", wechat.MediaVoice}},
	"video": {{"file", "media_id", wechat.MediaVideo}, {"thumb_file", "thumb_media_id", wechat.MediaThumb}},
	"music": {{"thumb_file", "thumb_media_id", wechat.MediaThumb}},
}

// uploadCustomFiles replaces the local files a customer-service body names
// ({"msgtype":"image","image":{"file":"./img/a.jpg"}}) by their media ids,
// uploading each once (temporary media, renewed before it expires).
func (s *Service) uploadCustomFiles(ctx context.Context, account string, body json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("push: re-reading a custom body: %w", err)
	}
	var msgType string
	_ = json.Unmarshal(m["msgtype"], &msgType)
	if msgType != "news" && len(customFiles[msgType]) == 0 {
		return body, nil
	}
	var content map[string]any
	if err := json.Unmarshal(m[msgType], &content); err != nil {
		return nil, problem.Invalidf("invalid_custom", "custom."+msgType, "custom.%s must be a JSON object — custom.%s 必须是 JSON 对象", msgType, msgType)
	}
	// replace uploads the file obj[fileKey] names and puts the reference
	// WeChat gave in obj[refKey].
	changed := false
	replace := func(obj map[string]any, at, fileKey, refKey, typ string) error {
		raw, named := obj[fileKey]
		if !named {
			return nil
		}
		file, ok := raw.(string)
		field := at + "." + fileKey
		switch {
		case !ok || strings.TrimSpace(file) == "":
			return problem.Invalidf("invalid_custom", field, "%s must be a file path — %s 必须是文件路径", field, field)
		case obj[refKey] != nil:
			return problem.Invalidf("invalid_custom", field, "give %s or %s, not both — %s 与 %s 只能填写一个", refKey, fileKey, refKey, fileKey)
		case s.opts.Files == nil:
			return problem.Invalidf("files_unavailable", field, "files cannot be uploaded on this server — 此服务不能上传文件")
		}
		ref, err := s.opts.Files.ForFile(ctx, account, typ, file)
		if err != nil {
			return fmt.Errorf("push: %s: %w", field, err)
		}
		delete(obj, fileKey)
		obj[refKey] = ref
		changed = true
		return nil
	}
	at := "custom." + msgType
	if msgType == "news" {
		// A link article's cover is a URL: a pic_file goes up as an
		// article image (media/uploadimg).
		articles, _ := content["articles"].([]any)
		for i, a := range articles {
			if article, ok := a.(map[string]any); ok {
				if err := replace(article, fmt.Sprintf("%s.articles[%d]", at, i), "pic_file", "picurl", wechat.MediaNewsImage); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, k := range customFiles[msgType] {
		if err := replace(content, at, k[0], k[1], k[2]); err != nil {
			return nil, err
		}
	}
	if !changed {
		return body, nil
	}
	m[msgType], _ = json.Marshal(content)
	out, _ := json.Marshal(m)
	return out, nil
}

// resolve turns the request's recipients into planned rows: openids
// resolved, and those who cannot be reached skipped with a reason.
func (s *Service) resolve(ctx context.Context, p *sendPlan, to Recipients) error {
	var list []*planned
	add := func(kind string, values []string) {
		seen := map[string]bool{}
		for _, v := range values {
			v = strings.TrimSpace(v)
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			list = append(list, &planned{toKind: kind, toValue: v})
		}
	}
	add(toOpenID, to.OpenIDs)
	if to.Tag != nil {
		tagged, err := s.resolver.OpenIDsWithTag(ctx, p.account.Name, *to.Tag)
		if err != nil {
			return err
		}
		if len(tagged) == 0 {
			return problem.Invalidf("tag_empty", "to.tag", "no subscribed follower carries tag %d — 没有关注中的粉丝带有标签 %d", *to.Tag, *to.Tag)
		}
		add(toOpenID, tagged)
	}
	if to.All {
		everyone, err := s.resolver.SubscribedOpenIDs(ctx, p.account.Name, s.opts.MaxRecipients+1)
		if err != nil {
			return err
		}
		if len(everyone) == 0 {
			return problem.Invalidf("no_followers", "to.all", "the account has no subscribed follower yet — 该公众号还没有关注中的粉丝")
		}
		add(toOpenID, everyone)
	}
	add(toUnionID, to.UnionIDs)
	add(toExternalID, to.ExternalIDs)
	if len(list) == 0 {
		return problem.Invalidf("recipients_required", "to",
			"to needs at least one of openids, unionids, external_ids, tag, all — to 中至少需要一个 openids、unionids、external_ids、tag 或 all")
	}
	if len(list) > s.opts.MaxRecipients {
		return problem.Invalidf("too_many_recipients", "to", "at most %d recipients per message, got %d — 每条消息最多 %d 个接收者",
			s.opts.MaxRecipients, len(list), s.opts.MaxRecipients)
	}
	account := p.account.Name
	var unionids, externals []string
	for _, r := range list {
		switch r.toKind {
		case toUnionID:
			unionids = append(unionids, r.toValue)
		case toExternalID:
			externals = append(externals, r.toValue)
		}
	}
	byUnion := map[string]string{}
	byExternal := map[string][]string{}
	var err error
	if len(unionids) > 0 {
		if byUnion, err = s.resolver.OpenIDsByUnionID(ctx, account, unionids); err != nil {
			return err
		}
	}
	if len(externals) > 0 {
		if byExternal, err = s.resolver.OpenIDsByExternalID(ctx, account, externals); err != nil {
			return err
		}
	}
	var out []*planned
	for _, r := range list {
		r.channel = p.channel
		switch r.toKind {
		case toOpenID:
			r.openid = r.toValue
		case toUnionID:
			r.openid = byUnion[r.toValue]
			if r.openid == "" {
				r.status, r.reason = StatusSkipped, ReasonUnknownUnionID
			}
		case toExternalID:
			// One row per bound openid, in binding order.
			openids := byExternal[r.toValue]
			if len(openids) == 0 {
				r.status, r.reason = StatusSkipped, ReasonNotBound
				break
			}
			r.openid = openids[0]
			out = append(out, r)
			for _, o := range openids[1:] {
				out = append(out, &planned{toKind: r.toKind, toValue: r.toValue, openid: o, channel: p.channel})
			}
			continue
		}
		out = append(out, r)
	}

	seen := map[string]bool{}
	var openids []string
	for _, r := range out {
		if r.status != "" {
			continue
		}
		if seen[r.openid] {
			r.status, r.reason = StatusSkipped, ReasonDuplicate
			continue
		}
		seen[r.openid] = true
		openids = append(openids, r.openid)
	}

	needsFollower := p.channel == ChannelTemplate || p.channel == ChannelCustom && p.account.Kind != config.KindMiniProgram ||
		p.fallback != nil
	var subscribed map[string]bool
	if needsFollower && len(openids) > 0 {
		if subscribed, err = s.resolver.Subscribed(ctx, account, openids); err != nil {
			return err
		}
	}
	var windows map[string]bool
	if p.channel == ChannelCustom && len(openids) > 0 {
		if windows, err = s.windows.OpenWindows(ctx, account, openids, s.now()); err != nil {
			return err
		}
	}
	for _, r := range out {
		if r.status != "" {
			continue
		}
		known, isKnown := subscribed[r.openid]
		unsubscribed := isKnown && !known
		switch p.channel {
		case ChannelTemplate:
			if unsubscribed {
				r.status, r.reason = StatusSkipped, ReasonNotSubscribed
			}
		case ChannelCustom:
			if unsubscribed && p.account.Kind != config.KindMiniProgram {
				r.status, r.reason = StatusSkipped, ReasonNotSubscribed
			} else if !windows[r.openid] {
				r.status, r.reason = StatusSkipped, ReasonOutsideWindow
			}
		case ChannelSubscribe, ChannelMPSubscribe:
			r.needsGrant = true
		}
		if r.status == "" {
			r.status = StatusQueued
		}
	}
	p.recipients = out
	return nil
}

// newMessageID returns msg_ and 20 random base32 characters.
func newMessageID() string {
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
}

// ClientMsgID is the client_msg_id of a recipient row: the same on every
// attempt, so WeChat sends once within its 10-minute window.
func ClientMsgID(messageID string, seq int) string {
	return fmt.Sprintf("%s-%d", messageID, seq)
}

// Recipient rows per INSERT: SQLite parses a statement per call, and long
// statements cost more than they save.
const (
	insertBatchSQLite   = 50
	insertBatchPostgres = 400
)

// commit writes the message, its recipients, their grants and jobs in one
// transaction and stores the answer.
func (s *Service) commit(ctx context.Context, p *sendPlan, key, hash string, apiKeyID int64) (*SendResult, error) {
	id := newMessageID()
	now := s.stamp()
	mainJSON, _ := json.Marshal(p.main)
	var fbJSON any
	if p.fallback != nil {
		b, _ := json.Marshal(p.fallback)
		fbJSON = string(b)
	}
	var keyArg any
	if key != "" {
		keyArg = key
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("push: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `
INSERT INTO push_messages (id, account, channel, template, payload, fallback_payload, idempotency_key, request_hash, api_key_id, recipients, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, p.account.Name, p.channel, p.template, string(mainJSON), fbJSON, keyArg, hash, apiKeyID, len(p.recipients), now); err != nil {
		return nil, fmt.Errorf("push: insert message: %w", err)
	}

	// Grants: reserve one per recipient of a subscription message; without
	// one, fall back to the template message or skip.
	for _, r := range p.recipients {
		if !r.needsGrant || r.status != StatusQueued {
			continue
		}
		gid, err := reserveGrant(ctx, tx, p.account.Name, r.openid, p.grantTemplate, now)
		if err != nil {
			return nil, err
		}
		if gid != 0 {
			r.grantID = gid
			continue
		}
		if p.fallback == nil {
			r.status, r.reason = StatusSkipped, ReasonNoGrant
			continue
		}
		r.channel, r.fallback = ChannelTemplate, true
	}
	if p.fallback != nil {
		// The fallback is a template message: only for followers.
		var fb []string
		for _, r := range p.recipients {
			if r.fallback {
				fb = append(fb, r.openid)
			}
		}
		if len(fb) > 0 {
			sub, err := s.resolver.Subscribed(ctx, p.account.Name, fb)
			if err != nil {
				return nil, err
			}
			for _, r := range p.recipients {
				if v, known := sub[r.openid]; r.fallback && known && !v {
					r.status, r.reason = StatusSkipped, ReasonNoGrant
				}
			}
		}
	}

	batch := insertBatchPostgres
	if s.db.Dialect == db.SQLite {
		batch = insertBatchSQLite
	}
	for start := 0; start < len(p.recipients); start += batch {
		part := p.recipients[start:min(start+batch, len(p.recipients))]
		if err := insertRecipients(ctx, tx, s.db.Dialect, id, p.account.Name, start, part, now); err != nil {
			return nil, err
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM push_recipients WHERE message_id = $1 AND status = $2 ORDER BY seq`, id, StatusQueued)
	if err != nil {
		return nil, fmt.Errorf("push: read recipients: %w", err)
	}
	var jobs []river.InsertManyParams
	for rows.Next() {
		var rid int64
		if err := rows.Scan(&rid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("push: read recipients: %w", err)
		}
		jobs = append(jobs, river.InsertManyParams{Args: SendArgs{RecipientID: rid}, InsertOpts: s.insertOpts()})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push: read recipients: %w", err)
	}
	for start := 0; start < len(jobs); start += 5000 {
		if _, err := s.opts.Jobs.InsertManyTx(ctx, tx, jobs[start:min(start+5000, len(jobs))]); err != nil {
			return nil, fmt.Errorf("push: queue sends: %w", err)
		}
	}

	acc := Accepted{ID: id, Recipients: make([]RecipientResult, len(p.recipients))}
	for i, r := range p.recipients {
		rr := RecipientResult{OpenID: r.openid, Status: r.status, Reason: r.reason}
		switch r.toKind {
		case toUnionID:
			rr.UnionID = r.toValue
		case toExternalID:
			rr.ExternalID = r.toValue
		}
		if r.channel != p.channel {
			rr.Channel = r.channel
		}
		acc.Recipients[i] = rr
	}
	body, err := json.Marshal(acc)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE push_messages SET response = $1 WHERE id = $2`, string(body), id); err != nil {
		return nil, fmt.Errorf("push: store answer: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("push: commit: %w", err)
	}
	return &SendResult{Accepted: acc, Body: body}, nil
}

func (s *Service) insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: s.opts.Queue, MaxAttempts: s.opts.MaxAttempts}
}

const recipientColumns = 14

// insertRecipients writes rows in one statement. On SQLite its
// placeholders are ?NNN: SQLite treats $NNN as named parameters, looked up
// one by one, which makes a statement with many of them quadratic.
func insertRecipients(ctx context.Context, tx *sql.Tx, dialect db.Dialect, messageID, account string, offset int, part []*planned, now time.Time) error {
	mark := "$"
	if dialect == db.SQLite {
		mark = "?"
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO push_recipients (message_id, seq, account, to_kind, to_value, openid, channel, fallback, status, reason, grant_id, created_at, updated_at, done_at) VALUES `)
	args := make([]any, 0, len(part)*recipientColumns)
	for i, r := range part {
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		b.WriteByte('(')
		for c := 1; c <= recipientColumns; c++ {
			if c > 1 {
				b.WriteString(", ")
			}
			b.WriteString(mark)
			b.WriteString(strconv.Itoa(n + c))
		}
		b.WriteByte(')')
		var grant, done any
		if r.grantID != 0 {
			grant = r.grantID
		}
		if r.status == StatusSkipped {
			done = now
		}
		args = append(args, messageID, offset+i+1, account, r.toKind, r.toValue, r.openid, r.channel, r.fallback, r.status, r.reason,
			grant, now, now, done)
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("push: insert recipients: %w", err)
	}
	return nil
}
