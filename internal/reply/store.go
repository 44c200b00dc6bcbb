package reply

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/wechat"
)

// ErrNotFound is returned when no rule has the given id.
var ErrNotFound = errors.New("reply: rule not found")

// Store keeps the rules in reply_rules and a compiled copy in memory.
// Matching reads only the in-memory copy, so answering a push never waits
// on the database; every change made through the Store reloads it, and
// Refresh picks up changes made by another process (the CLI).
type Store struct {
	db  *db.DB
	now func() time.Time

	mu    sync.Mutex                          // serialises reloads
	cache atomic.Pointer[map[string]*ruleSet] // account → rules

	files FileMedia // resolves the files replies name; nil leaves them unanswered
	log   *slog.Logger
}

// FileMedia gives the media_id of a local file, uploading it when WeChat
// does not have it (*media.Library).
type FileMedia interface {
	ForFile(ctx context.Context, account, typ, path string) (string, error)
}

// fileReplyTimeout bounds the upload of a reply's file while WeChat waits
// for the answer (5 s in all); files are uploaded ahead by Warm, so this
// is only reached for a file changed since.
const fileReplyTimeout = 3 * time.Second

// UseFiles lets replies name local files (reply.file).
func (s *Store) UseFiles(files FileMedia, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.files, s.log = files, log
}

// Warm uploads every file the rules name, so that answering a push finds
// its media_id at hand; a file that fails is logged and tried again when
// a push needs it.
func (s *Store) Warm(ctx context.Context) {
	if s.files == nil {
		return
	}
	for account, set := range *s.cache.Load() {
		for _, r := range set.all() {
			if !namesFiles(&r) {
				continue
			}
			if _, file, err := s.withFiles(ctx, account, &r); err != nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "reply: the file of a rule could not be uploaded",
					slog.String("account", account), slog.Int64("rule", r.ID), slog.String("file", file), slog.String("error", err.Error()))
			}
		}
	}
}

// NewStore returns a Store with an empty cache; call Seed or Refresh before
// matching.
func NewStore(d *db.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: d, now: now}
	empty := map[string]*ruleSet{}
	s.cache.Store(&empty)
	return s
}

