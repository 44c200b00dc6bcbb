package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// The template registry: templates synced from WeChat (or registered by
// hand), and aliases that give a business message type a stable name per
// account.

// Alias names a template for a business message type on one account, so
// that the same request works on the test account and in production.
type Alias struct {
	Account    string `json:"account"`
	Alias      string `json:"alias"`
	TemplateID string `json:"template_id"`
	// Fields maps request data fields to template keywords, e.g.
	// {"customer":"thing1"}; a request may also use keywords directly.
	Fields map[string]string `json:"fields,omitempty"`
	// Defaults are keyword values used when the request has none.
	Defaults map[string]string `json:"defaults,omitempty"`
	// Truncate shortens values that are too long instead of rejecting them.
	Truncate bool `json:"truncate,omitempty"`
	// URL, MiniProgram and Page are the jump used when the request has none.
	URL         string       `json:"url,omitempty"`
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	Page        string       `json:"page,omitempty"`
	// Fallback names the alias (a template message) sent instead of this
	// subscription message to recipients who have no grant.
	Fallback    string    `json:"fallback,omitempty"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// MiniProgram is a jump into a mini program.
type MiniProgram struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath,omitempty"`
}

func (m *MiniProgram) link() *wechat.MiniProgramLink {
	if m == nil || m.AppID == "" {
		return nil
	}
	return &wechat.MiniProgramLink{AppID: m.AppID, PagePath: m.PagePath}
}

