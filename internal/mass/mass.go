// Package mass sends mass messages (群发) to a tag's followers or to all of
// them: previewed to one follower first, counted against the account's
// monthly quota before any call, made idempotent by clientmsgid, and
// completed by WeChat's MASSSENDJOBFINISH receipt.
package mass

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Message types.
const (
	TypeText  = "text"
	TypeImage = "image"
	TypeVoice = "voice"
	TypeVideo = "video"
	TypeNews  = "news"
	TypeCard  = "card"
)

// Statuses of a mass send.
const (
	StatusSending  = "sending"  // recorded, WeChat not answered yet
	StatusSent     = "sent"     // WeChat took the job; the receipt is awaited
	StatusFinished = "finished" // MASSSENDJOBFINISH reported success
	StatusFailed   = "failed"   // WeChat refused it, or the job failed
	StatusUnknown  = "unknown"  // the answer was lost: WeChat may have sent it
	StatusDeleted  = "deleted"
)

// DefaultMonthlyQuota is a 服务号's mass sends per calendar month.
const DefaultMonthlyQuota = 4

// Message is what a mass send says. Image and voice may name a local File
// instead of a MediaID; Images lists up to 8 images.
type Message struct {
	Type     string   `json:"type"`
	Text     string   `json:"text,omitempty"`
	MediaID  string   `json:"media_id,omitempty"`
	MediaIDs []string `json:"media_ids,omitempty"`
	File     string   `json:"file,omitempty"`
	CardID   string   `json:"card_id,omitempty"`
}

// Audience is a tag or every follower.
type Audience struct {
	TagID *int64 `json:"tag,omitempty"`
	All   bool   `json:"all,omitempty"`
}

// Send is one mass send as recorded.
type Send struct {
	ID           int64      `json:"id"`
	Account      string     `json:"account"`
	ClientMsgID  string     `json:"client_msg_id"`
	Message      Message    `json:"message"`
	To           Audience   `json:"to"`
	Status       string     `json:"status"`
	MsgID        int64      `json:"msg_id,omitempty"`
	MsgDataID    int64      `json:"msg_data_id,omitempty"`
	WeChatStatus string     `json:"wechat_status,omitempty"`
	TotalCount   int64      `json:"total_count"`
	FilterCount  int64      `json:"filter_count"`
	SentCount    int64      `json:"sent_count"`
	ErrorCount   int64      `json:"error_count"`
	Error        string     `json:"error,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	DeletedAt    *time.Time `json:"deleted_at,omitempty"`
	// Reused is true when the client_msg_id was sent before: nothing new
	// was sent.
	Reused bool `json:"reused,omitempty"`
}

// Quota is the account's mass sends this month.
type Quota struct {
	Account   string    `json:"account"`
	Month     string    `json:"month"`
	Limit     int       `json:"limit"`
	Used      int       `json:"used"`
	Remaining int       `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at"`
}

// Clients gives the API client of an account (*token.Registry).
type Clients interface {
	Client(account string) (*wechat.Client, bool)
}

// Files uploads a local file and gives its media_id (*media.Library).
type Files interface {
	ForFile(ctx context.Context, account, typ, path string) (string, error)
}

// Options configure a Service.
type Options struct {
	DB       *db.DB
	Accounts []config.Account
	Clients  Clients
	Files    Files
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service sends and records mass messages.
type Service struct{ opts Options }

// New returns a Service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts}
}

func (s *Service) account(name string) (config.Account, error) {
	if name == "" {
		return config.Account{}, problem.Invalidf("account_required", "account", "name the account — 请指定公众号 account")
	}
	for _, a := range s.opts.Accounts {
		if a.Name == name {
			if a.Kind == config.KindMiniProgram {
				return a, problem.Invalidf("not_an_official_account", "account", "%s is a mini program; mass sends belong to official accounts — 小程序不能群发", name)
			}
			return a, nil
		}
	}
	return config.Account{}, config.UnknownAccount(name)
}

