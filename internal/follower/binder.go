package follower

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Binding QR codes. A code is a temporary QR_STR_SCENE whose scene is
// BindScenePrefix plus a one-time random token; the external id itself
// never leaves wxgate. Scanning it (subscribe with EventKey qrscene_<scene>
// for a new follower, SCAN with <scene> for a follower) spends the token
// and records the binding, in the callback, before the passive reply is
// chosen: the confirmation is the reply to that very push.

// BindScenePrefix starts the scene of every binding QR code.
const BindScenePrefix = "wxgb_"

// Limits of a binding QR code's lifetime.
const (
	DefaultQRCodeExpiry = 10 * time.Minute
	MinQRCodeExpiry     = 30 * time.Second
)

// Default replies to the scan of a binding QR code.
const (
	DefaultBindReply    = "绑定成功"
	DefaultExpiredReply = "二维码已过期"
	DefaultUsedReply    = "二维码已被使用"
	invalidBindReply    = "二维码无效"
)

// Event types published to webhooks.
const (
	EventBindingCompleted = "binding.completed"
	EventBindingDeleted   = "binding.deleted"
)

// Events publishes events in the transaction of the change they report
// (an outbox): they are delivered if and only if it commits.
type Events interface {
	PublishTx(ctx context.Context, tx *sql.Tx, eventType, account string, data any) error
}

// BindingEvent is the data of binding.completed and binding.deleted.
type BindingEvent struct {
	Binding Binding `json:"binding"`
	// Replaced are the ids of the bindings this one ended (one-to-one).
	Replaced []int64 `json:"replaced,omitempty"`
	// Ticket is the QR code's ticket for a binding made by a scan.
	Ticket string `json:"ticket,omitempty"`
}

// BinderOptions build a Binder. Store and Accounts are required.
type BinderOptions struct {
	// Store is the follower store; the bindings live in the same database.
	Store    *Store
	Accounts []config.Account
	// Clients gives each account's WeChat API client (*token.Registry).
	Clients APIClients
	// Events receives binding.completed and binding.deleted; nil drops them.
	Events Events
	Now    func() time.Time
	Logger *slog.Logger
}

// Binder binds external ids to persons: binding QR codes and their scans,
// mini-program logins, deletions.
type Binder struct {
	db       *db.DB
	store    *Store
	accounts map[string]config.Account
	clients  APIClients
	events   Events
	now      func() time.Time
	log      *slog.Logger
}