// SyncResult says what a sync changed.
type SyncResult struct {
	Account string   `json:"account"`
	Synced  int      `json:"synced"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

const templateColumns = `account, template_id, kind, title, content, example, keywords, source, synced_at, removed_at`

func scanTemplate(row interface{ Scan(...any) error }) (Template, error) {
	var (
		t               Template
		keywords        string
		synced, removed sql.NullTime
	)
	if err := row.Scan(&t.Account, &t.TemplateID, &t.Kind, &t.Title, &t.Content, &t.Example, &keywords, &t.Source, &synced, &removed); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(keywords), &t.Keywords); err != nil {
		return t, fmt.Errorf("push: keywords of template %s: %w", t.TemplateID, err)
	}
	t.SyncedAt, t.RemovedAt = timePtr(synced), timePtr(removed)
	return t, nil
}

// Templates lists the templates of an account, current ones first.
func (s *Service) Templates(ctx context.Context, account string) ([]Template, error) {
	if _, err := s.account(account); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+templateColumns+` FROM push_templates WHERE account = $1
ORDER BY removed_at IS NOT NULL, kind, title, template_id`, account)
	if err != nil {
		return nil, fmt.Errorf("push: list templates: %w", err)
	}
	defer rows.Close()
	out := []Template{}
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return nil, fmt.Errorf("push: list templates: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Template returns one template of the registry.
func (s *Service) Template(ctx context.Context, account, templateID string) (Template, error) {
	t, err := scanTemplate(s.db.QueryRowContext(ctx, `SELECT `+templateColumns+` FROM push_templates WHERE account = $1 AND template_id = $2`,
		account, templateID))
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, problem.NotFoundf("template_not_found", "template_id",
			"account %q has no template %q; run `wxgate templates sync --account %s` — 账号 %q 没有模板 %q，请先同步模板", account, templateID, account, account, templateID)
	}
	if err != nil {
		return Template{}, fmt.Errorf("push: template %s: %w", templateID, err)
	}
	return t, nil
}

// PutTemplate registers a template by hand (e.g. a subscription template
// of an account whose list WeChat does not give), replacing one of the
// same id.
func (s *Service) PutTemplate(ctx context.Context, t Template) (Template, error) {
	a, err := s.account(t.Account)
	if err != nil {
		return Template{}, err
	}
	if t.TemplateID == "" {
		return Template{}, problem.Invalidf("template_id_required", "template_id", "template_id is required — 请填写 template_id")
	}
	switch {
	case t.Kind == "" && a.Kind == config.KindMiniProgram:
		t.Kind = KindSubscribe
	case t.Kind == "":
		t.Kind = KindTemplate
	case t.Kind != KindTemplate && t.Kind != KindSubscribe:
		return Template{}, problem.Invalidf("invalid_kind", "kind", "kind must be template or subscribe, got %q — kind 只能是 template 或 subscribe", t.Kind)
	}
	if t.Kind == KindTemplate && a.Kind == config.KindMiniProgram {
		return Template{}, problem.Invalidf("invalid_kind", "kind", "a mini program has no template messages, only subscribe templates — 小程序只有订阅消息模板")
	}
	t.Keywords = ParseKeywords(t.Content)
	if len(t.Keywords) == 0 {
		return Template{}, problem.Invalidf("content_without_keywords", "content",
			"content has no {{key.DATA}} placeholder — content 中没有 {{key.DATA}} 占位符")
	}
	t.Source = "manual"
	if err := s.upsertTemplates(ctx, []Template{t}, nil); err != nil {
		return Template{}, err
	}
	return s.Template(ctx, t.Account, t.TemplateID)
}

// SyncTemplates fetches the account's templates from WeChat: template
// messages (get_all_private_template) on an official account and
// subscription templates (newtmpl/gettemplate) on both kinds. Templates no
// longer listed are marked removed, not deleted, so their aliases keep
// explaining what they were.
func (s *Service) SyncTemplates(ctx context.Context, account string) (SyncResult, error) {
	a, err := s.account(account)
	if err != nil {
		return SyncResult{}, err
	}
	client, ok := s.client(account)
	if !ok {
		return SyncResult{}, problem.NotFoundf("account_without_api", "account",
			"account %q has no app_secret, so wxgate cannot call WeChat for it — 账号 %q 未配置 app_secret，无法调用微信接口", account, account)
	}
	var list []Template
	kinds := []string{KindSubscribe}
	if a.Kind != config.KindMiniProgram {
		kinds = []string{KindTemplate, KindSubscribe}
		got, err := client.ListTemplates(ctx)
		if err != nil {
			return SyncResult{}, err
		}
		for _, w := range got {
			list = append(list, Template{Account: account, TemplateID: w.TemplateID, Kind: KindTemplate, Title: w.Title,
				Content: w.Content, Example: w.Example, Keywords: ParseKeywords(w.Content), Source: "sync"})
		}
	}
	subs, err := client.ListSubscribeTemplates(ctx)
	if err != nil {
		// Accounts without subscription notifications answer with an
		// error (48001 …); the template messages are still worth keeping.
		if a.Kind == config.KindMiniProgram || wechat.ClassOf(err) != wechat.ClassPermanent {
			return SyncResult{}, err
		}
		s.log.Info("push: no subscription templates", "account", account, "err", err)
		kinds = []string{KindTemplate}
	}
	for _, w := range subs {
		list = append(list, Template{Account: account, TemplateID: w.TemplateID, Kind: KindSubscribe, Title: w.Title,
			Content: w.Content, Example: w.Example, Keywords: ParseKeywords(w.Content), Source: "sync"})
	}

	before, err := s.Templates(ctx, account)
	if err != nil {
		return SyncResult{}, err
	}
	res := SyncResult{Account: account, Synced: len(list), Added: []string{}, Removed: []string{}}
	listed := map[string]bool{}
	for _, t := range list {
		listed[t.TemplateID] = true
		if !slices.ContainsFunc(before, func(b Template) bool { return b.TemplateID == t.TemplateID && b.RemovedAt == nil }) {
			res.Added = append(res.Added, t.TemplateID)
		}
	}
	var gone []string
	for _, b := range before {
		if b.Source == "sync" && b.RemovedAt == nil && !listed[b.TemplateID] && slices.Contains(kinds, b.Kind) {
			gone = append(gone, b.TemplateID)
		}
	}
	res.Removed = append(res.Removed, gone...)
	if err := s.upsertTemplates(ctx, list, &syncMarks{account: account, gone: gone}); err != nil {
		return SyncResult{}, err
	}
	return res, nil
}

type syncMarks struct {
	account string
	gone    []string
}

func (s *Service) upsertTemplates(ctx context.Context, list []Template, marks *syncMarks) error {
	now := s.stamp()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("push: save templates: %w", err)
	}
	defer tx.Rollback()
	for _, t := range list {
		kw, _ := json.Marshal(t.Keywords)
		var synced any
		if t.Source == "sync" {
			synced = now
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO push_templates (account, template_id, kind, title, content, example, keywords, source, synced_at, removed_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $10)
ON CONFLICT (account, template_id) DO UPDATE SET
    kind = excluded.kind, title = excluded.title, content = excluded.content, example = excluded.example,
    keywords = excluded.keywords, source = excluded.source, synced_at = excluded.synced_at,
    removed_at = NULL, updated_at = excluded.updated_at`,
			t.Account, t.TemplateID, t.Kind, t.Title, t.Content, t.Example, string(kw), t.Source, synced, now); err != nil {
			return fmt.Errorf("push: save template %s: %w", t.TemplateID, err)
		}
	}
	if marks != nil {
		for _, id := range marks.gone {
			if _, err := tx.ExecContext(ctx, `UPDATE push_templates SET removed_at = $1, updated_at = $1 WHERE account = $2 AND template_id = $3`,
				now, marks.account, id); err != nil {
				return fmt.Errorf("push: mark template %s removed: %w", id, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("push: save templates: %w", err)
	}
	return nil
}

// aliasName: letters, digits, _ - . ; it must not look like a template id.
var aliasName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.\-]{0,63}$`)

const aliasColumns = `account, alias, template_id, fields, defaults, truncate, url, miniprogram, page, fallback, description, created_at, updated_at`

func scanAlias(row interface{ Scan(...any) error }) (Alias, error) {
	var (
		a                    Alias
		fields, defaults, mp string
	)
	if err := row.Scan(&a.Account, &a.Alias, &a.TemplateID, &fields, &defaults, &a.Truncate, &a.URL, &mp, &a.Page, &a.Fallback,
		&a.Description, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return a, err
	}
	if err := errors.Join(json.Unmarshal([]byte(fields), &a.Fields), json.Unmarshal([]byte(defaults), &a.Defaults)); err != nil {
		return a, fmt.Errorf("push: alias %s: %w", a.Alias, err)
	}
	var m MiniProgram
	if json.Unmarshal([]byte(mp), &m) == nil && m.AppID != "" {
		a.MiniProgram = &m
	}
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

// Aliases lists the aliases of an account.
func (s *Service) Aliases(ctx context.Context, account string) ([]Alias, error) {
	if _, err := s.account(account); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+aliasColumns+` FROM push_aliases WHERE account = $1 ORDER BY alias`, account)
	if err != nil {
		return nil, fmt.Errorf("push: list aliases: %w", err)
	}
	defer rows.Close()
	out := []Alias{}
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			return nil, fmt.Errorf("push: list aliases: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// GetAlias returns one alias.
func (s *Service) GetAlias(ctx context.Context, account, name string) (Alias, error) {
	a, err := scanAlias(s.db.QueryRowContext(ctx, `SELECT `+aliasColumns+` FROM push_aliases WHERE account = $1 AND alias = $2`, account, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Alias{}, problem.NotFoundf("alias_not_found", "alias", "account %q has no alias %q — 账号 %q 没有别名 %q", account, name, account, name)
	}
	if err != nil {
		return Alias{}, fmt.Errorf("push: alias %s: %w", name, err)
	}
	return a, nil
}

// PutAlias creates or replaces an alias. Its template must be in the
// registry and its fields must name keywords of that template.
func (s *Service) PutAlias(ctx context.Context, a Alias) (Alias, error) {
	if _, err := s.account(a.Account); err != nil {
		return Alias{}, err
	}
	if !aliasName.MatchString(a.Alias) {
		return Alias{}, problem.Invalidf("invalid_alias", "alias",
			"alias %q must start with a letter and use letters, digits, _ - . (at most 64) — 别名须以字母开头，只含字母、数字、_ - .", a.Alias)
	}
	t, err := s.Template(ctx, a.Account, a.TemplateID)
	if err != nil {
		return Alias{}, err
	}
	keys := map[string]bool{}
	for _, k := range t.Keywords {
		keys[k.Key] = true
	}
	used := map[string]string{}
	for field, kw := range a.Fields {
		if !keys[kw] {
			return Alias{}, problem.Invalidf("unknown_keyword", "fields."+field,
				"fields.%s maps to %q, which is not a keyword of template %s (%s) — fields.%s 对应的 %q 不是模板关键词",
				field, kw, t.TemplateID, keywordList(t), field, kw)
		}
		if wechat.DroppedKeyword(kw) {
			return Alias{}, problem.Invalidf("dropped_keyword", "fields."+field, "%s", droppedMessage("fields."+field))
		}
		if other, dup := used[kw]; dup {
			return Alias{}, problem.Invalidf("duplicate_keyword", "fields."+field,
				"fields.%s and fields.%s both map to %s — 两个字段对应同一个关键词 %s", other, field, kw, kw)
		}
		used[kw] = field
	}
	for kw, v := range a.Defaults {
		if !keys[kw] {
			return Alias{}, problem.Invalidf("unknown_keyword", "defaults."+kw,
				"defaults.%s is not a keyword of template %s (%s) — defaults.%s 不是模板关键词", kw, t.TemplateID, keywordList(t), kw)
		}
		if p := CheckValue(kw, v); p != "" && !(a.Truncate && CheckValue(kw, Truncate(kw, v)) == "") {
			return Alias{}, problem.Unprocessablef("invalid_value", "defaults."+kw, "%s", problemMessage("defaults."+kw, kw, p, v))
		}
	}
	if a.Fallback != "" {
		if t.Kind != KindSubscribe {
			return Alias{}, problem.Invalidf("fallback_not_allowed", "fallback",
				"fallback: only a subscription alias can fall back to a template message — 只有订阅消息别名可以设置回退模板 (fallback)")
		}
		fb, err := s.GetAlias(ctx, a.Account, a.Fallback)
		if err != nil {
			return Alias{}, problem.Invalidf("fallback_not_found", "fallback", "fallback alias %q does not exist — 回退别名 %q 不存在", a.Fallback, a.Fallback)
		}
		if ft, err := s.Template(ctx, fb.Account, fb.TemplateID); err != nil || ft.Kind != KindTemplate {
			return Alias{}, problem.Invalidf("fallback_not_template", "fallback",
				"fallback alias %q must name a template message — 回退别名 %q 必须对应模板消息", a.Fallback, a.Fallback)
		}
	}
	fields, _ := json.Marshal(nonNil(a.Fields))
	defaults, _ := json.Marshal(nonNil(a.Defaults))
	mp := []byte("{}")
	if a.MiniProgram != nil && a.MiniProgram.AppID != "" {
		mp, _ = json.Marshal(a.MiniProgram)
	}
	now := s.stamp()
	if _, err := s.db.ExecContext(ctx, `
INSERT INTO push_aliases (account, alias, template_id, fields, defaults, truncate, url, miniprogram, page, fallback, description, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
ON CONFLICT (account, alias) DO UPDATE SET
    template_id = excluded.template_id, fields = excluded.fields, defaults = excluded.defaults, truncate = excluded.truncate,
    url = excluded.url, miniprogram = excluded.miniprogram, page = excluded.page, fallback = excluded.fallback,
    description = excluded.description, updated_at = excluded.updated_at`,
		a.Account, a.Alias, a.TemplateID, string(fields), string(defaults), a.Truncate, a.URL, string(mp), a.Page, a.Fallback, a.Description, now); err != nil {
		return Alias{}, fmt.Errorf("push: save alias %s: %w", a.Alias, err)
	}
	return s.GetAlias(ctx, a.Account, a.Alias)
}

// DeleteAlias removes an alias.
func (s *Service) DeleteAlias(ctx context.Context, account, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM push_aliases WHERE account = $1 AND alias = $2`, account, name)
	if err != nil {
		return fmt.Errorf("push: delete alias %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.NotFoundf("alias_not_found", "alias", "account %q has no alias %q — 账号 %q 没有别名 %q", account, name, account, name)
	}
	return nil
}

func keywordList(t Template) string {
	var keys []string
	for _, k := range t.Keywords {
		if !k.Dropped {
			keys = append(keys, k.Key)
		}
	}
	return strings.Join(keys, ", ")
}

func droppedMessage(field string) string {
	return field + ": WeChat no longer shows first and remark (since 2023-05-04); put the text in a keyword of the template — " +
		"自 2023-05-04 起微信不再展示 first 和 remark，请使用模板中的关键词"
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}