func (s *Service) client(name string) (*wechat.Client, error) {
	if s.opts.Clients != nil {
		if c, ok := s.opts.Clients.Client(name); ok {
			return c, nil
		}
	}
	return nil, problem.NotFoundf("account_not_found", "account",
		"account %q has no app_secret, so wxgate cannot call WeChat for it — 公众号 %q 未配置 app_secret", name, name)
}

// maxTextBytes is WeChat's limit for a text mass message's content.
const maxTextBytes = 2048

// content checks a message and turns it into WeChat's form, uploading a
// named file.
func (s *Service) content(ctx context.Context, account string, m Message) (wechat.MassContent, error) {
	invalid := func(format string, args ...any) error {
		return problem.Invalidf("invalid_mass_message", "message", format, args...)
	}
	mediaID := func(typ string) (string, error) {
		switch {
		case m.File != "" && m.MediaID != "":
			return "", invalid("give media_id or file, not both — media_id 与 file 只能填写一个")
		case m.File != "":
			if s.opts.Files == nil {
				return "", invalid("files cannot be uploaded on this server — 此服务不能上传文件")
			}
			return s.opts.Files.ForFile(ctx, account, typ, m.File)
		case m.MediaID == "":
			return "", invalid("a %s mass message needs media_id or file — %s 群发需要 media_id 或 file", m.Type, m.Type)
		}
		return m.MediaID, nil
	}
	switch m.Type {
	case TypeText:
		if strings.TrimSpace(m.Text) == "" {
			return wechat.MassContent{}, invalid("a text mass message needs text — 文本群发需要填写 text")
		}
		if len(m.Text) > maxTextBytes || !utf8.ValidString(m.Text) {
			return wechat.MassContent{}, invalid("text may be at most %d bytes of UTF-8 (got %d) — 文本最长 %d 字节（当前 %d 字节）", maxTextBytes, len(m.Text), maxTextBytes, len(m.Text))
		}
		return wechat.MassContent{MsgType: wechat.MassTypeText, Text: &wechat.MassText{Content: m.Text}}, nil
	case TypeImage:
		ids := append([]string(nil), m.MediaIDs...)
		if m.MediaID != "" || m.File != "" {
			id, err := mediaID(wechat.MediaImage)
			if err != nil {
				return wechat.MassContent{}, err
			}
			ids = append(ids, id)
		}
		if len(ids) == 0 || len(ids) > 8 {
			return wechat.MassContent{}, invalid("an image mass message takes 1 to 8 images (got %d) — 图片群发需要 1 到 8 张图片（当前 %d 张）", len(ids), len(ids))
		}
		return wechat.MassContent{MsgType: wechat.MassTypeImage, Images: &wechat.MassImages{MediaIDs: ids}}, nil
	case TypeVoice:
		id, err := mediaID(wechat.MediaVoice)
		if err != nil {
			return wechat.MassContent{}, err
		}
		return wechat.MassContent{MsgType: wechat.MassTypeVoice, Voice: &wechat.MassMediaRef{MediaID: id}}, nil
	case TypeVideo:
		if m.File != "" {
			return wechat.MassContent{}, invalid("a video mass message needs the media_id of a permanent video (wxgate media upload --permanent) — 视频群发需要永久视频素材的 media_id")
		}
		id, err := mediaID(wechat.MediaVideo)
		if err != nil {
			return wechat.MassContent{}, err
		}
		return wechat.MassContent{MsgType: wechat.MassTypeMPVideo, MPVideo: &wechat.MassMediaRef{MediaID: id}}, nil
	case TypeNews:
		if m.MediaID == "" || m.File != "" {
			return wechat.MassContent{}, invalid("a news mass message needs the media_id of a published article — 图文群发需要图文素材的 media_id")
		}
		return wechat.MassContent{MsgType: wechat.MassTypeMPNews, MPNews: &wechat.MassMediaRef{MediaID: m.MediaID}}, nil
	case TypeCard:
		if m.CardID == "" {
			return wechat.MassContent{}, invalid("a card mass message needs card_id — 卡券群发需要 card_id")
		}
		return wechat.MassContent{MsgType: wechat.MassTypeWxCard, WxCard: &wechat.MassCard{CardID: m.CardID}}, nil
	case "miniprogram":
		return wechat.MassContent{}, invalid("WeChat's mass send has no mini program card; put the card in a news article — 微信群发不支持小程序卡片，请在图文中插入小程序")
	case "":
		return wechat.MassContent{}, invalid("message.type is required (text, image, voice, video, news or card) — 缺少消息类型 type")
	}
	return wechat.MassContent{}, invalid("message.type must be text, image, voice, video, news or card (got %q) — 消息类型只能是 text、image、voice、video、news 或 card", m.Type)
}