// NewBinder returns a Binder.
func NewBinder(opts BinderOptions) *Binder {
	b := &Binder{db: opts.Store.db, store: opts.Store, clients: opts.Clients, events: opts.Events, now: opts.Now, log: opts.Logger,
		accounts: make(map[string]config.Account, len(opts.Accounts))}
	if b.now == nil {
		b.now = time.Now
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range opts.Accounts {
		b.accounts[a.Name] = a
	}
	return b
}

func (b *Binder) account(name string, kind config.AccountKind) (config.Account, error) {
	a, ok := b.accounts[name]
	if !ok {
		return config.Account{}, config.UnknownAccount(name)
	}
	if kind != "" && a.Kind != kind {
		if kind == config.KindMiniProgram {
			return a, problem.Invalidf("wrong_account_kind", "account", "account %q is an official account; mini-program login needs a mini_program account — 账号 %q 不是小程序", name, name)
		}
		return a, problem.Invalidf("wrong_account_kind", "account", "account %q is a mini program; binding QR codes need an official account — 账号 %q 不是公众号，小程序不能生成带参数二维码", name, name)
	}
	return a, nil
}

func (b *Binder) client(account string) (*wechat.Client, error) {
	if b.clients != nil {
		if c, ok := b.clients.Client(account); ok {
			return c, nil
		}
	}
	return nil, problem.Invalidf("no_app_secret", "account", "account %q has no app_secret, so wxgate cannot call WeChat's API for it — 账号 %q 未配置 AppSecret", account, account)
}

func randomToken(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// QRCodeRequest asks for a binding QR code.
type QRCodeRequest struct {
	Account    string
	ExternalID string
	// ExpiresIn is the code's lifetime (DefaultQRCodeExpiry when zero,
	// MinQRCodeExpiry..30 days).
	ExpiresIn time.Duration
}

// BindQRCode is a binding QR code as created.
type BindQRCode struct {
	Account    string    `json:"account"`
	ExternalID string    `json:"external_id"`
	Ticket     string    `json:"ticket"`
	URL        string    `json:"url"`       // the text the QR code encodes
	ImageURL   string    `json:"image_url"` // WeChat's showqrcode image
	ExpiresAt  time.Time `json:"expires_at"`
	ExpiresIn  int64     `json:"expires_in"`
	// PollToken lets a page without an API key poll the code's state;
	// shown once, only its hash is stored.
	PollToken string `json:"poll_token"`
}

// CreateQRCode creates a temporary QR code (QR_STR_SCENE) carrying a new
// one-time bind token for an external id.
func (b *Binder) CreateQRCode(ctx context.Context, r QRCodeRequest) (BindQRCode, error) {
	if _, err := b.account(r.Account, config.KindOfficialAccount); err != nil {
		return BindQRCode{}, err
	}
	if err := CheckExternalID(r.ExternalID); err != nil {
		return BindQRCode{}, err
	}
	if r.ExpiresIn == 0 {
		r.ExpiresIn = DefaultQRCodeExpiry
	}
	if r.ExpiresIn < MinQRCodeExpiry || r.ExpiresIn > wechat.MaxQRCodeExpiry {
		return BindQRCode{}, problem.Invalidf("invalid_expires_in", "expires_in", "expires_in must be %d..%d seconds — 有效期须为 %d..%d 秒",
			int64(MinQRCodeExpiry/time.Second), int64(wechat.MaxQRCodeExpiry/time.Second), int64(MinQRCodeExpiry/time.Second), int64(wechat.MaxQRCodeExpiry/time.Second))
	}
	client, err := b.client(r.Account)
	if err != nil {
		return BindQRCode{}, err
	}
	scene := BindScenePrefix + randomToken(18) // 5 + 24 characters, within scene_str's 64
	qr, err := client.CreateQRCode(ctx, wechat.TempQRCode(scene, r.ExpiresIn))
	if err != nil {
		return BindQRCode{}, err
	}
	now := db.Timestamp(b.now())
	expiresIn := time.Duration(qr.ExpireSeconds) * time.Second
	if expiresIn <= 0 {
		expiresIn = r.ExpiresIn
	}
	expires := db.Timestamp(now.Add(expiresIn))
	poll := randomToken(24)
	if _, err := b.db.ExecContext(ctx, `
INSERT INTO bind_tokens (account, external_id, scene, ticket, qr_url, poll_hash, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.Account, r.ExternalID, scene, qr.Ticket, qr.URL, hashToken(poll), expires, now); err != nil {
		return BindQRCode{}, fmt.Errorf("follower: storing the bind token: %w", err)
	}
	b.log.Info("binding QR code created", "account", r.Account, "external_id", r.ExternalID, "expires_at", expires)
	return BindQRCode{Account: r.Account, ExternalID: r.ExternalID, Ticket: qr.Ticket, URL: qr.URL,
		ImageURL: client.ShowQRCodeURL(qr.Ticket), ExpiresAt: expires, ExpiresIn: int64(expiresIn / time.Second), PollToken: poll}, nil
}

// QR code states (QRCodeStatus.Status).
const (
	QRPending   = "pending"
	QRCompleted = "completed"
	QRExpired   = "expired"
)

// QRCodeStatus is what a page polling a binding QR code learns.
type QRCodeStatus struct {
	Ticket     string     `json:"ticket"`
	Account    string     `json:"account"`
	ExternalID string     `json:"external_id"`
	Status     string     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsedAt     *time.Time `json:"used_at,omitempty"`
	Binding    *Binding   `json:"binding,omitempty"`
	// RejectedScan is the last scan that bound nothing, and why.
	RejectedScan *RejectedScan `json:"rejected_scan,omitempty"`
	// URL is the text the code encodes (for rendering it again).
	URL string `json:"-"`
}

// RejectedScan is a scan of a used or expired code.
type RejectedScan struct {
	Reason string    `json:"reason"` // expired | used
	At     time.Time `json:"at"`
	OpenID string    `json:"openid"`
}

// ErrQRCodeNotFound is returned for a ticket wxgate did not create.
var ErrQRCodeNotFound = problem.New(problem.NotFound, "qrcode_not_found", "ticket", "wxgate made no binding QR code with this ticket — 没有该 ticket 的绑定二维码")

// QRCodeStatus returns the state of a binding QR code.
func (b *Binder) QRCodeStatus(ctx context.Context, ticket string) (QRCodeStatus, error) {
	var (
		st                     QRCodeStatus
		pollHash               string
		used, rejectedAt       sql.NullTime
		bindingID              sql.NullInt64
		usedBy, rejection, rop string
	)
	err := b.db.QueryRowContext(ctx, `
SELECT ticket, account, external_id, qr_url, poll_hash, created_at, expires_at, used_at, used_by, binding_id, rejection, rejected_at, rejected_openid
FROM bind_tokens WHERE ticket = $1`, ticket).Scan(&st.Ticket, &st.Account, &st.ExternalID, &st.URL, &pollHash, &st.CreatedAt, &st.ExpiresAt,
		&used, &usedBy, &bindingID, &rejection, &rejectedAt, &rop)
	if errors.Is(err, sql.ErrNoRows) {
		return QRCodeStatus{}, ErrQRCodeNotFound
	}
	if err != nil {
		return QRCodeStatus{}, fmt.Errorf("follower: binding QR code: %w", err)
	}
	st.CreatedAt, st.ExpiresAt = st.CreatedAt.UTC(), st.ExpiresAt.UTC()
	st.UsedAt = timePtr(used)
	if rejection != "" && rejectedAt.Valid {
		st.RejectedScan = &RejectedScan{Reason: rejection, At: rejectedAt.Time.UTC(), OpenID: rop}
	}
	switch {
	case used.Valid:
		st.Status = QRCompleted
		if bindingID.Valid {
			bd, err := b.store.GetBinding(ctx, bindingID.Int64)
			if err != nil {
				return QRCodeStatus{}, err
			}
			st.Binding = &bd
			if !bd.Active() {
				st.Reason = fmt.Sprintf("bound, then %s at %s", bd.EndReason, bd.EndedAt.Format(time.RFC3339))
			}
		}
		if st.RejectedScan != nil {
			st.Reason = strings.TrimPrefix(st.Reason+"; ", "; ") + "a later scan bound nothing: the code was used already — 二维码已被使用"
		}
	case !b.now().Before(st.ExpiresAt):
		st.Status = QRExpired
		st.Reason = "the code expired at " + st.ExpiresAt.Format(time.RFC3339) + " without binding — 二维码已过期"
		if st.RejectedScan != nil {
			st.Reason += "; it was scanned at " + st.RejectedScan.At.Format(time.RFC3339) + ", after it expired"
		}
	default:
		st.Status = QRPending
	}
	return st, nil
}

// CheckPollToken reports whether token is the poll token of the code.
func (b *Binder) CheckPollToken(ctx context.Context, ticket, pollToken string) bool {
	if pollToken == "" {
		return false
	}
	var stored string
	if err := b.db.QueryRowContext(ctx, `SELECT poll_hash FROM bind_tokens WHERE ticket = $1`, ticket).Scan(&stored); err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(hashToken(pollToken))) == 1
}

// scanOutcome is what a scan of a binding QR code did.
type scanOutcome string

const (
	scanBound   scanOutcome = "bound"
	scanAgain   scanOutcome = "again" // the same user, the binding holds: a retry or a second scan
	scanUsed    scanOutcome = "used"
	scanExpired scanOutcome = "expired"
	scanUnknown scanOutcome = "unknown"
)

// Respond is the callback's Responder: it handles the scan of a binding
// QR code (subscribe with qrscene_wxgb_… or SCAN with wxgb_…), records the
// binding and answers with the account's confirmation, or says why nothing
// was bound. Other pushes are not its business (handled false). It is
// idempotent for WeChat's retries: the user who spent the token gets the
// confirmation again and nothing else happens.
func (b *Binder) Respond(ctx context.Context, account string, m *wechat.Message) (wechat.Reply, bool, error) {
	if !m.IsEvent() || (m.Event != wechat.EventSubscribe && m.Event != wechat.EventScan) {
		return nil, false, nil
	}
	scene, ok := m.QRScene()
	if !ok || !strings.HasPrefix(scene, BindScenePrefix) {
		return nil, false, nil
	}
	if _, ok := b.accounts[account]; !ok {
		return nil, false, nil
	}
	outcome, err := b.redeem(ctx, account, scene, m.FromUserName, m.Ticket)
	if err != nil {
		return nil, false, err
	}
	settings := b.accounts[account].Binding
	text := ""
	switch outcome {
	case scanBound, scanAgain:
		text = or(settings.Reply, DefaultBindReply)
	case scanUsed:
		text = or(settings.UsedReply, DefaultUsedReply)
	case scanExpired:
		text = or(settings.ExpiredReply, DefaultExpiredReply)
	default:
		text = invalidBindReply
	}
	return wechat.TextReply{Content: text}, true, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// redeem spends the bind token of scene for openid and records the
// binding, or records why it could not.
func (b *Binder) redeem(ctx context.Context, account, scene, openid, ticket string) (scanOutcome, error) {
	if openid == "" {
		return scanUnknown, nil
	}
	manyToMany := b.accounts[account].Binding.ManyToMany
	var (
		outcome scanOutcome
		result  bindOutcome
	)
	err := inTx(ctx, b.db, func(tx *sql.Tx) error {
		now := db.Timestamp(b.now())
		var (
			id                 int64
			externalID, tktStr string
		)
		err := tx.QueryRowContext(ctx, `
UPDATE bind_tokens SET used_at = $3, used_by = $4
WHERE scene = $1 AND account = $2 AND used_at IS NULL AND expires_at > $3
RETURNING id, external_id, ticket`, scene, account, now, openid).Scan(&id, &externalID, &tktStr)
		switch {
		case err == nil:
			result, err = bindTx(ctx, tx, bindRequest{ExternalID: externalID, Account: account, OpenID: openid,
				Source: SourceQRCode, ManyToMany: manyToMany, Now: now})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE bind_tokens SET binding_id = $2 WHERE id = $1`, id, result.Binding.ID); err != nil {
				return fmt.Errorf("follower: spending the bind token: %w", err)
			}
			outcome = scanBound
			if !result.Existing && b.events != nil {
				return b.events.PublishTx(ctx, tx, EventBindingCompleted, account,
					BindingEvent{Binding: result.Binding, Replaced: result.Replaced, Ticket: tktStr})
			}
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("follower: spending the bind token: %w", err)
		}
		// Not spendable: say why.
		var (
			used      sql.NullTime
			usedBy    string
			bindingID sql.NullInt64
		)
		err = tx.QueryRowContext(ctx, `SELECT id, used_at, used_by, binding_id FROM bind_tokens WHERE scene = $1 AND account = $2`,
			scene, account).Scan(&id, &used, &usedBy, &bindingID)
		if errors.Is(err, sql.ErrNoRows) {
			outcome = scanUnknown
			return nil
		}
		if err != nil {
			return fmt.Errorf("follower: reading the bind token: %w", err)
		}
		if used.Valid && usedBy == openid && bindingID.Valid {
			if bd, err := getBinding(ctx, tx, bindingID.Int64); err == nil && bd.Active() {
				outcome = scanAgain
				return nil
			}
		}
		outcome = scanExpired
		if used.Valid {
			outcome = scanUsed
		}
		_, err = tx.ExecContext(ctx, `UPDATE bind_tokens SET rejection = $2, rejected_at = $3, rejected_openid = $4 WHERE id = $1`,
			id, string(outcome), now, openid)
		return err
	})
	if err != nil {
		return "", err
	}
	switch outcome {
	case scanBound:
		b.log.Info("bound by QR code", "account", account, "external_id", result.Binding.ExternalID, "openid", openid,
			"binding_id", result.Binding.ID, "replaced", len(result.Replaced))
	case scanUsed, scanExpired, scanUnknown:
		b.log.Info("binding QR code scan bound nothing", "account", account, "openid", openid, "reason", string(outcome), "ticket_set", ticket != "")
	}
	return outcome, nil
}