// Seed replaces the config rules with the configuration's lists (for an
// official account that configures none, the starter set) and keeps the
// rules added from the CLI. It runs at every start, in one
// transaction, then loads the cache.
func (s *Store) Seed(ctx context.Context, accounts []config.Account) error {
	var all []Rule
	for _, a := range accounts {
		list := a.Replies
		if len(list) == 0 {
			if a.Kind == config.KindMiniProgram {
				continue // mini programs cannot answer passively
			}
			list = StarterRules()
		}
		for i, cr := range list {
			r := FromConfig(a.Name, i, cr)
			if err := r.normalize(); err != nil {
				return fmt.Errorf("account %q replies[%d]: %w", a.Name, i, err)
			}
			all = append(all, r)
		}
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reply: seed: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// All config rules go, also those of accounts no longer configured.
	if _, err := tx.ExecContext(ctx, `DELETE FROM reply_rules WHERE source = $1`, SourceConfig); err != nil {
		return fmt.Errorf("reply: seed: %w", err)
	}
	now := db.Timestamp(s.now())
	for i := range all {
		if _, err := insertRule(ctx, tx, &all[i], now); err != nil {
			return fmt.Errorf("reply: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("reply: seed: %w", err)
	}
	return s.Refresh(ctx)
}

type execQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func insertRule(ctx context.Context, q execQuerier, r *Rule, now time.Time) (int64, error) {
	body, err := json.Marshal(r.Reply)
	if err != nil {
		return 0, err
	}
	r.CreatedAt = now
	err = q.QueryRowContext(ctx, `
INSERT INTO reply_rules (account, position, match, mode, pattern, msg_type, event_key, reply, enabled, source, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		r.Account, r.Position, r.Match, r.Mode, r.Pattern, r.MsgType, r.EventKey, string(body), r.Enabled, r.Source, now).Scan(&r.ID)
	return r.ID, err
}

// Add validates and stores a rule (source cli unless set). Without a
// position it goes after the account's last rule. An invalid rule — an
// unknown match, a regex that does not compile, a text reply without
// content — is refused with an invalid_reply_rule *problem.Error naming every problem.
// Position 0 (or less) means "after the last rule".
func (s *Store) Add(ctx context.Context, r Rule) (Rule, error) {
	r.ID = 0
	if r.Source == "" {
		r.Source = SourceCLI
	}
	r.Enabled = true // turn it off afterwards with SetEnabled
	if err := r.normalize(); err != nil {
		return Rule{}, err
	}
	if r.Position <= 0 {
		var last sql.NullInt64
		if err := s.db.QueryRowContext(ctx, `SELECT max(position) FROM reply_rules WHERE account = $1`, r.Account).Scan(&last); err != nil {
			return Rule{}, fmt.Errorf("reply: add: %w", err)
		}
		if last.Valid {
			r.Position = int(last.Int64) + 1
		}
	}
	if _, err := insertRule(ctx, s.db, &r, db.Timestamp(s.now())); err != nil {
		return Rule{}, fmt.Errorf("reply: add: %w", err)
	}
	return r, s.Refresh(ctx)
}

// Delete removes a rule. A config rule comes back at the next start unless
// it is also removed from the configuration.
func (s *Store) Delete(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM reply_rules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("reply: delete: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return s.Refresh(ctx)
}

// Move sets a rule's position; keyword rules are tried in position order.
func (s *Store) Move(ctx context.Context, id int64, position int) error {
	return s.update(ctx, `UPDATE reply_rules SET position = $1 WHERE id = $2`, position, id)
}

// SetEnabled turns a rule on or off without deleting it.
func (s *Store) SetEnabled(ctx context.Context, id int64, enabled bool) error {
	return s.update(ctx, `UPDATE reply_rules SET enabled = $1 WHERE id = $2`, enabled, id)
}

func (s *Store) update(ctx context.Context, query string, value any, id int64) error {
	res, err := s.db.ExecContext(ctx, query, value, id)
	if err != nil {
		return fmt.Errorf("reply: update rule %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return s.Refresh(ctx)
}

// List returns an account's rules ("" = every account) in matching order.
func (s *Store) List(ctx context.Context, account string) ([]Rule, error) {
	query := `SELECT id, account, position, match, mode, pattern, msg_type, event_key, reply, enabled, source, created_at FROM reply_rules`
	var args []any
	if account != "" {
		query += ` WHERE account = $1`
		args = append(args, account)
	}
	query += ` ORDER BY account, position, id`
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reply: list: %w", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		var (
			r    Rule
			body []byte
		)
		if err := rows.Scan(&r.ID, &r.Account, &r.Position, &r.Match, &r.Mode, &r.Pattern, &r.MsgType, &r.EventKey,
			&body, &r.Enabled, &r.Source, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("reply: list: %w", err)
		}
		if err := json.Unmarshal(body, &r.Reply); err != nil {
			return nil, fmt.Errorf("reply: rule %d has an unreadable reply: %w", r.ID, err)
		}
		r.CreatedAt = r.CreatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reply: list: %w", err)
	}
	return out, nil
}

// Refresh reloads the in-memory rules from the database. A stored rule that
// no longer validates (edited by hand) is left out rather than failing the
// whole set.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rules, err := s.List(ctx, "")
	if err != nil {
		return err
	}
	byAccount := map[string][]Rule{}
	for _, r := range rules {
		if err := r.normalize(); err != nil {
			continue
		}
		byAccount[r.Account] = append(byAccount[r.Account], r)
	}
	next := make(map[string]*ruleSet, len(byAccount))
	for account, list := range byAccount {
		sortRules(list)
		next[account] = buildRuleSet(list)
	}
	s.cache.Store(&next)
	return nil
}

// RefreshEvery reloads the rules periodically until ctx ends, so rules
// changed by `wxgate replies` in another process take effect without a
// restart. Errors are passed to onError (may be nil) and retried next tick.
func (s *Store) RefreshEvery(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// Match returns the rule that answers m for the account, or nil.
func (s *Store) Match(account string, m *wechat.Message) *Rule {
	set := (*s.cache.Load())[account]
	if set == nil {
		return nil
	}
	return set.match(m)
}

// Reply returns the passive reply for m, or nil for no reply ("success").
func (s *Store) Reply(account string, m *wechat.Message) wechat.Reply {
	r := s.Match(account, m)
	if r == nil {
		return nil
	}
	if namesFiles(r) {
		if s.files == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), fileReplyTimeout)
		defer cancel()
		resolved, file, err := s.withFiles(ctx, account, r)
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "reply: the rule's file is not at WeChat; answering nothing",
				slog.String("account", account), slog.Int64("rule", r.ID), slog.String("file", file), slog.String("error", err.Error()))
			return nil
		}
		return resolved.Build(m)
	}
	return r.Build(m)
}

// namesFiles reports whether r's reply names a local file: the media of
// an image, voice or video, or the cover of a news article.
func namesFiles(r *Rule) bool {
	if r.Reply.File != "" {
		return true
	}
	for _, a := range r.Reply.Articles {
		if a.PicFile != "" {
			return true
		}
	}
	return false
}

// withFiles is r with its files' references at WeChat filled in (media_id,
// article pic_url); on failure it names the file that failed.
func (s *Store) withFiles(ctx context.Context, account string, r *Rule) (*Rule, string, error) {
	out := *r
	if r.Reply.File != "" {
		id, err := s.files.ForFile(ctx, account, r.Reply.Type, r.Reply.File)
		if err != nil {
			return nil, r.Reply.File, err
		}
		out.Reply.MediaID = id
	}
	if len(r.Reply.Articles) > 0 {
		out.Reply.Articles = slices.Clone(r.Reply.Articles)
		for i, a := range out.Reply.Articles {
			if a.PicFile == "" {
				continue
			}
			url, err := s.files.ForFile(ctx, account, wechat.MediaNewsImage, a.PicFile)
			if err != nil {
				return nil, a.PicFile, err
			}
			out.Reply.Articles[i].PicURL = url
		}
	}
	return &out, "", nil
}