// Preview sends the message to one follower (mass/preview): it uses no
// quota and is not recorded.
func (s *Service) Preview(ctx context.Context, account, openid string, m Message) (int64, error) {
	if _, err := s.account(account); err != nil {
		return 0, err
	}
	if openid == "" {
		return 0, problem.Invalidf("openid_required", "openid", "name the follower who previews — 请指定预览的粉丝 openid")
	}
	content, err := s.content(ctx, account, m)
	if err != nil {
		return 0, err
	}
	c, err := s.client(account)
	if err != nil {
		return 0, err
	}
	res, err := c.PreviewMass(ctx, openid, content)
	if err != nil {
		return 0, explain(err)
	}
	return int64(res.MsgID), nil
}

// beijing is where WeChat's months begin.
var beijing = time.FixedZone("CST", 8*3600)

func monthStart(t time.Time) time.Time {
	b := t.In(beijing)
	return time.Date(b.Year(), b.Month(), 1, 0, 0, 0, 0, beijing)
}

// Quota reports the account's sends this month (those WeChat took or may
// have taken: not the refused ones).
func (s *Service) Quota(ctx context.Context, account string) (Quota, error) {
	a, err := s.account(account)
	if err != nil {
		return Quota{}, err
	}
	start := monthStart(s.opts.Now())
	limit := a.MassSendsPerMonth
	if limit <= 0 {
		limit = DefaultMonthlyQuota
	}
	var used int
	if err := s.opts.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM mass_sends WHERE account = $1 AND created_at >= $2 AND status <> $3`,
		account, db.Timestamp(start), StatusFailed).Scan(&used); err != nil {
		return Quota{}, fmt.Errorf("mass: counting this month's sends: %w", err)
	}
	return Quota{Account: account, Month: start.Format("2006-01"), Limit: limit, Used: used,
		Remaining: max(limit-used, 0), ResetsAt: start.AddDate(0, 1, 0).UTC()}, nil
}

// SendRequest is a mass send to make.
type SendRequest struct {
	Account string
	To      Audience
	Message Message
	// ClientMsgID identifies the send (≤64 bytes): the same id again
	// returns the first send. Empty makes a fresh one.
	ClientMsgID string
}

func newClientMsgID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "wxgate-" + hex.EncodeToString(b)
}

// Send records the send, checks the quota, and asks WeChat to send it.
func (s *Service) Send(ctx context.Context, req SendRequest) (Send, error) {
	if _, err := s.account(req.Account); err != nil {
		return Send{}, err
	}
	switch {
	case req.To.All && req.To.TagID != nil:
		return Send{}, problem.Invalidf("invalid_audience", "to", "send to a tag or to all, not both — 只能选择标签或全部粉丝之一")
	case !req.To.All && req.To.TagID == nil:
		return Send{}, problem.Invalidf("invalid_audience", "to", `name the audience: {"tag": ID} or {"all": true} — 请指定群发对象：标签或全部粉丝`)
	case req.To.TagID != nil && *req.To.TagID < 0:
		return Send{}, problem.Invalidf("invalid_audience", "to", "the tag id must be a whole number — 标签 ID 必须是整数")
	}
	if len(req.ClientMsgID) > 64 {
		return Send{}, problem.Invalidf("client_msg_id_too_long", "client_msg_id", "client_msg_id may be at most 64 bytes — client_msg_id 最长 64 字节")
	}
	if req.ClientMsgID != "" {
		if prev, err := s.byClientMsgID(ctx, req.Account, req.ClientMsgID); err == nil {
			prev.Reused = true
			return prev, nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return Send{}, err
		}
	} else {
		req.ClientMsgID = newClientMsgID()
	}
	content, err := s.content(ctx, req.Account, req.Message)
	if err != nil {
		return Send{}, err
	}
	q, err := s.Quota(ctx, req.Account)
	if err != nil {
		return Send{}, err
	}
	if q.Remaining == 0 {
		return Send{}, &problem.Error{Kind: problem.RateLimited, Code: "mass_quota_exhausted", Field: "account",
			RetryAfter: time.Until(q.ResetsAt),
			Message: fmt.Sprintf("this month's %d mass sends are used (%d/%d); the quota resets on %s — 本月群发次数已用完（%d/%d），%s 恢复",
				q.Limit, q.Used, q.Limit, q.ResetsAt.In(beijing).Format("2006-01-02"), q.Used, q.Limit, q.ResetsAt.In(beijing).Format("2006年1月2日"))}
	}
	c, err := s.client(req.Account)
	if err != nil {
		return Send{}, err
	}
	msgJSON, _ := json.Marshal(req.Message)
	var tag sql.NullInt64
	if req.To.TagID != nil {
		tag = sql.NullInt64{Int64: *req.To.TagID, Valid: true}
	}
	now := db.Timestamp(s.opts.Now())
	var id int64
	err = s.opts.DB.QueryRowContext(ctx, `INSERT INTO mass_sends (account, client_msg_id, msg_type, content, tag_id, to_all, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account, client_msg_id) DO NOTHING RETURNING id`,
		req.Account, req.ClientMsgID, req.Message.Type, string(msgJSON), tag, req.To.All, StatusSending, now).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) { // the same id raced in
		prev, err := s.byClientMsgID(ctx, req.Account, req.ClientMsgID)
		prev.Reused = true
		return prev, err
	}
	if err != nil {
		return Send{}, fmt.Errorf("mass: recording the send: %w", err)
	}
	filter := wechat.MassFilter{IsToAll: req.To.All}
	if tag.Valid {
		filter.TagID = tag.Int64
	}
	res, callErr := c.SendAll(ctx, filter, content, req.ClientMsgID)
	status, errText := StatusSent, ""
	var apiErr *wechat.APIError
	switch {
	case callErr == nil:
	case errors.As(callErr, &apiErr) && apiErr.Code == wechat.CodeClientMsgIDExists:
		// WeChat has this job from an earlier attempt whose answer was lost.
		status, errText = StatusUnknown, "WeChat already has a send with this clientmsgid (45065)"
	case wechat.OutcomeUnknown(callErr):
		status, errText = StatusUnknown, callErr.Error()
	default:
		status, errText = StatusFailed, callErr.Error()
	}
	if _, err := s.opts.DB.ExecContext(ctx, `UPDATE mass_sends SET status = $1, msg_id = $2, msg_data_id = $3, error = $4 WHERE id = $5`,
		status, int64(res.MsgID), int64(res.MsgDataID), errText, id); err != nil {
		return Send{}, fmt.Errorf("mass: recording WeChat's answer: %w", err)
	}
	s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "mass: send", slog.String("account", req.Account), slog.Int64("id", id),
		slog.String("status", status), slog.Int64("msg_id", int64(res.MsgID)))
	if status == StatusFailed {
		return Send{}, explain(callErr)
	}
	return s.Get(ctx, req.Account, id)
}

// explain words WeChat's refusals of a mass send.
func explain(err error) error {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	msg := map[int]string{
		wechat.CodeMassNoQuota:        "WeChat says the mass-send quota is used up (45028) — 微信提示群发次数已用完",
		wechat.CodeClientMsgIDTooSoon: "the same client_msg_id was sent less than a minute ago (45066) — 同一 client_msg_id 一分钟内重复发送",
		40007:                         "WeChat does not have this media_id (40007): upload the file again — 微信不认识这个 media_id，请重新上传素材",
		45159:                         "WeChat has no such tag (45159) — 微信上没有这个标签",
		43004:                         "the follower has not subscribed (43004) — 该用户未关注公众号",
		40003:                         "the openid is not a follower of this account (40003) — openid 不属于这个公众号",
		wechat.CodeInvalidMassMsgID:   "WeChat has no sent mass message with this msg_id (40059) — 微信上没有这条群发消息",
	}[apiErr.Code]
	if msg == "" {
		return err
	}
	kind := problem.Unprocessable
	if apiErr.Code == wechat.CodeMassNoQuota {
		kind = problem.RateLimited
	}
	return &problem.Error{Kind: kind, Code: "wechat_refused", Message: msg, Err: err}
}

const sendColumns = `id, account, client_msg_id, content, tag_id, to_all, status, msg_id, msg_data_id, wechat_status,
	total_count, filter_count, sent_count, error_count, error, created_at, finished_at, deleted_at`

func scanSend(sc interface{ Scan(...any) error }) (Send, error) {
	var (
		m                 Send
		content           string
		tag               sql.NullInt64
		finished, deleted sql.NullTime
	)
	if err := sc.Scan(&m.ID, &m.Account, &m.ClientMsgID, &content, &tag, &m.To.All, &m.Status, &m.MsgID, &m.MsgDataID,
		&m.WeChatStatus, &m.TotalCount, &m.FilterCount, &m.SentCount, &m.ErrorCount, &m.Error, &m.CreatedAt, &finished, &deleted); err != nil {
		return Send{}, err
	}
	_ = json.Unmarshal([]byte(content), &m.Message)
	if tag.Valid {
		v := tag.Int64
		m.To.TagID = &v
	}
	m.CreatedAt = m.CreatedAt.UTC()
	if finished.Valid {
		t := finished.Time.UTC()
		m.FinishedAt = &t
	}
	if deleted.Valid {
		t := deleted.Time.UTC()
		m.DeletedAt = &t
	}
	return m, nil
}

func (s *Service) byClientMsgID(ctx context.Context, account, clientMsgID string) (Send, error) {
	m, err := scanSend(s.opts.DB.QueryRowContext(ctx, `SELECT `+sendColumns+` FROM mass_sends WHERE account = $1 AND client_msg_id = $2`,
		account, clientMsgID))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Send{}, fmt.Errorf("mass: reading a send: %w", err)
	}
	return m, err
}

// Get returns one send of the account.
func (s *Service) Get(ctx context.Context, account string, id int64) (Send, error) {
	m, err := scanSend(s.opts.DB.QueryRowContext(ctx, `SELECT `+sendColumns+` FROM mass_sends WHERE account = $1 AND id = $2`, account, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Send{}, problem.NotFoundf("mass_not_found", "id", "no mass send %d for %s — 没有这条群发记录", id, account)
	}
	if err != nil {
		return Send{}, fmt.Errorf("mass: reading send %d: %w", id, err)
	}
	return m, nil
}

// List returns the account's sends, newest first (at most 200).
func (s *Service) List(ctx context.Context, account string) ([]Send, error) {
	if _, err := s.account(account); err != nil {
		return nil, err
	}
	rows, err := s.opts.DB.QueryContext(ctx, `SELECT `+sendColumns+` FROM mass_sends WHERE account = $1 ORDER BY id DESC LIMIT 200`, account)
	if err != nil {
		return nil, fmt.Errorf("mass: list: %w", err)
	}
	defer rows.Close()
	out := []Send{}
	for rows.Next() {
		m, err := scanSend(rows)
		if err != nil {
			return nil, fmt.Errorf("mass: list: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Delete deletes a sent news or video mass message at WeChat (followers
// keep the card; its page stops opening). articleIdx 0 deletes every
// article, n the n-th.
func (s *Service) Delete(ctx context.Context, account string, id int64, articleIdx int) (Send, error) {
	m, err := s.Get(ctx, account, id)
	if err != nil {
		return Send{}, err
	}
	if m.Status == StatusDeleted {
		return Send{}, problem.Conflictf("mass_deleted", "id", "mass send %d is already deleted — 这条群发已删除", id)
	}
	if m.MsgID == 0 || m.Status == StatusFailed {
		return Send{}, problem.Conflictf("mass_not_sent", "id", "mass send %d was not sent, so there is nothing to delete — 这条群发未发送成功，无需删除", id)
	}
	if m.Message.Type != TypeNews && m.Message.Type != TypeVideo {
		return Send{}, problem.Conflictf("mass_not_deletable", "id",
			"WeChat deletes only news and video mass messages; a %s one stays with the followers — 微信只能删除图文和视频群发，%s 群发发出后无法删除", m.Message.Type, m.Message.Type)
	}
	if articleIdx < 0 {
		return Send{}, problem.Invalidf("invalid_article_idx", "article_idx", "article_idx must be 0 (all) or the article's number — article_idx 只能是 0（全部）或文章序号")
	}
	c, err := s.client(account)
	if err != nil {
		return Send{}, err
	}
	if err := c.DeleteMass(ctx, m.MsgID, articleIdx); err != nil {
		return Send{}, explain(err)
	}
	if _, err := s.opts.DB.ExecContext(ctx, `UPDATE mass_sends SET status = $1, deleted_at = $2 WHERE id = $3`,
		StatusDeleted, db.Timestamp(s.opts.Now()), id); err != nil {
		return Send{}, fmt.Errorf("mass: recording the delete: %w", err)
	}
	return s.Get(ctx, account, id)
}

// sending reports whether a send of the account is recorded but not yet
// answered by WeChat.
func (s *Service) sending(ctx context.Context, account string) bool {
	var n int
	err := s.opts.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM mass_sends WHERE account = $1 AND status = $2`, account, StatusSending).Scan(&n)
	return err != nil || n > 0 // on an error, wait as before
}