// LoginRequest is a mini-program login (wx.login's code), optionally
// binding an external id to the user.
type LoginRequest struct {
	Account    string
	Code       string
	ExternalID string
}

// LoginResult is what a login tells the business. The session_key is not
// part of it: it stays with wxgate (which does not even store it).
type LoginResult struct {
	Account string `json:"account"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	// Link is linked, no_follower or not_linked (LinkLinked …).
	Link       string `json:"link"`
	LinkReason string `json:"link_reason,omitempty"`
	// Followers are the person's official-account openids.
	Followers []Identity `json:"followers"`
	Binding   *Binding   `json:"binding,omitempty"`
	Replaced  []int64    `json:"replaced_bindings,omitempty"`
}

// MiniProgramLogin exchanges a wx.login code (sns/jscode2session), records
// the mini-program user, reports the person it links to and, with an
// external id, binds it.
func (b *Binder) MiniProgramLogin(ctx context.Context, r LoginRequest) (LoginResult, error) {
	a, err := b.account(r.Account, config.KindMiniProgram)
	if err != nil {
		return LoginResult{}, err
	}
	if strings.TrimSpace(r.Code) == "" {
		return LoginResult{}, problem.Invalidf("missing_code", "code", "code is required: the code from wx.login — 缺少 wx.login 返回的 code")
	}
	if r.ExternalID != "" {
		if err := CheckExternalID(r.ExternalID); err != nil {
			return LoginResult{}, err
		}
	}
	client, err := b.client(r.Account)
	if err != nil {
		return LoginResult{}, err
	}
	session, err := client.Code2Session(ctx, a.AppID, a.AppSecret, r.Code)
	if err != nil {
		return LoginResult{}, loginError(err)
	}
	// The session_key is dropped here: nothing in wxgate needs it yet
	// (open-data decryption would), and a key not kept cannot leak.
	res := LoginResult{Account: r.Account, OpenID: session.OpenID, UnionID: session.UnionID, Followers: []Identity{}}
	if res.OpenID == "" {
		return LoginResult{}, errors.New("follower: jscode2session answered without an openid")
	}
	var out bindOutcome
	err = inTx(ctx, b.db, func(tx *sql.Tx) error {
		now := db.Timestamp(b.now())
		user, err := recordMiniProgramLogin(ctx, tx, r.Account, res.OpenID, res.UnionID, now)
		if err != nil {
			return err
		}
		res.UnionID = user.UnionID
		p, err := person(ctx, tx, res.UnionID)
		if err != nil {
			return err
		}
		for _, id := range p.Identities {
			if id.Kind == KindOfficialAccount {
				res.Followers = append(res.Followers, id)
			}
		}
		if r.ExternalID == "" {
			return nil
		}
		out, err = bindTx(ctx, tx, bindRequest{ExternalID: r.ExternalID, Account: r.Account, OpenID: res.OpenID, UnionID: res.UnionID,
			Source: SourceMiniProgram, ManyToMany: a.Binding.ManyToMany, Now: now})
		if err != nil {
			return err
		}
		if !out.Existing && b.events != nil {
			return b.events.PublishTx(ctx, tx, EventBindingCompleted, r.Account, BindingEvent{Binding: out.Binding, Replaced: out.Replaced})
		}
		return nil
	})
	if err != nil {
		return LoginResult{}, err
	}
	switch {
	case res.UnionID == "":
		res.Link = LinkNotLinked
		res.LinkReason = "WeChat gave no unionid: bind the mini program and the official account to one Open Platform account to link them — 未返回 unionid：小程序未绑定微信开放平台账号，无法关联公众号粉丝"
	case len(res.Followers) == 0:
		res.Link = LinkNoFollower
		res.LinkReason = "no follower of an official account with this unionid is known (yet) — 暂无该 unionid 的公众号粉丝"
	default:
		res.Link = LinkLinked
	}
	if r.ExternalID != "" {
		res.Binding, res.Replaced = &out.Binding, out.Replaced
	}
	b.log.Info("mini-program login", "account", r.Account, "openid", res.OpenID, "link", res.Link, "bound", r.ExternalID != "")
	return res, nil
}

// loginError turns jscode2session's refusals of the code into refusals of the request.
func loginError(err error) error {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.Code {
	case 40029:
		return problem.Invalidf("invalid_code", "code", "the login code is invalid or expired (errcode 40029): call wx.login again — 登录 code 无效或已过期，请重新调用 wx.login")
	case 40163:
		return problem.Invalidf("code_used", "code", "the login code was used already (errcode 40163): a code works once, call wx.login again — 登录 code 已被使用，请重新调用 wx.login")
	case 40226:
		return problem.Invalidf("code_blocked", "code", "WeChat blocked this login as high-risk (errcode 40226) — 高风险等级用户，登录被微信拦截")
	case 41008:
		return problem.Invalidf("missing_code", "code", "code is required (errcode 41008) — 缺少 code")
	}
	return err
}

// DeleteBinding ends a binding (kept as history, end_reason "deleted")
// and publishes binding.deleted. Deleting an ended binding changes
// nothing.
func (b *Binder) DeleteBinding(ctx context.Context, id int64) (Binding, error) {
	var out Binding
	err := inTx(ctx, b.db, func(tx *sql.Tx) error {
		before, err := getBinding(ctx, tx, id)
		if err != nil {
			return err
		}
		out, err = endBindingTx(ctx, tx, id, db.Timestamp(b.now()))
		if err != nil {
			return err
		}
		if before.Active() && b.events != nil {
			return b.events.PublishTx(ctx, tx, EventBindingDeleted, out.Account, BindingEvent{Binding: out})
		}
		return nil
	})
	return out, err
}