// receiptWait is how long a receipt waits for its send's msg_id to be
// recorded: WeChat may push MASSSENDJOBFINISH before sendall's answer has
// been written.
const receiptWait = 3 * time.Second

// WantsPush tells the callback which pushes Hook acts on: a mass send's
// MASSSENDJOBFINISH.
func WantsPush(m *wechat.Message) bool {
	return m.IsEvent() && m.Event == wechat.EventMassSendJobFinish && m.JobMsgID != 0
}

// Hook is the callback hook recording MASSSENDJOBFINISH.
func (s *Service) Hook(ctx context.Context, account string, m *wechat.Message) error {
	if !m.IsEvent() || m.Event != wechat.EventMassSendJobFinish || m.JobMsgID == 0 {
		return nil
	}
	status := StatusFinished
	if !strings.EqualFold(strings.TrimSpace(m.Status), "send success") {
		status = StatusFailed
	}
	deadline := time.Now().Add(receiptWait) // wall time: a test's clock may stand still
	for {
		res, err := s.opts.DB.ExecContext(ctx, `UPDATE mass_sends SET status = CASE WHEN status = $1 THEN status ELSE $2 END,
			wechat_status = $3, total_count = $4, filter_count = $5, sent_count = $6, error_count = $7, finished_at = $8
			WHERE account = $9 AND msg_id = $10`,
			StatusDeleted, status, m.Status, m.TotalCount, m.FilterCount, m.SentCount, m.ErrorCount, db.Timestamp(s.opts.Now()), account, m.JobMsgID)
		if err != nil {
			return fmt.Errorf("mass: recording the receipt of %d: %w", m.JobMsgID, err)
		}
		n, _ := res.RowsAffected()
		if n == 0 && !s.sending(ctx, account) {
			// No send of this account awaits WeChat's answer: the job was
			// made elsewhere (the WeChat console), nothing to wait for.
			return nil
		}
		if n > 0 || !time.Now().Before(deadline) {
			if n == 0 {
				s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "mass: a receipt for a send wxgate did not make",
					slog.String("account", account), slog.Int64("msg_id", m.JobMsgID))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
