package follower

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Tags manages an account's user tags (用户标签). WeChat holds the tags
// themselves (names, counts); the follower store keeps each follower's
// tag ids in step with what is done here, and a sync refreshes them from
// WeChat, so audiences "tag X" (schedules, follower search) read them
// locally.
type Tags struct {
	store   *Store
	clients APIClients
}

// NewTags returns the tag service of the accounts clients knows.
func NewTags(store *Store, clients APIClients) *Tags {
	return &Tags{store: store, clients: clients}
}

// MaxTagMembers bounds one tag or untag request; it is sent to WeChat in
// batches of wechat.MaxTagBatch.
const MaxTagMembers = 10000

// TagChange is what a tag or untag request did.
type TagChange struct {
	TagID    int64 `json:"tag_id"`
	Tagged   int   `json:"tagged"`
	Untagged int   `json:"untagged"`
}

func (t *Tags) client(account string) (*wechat.Client, error) {
	if t.clients == nil {
		return nil, errNoAPIClient(account)
	}
	c, ok := t.clients.Client(account)
	if !ok {
		return nil, errNoAPIClient(account)
	}
	return c, nil
}

func errNoAPIClient(account string) error {
	return problem.NotFoundf("account_not_found", "account",
		"no official account %q with an app_secret is configured — 未配置公众号 %q（或缺少 app_secret）", account, account)
}

// List returns the account's tags as WeChat has them.
func (t *Tags) List(ctx context.Context, account string) ([]wechat.Tag, error) {
	c, err := t.client(account)
	if err != nil {
		return nil, err
	}
	tags, err := c.Tags(ctx)
	if err != nil {
		return nil, fmt.Errorf("follower: listing the tags of %s: %w", account, err)
	}
	if tags == nil {
		tags = []wechat.Tag{}
	}
	return tags, nil
}

func checkTagName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", problem.Invalidf("tag_name_required", "name", "a tag needs a name — 请填写标签名")
	case utf8.RuneCountInString(name) > wechat.MaxTagNameRunes:
		return "", problem.Invalidf("tag_name_too_long", "name", "a tag's name has at most %d characters (got %d) — 标签名最多 %d 个字",
			wechat.MaxTagNameRunes, utf8.RuneCountInString(name), wechat.MaxTagNameRunes)
	}
	return name, nil
}

func checkTagID(id int64) error {
	if id <= wechat.LastReservedTag {
		return problem.Invalidf("reserved_tag", "id", "tags 0, 1 and 2 are WeChat's own and cannot be changed (got %d) — 标签 0、1、2 为微信系统保留，不能修改", id)
	}
	return nil
}

// Create makes a tag.
func (t *Tags) Create(ctx context.Context, account, name string) (wechat.Tag, error) {
	name, err := checkTagName(name)
	if err != nil {
		return wechat.Tag{}, err
	}
	c, err := t.client(account)
	if err != nil {
		return wechat.Tag{}, err
	}
	tag, err := c.CreateTag(ctx, name)
	if err != nil {
		return wechat.Tag{}, tagError(fmt.Errorf("follower: creating tag %q of %s: %w", name, account, err))
	}
	return tag, nil
}

// Rename gives a tag a new name.
func (t *Tags) Rename(ctx context.Context, account string, id int64, name string) (wechat.Tag, error) {
	if err := checkTagID(id); err != nil {
		return wechat.Tag{}, err
	}
	name, err := checkTagName(name)
	if err != nil {
		return wechat.Tag{}, err
	}
	c, err := t.client(account)
	if err != nil {
		return wechat.Tag{}, err
	}
	if err := c.RenameTag(ctx, id, name); err != nil {
		return wechat.Tag{}, tagError(fmt.Errorf("follower: renaming tag %d of %s: %w", id, account, err))
	}
	return wechat.Tag{ID: id, Name: name}, nil
}

// Delete removes a tag at WeChat and from every follower of the account.
func (t *Tags) Delete(ctx context.Context, account string, id int64) error {
	if err := checkTagID(id); err != nil {
		return err
	}
	c, err := t.client(account)
	if err != nil {
		return err
	}
	if err := c.DeleteTag(ctx, id); err != nil {
		return tagError(fmt.Errorf("follower: deleting tag %d of %s: %w", id, account, err))
	}
	openids, err := t.store.openidsWithTag(ctx, account, id, false)
	if err != nil {
		return err
	}
	return t.store.changeTag(ctx, account, id, openids, false)
}

// Change tags the openids of add and untags those of remove, at WeChat in
// batches of 50, recording each batch on the followers as WeChat accepts
// it. On an error the batches before it are done; the error says how far
// it got.
func (t *Tags) Change(ctx context.Context, account string, id int64, add, remove []string) (TagChange, error) {
	res := TagChange{TagID: id}
	if err := checkTagID(id); err != nil {
		return res, err
	}
	add, remove = uniqueOpenIDs(add), uniqueOpenIDs(remove)
	switch {
	case len(add)+len(remove) == 0:
		return res, problem.Invalidf("openids_required", "add", "give the openids to tag (add) or untag (remove) — 请提供要打标签（add）或取消标签（remove）的 openid")
	case len(add)+len(remove) > MaxTagMembers:
		return res, problem.Invalidf("too_many_openids", "add", "at most %d openids per request (got %d) — 每次最多 %d 个 openid",
			MaxTagMembers, len(add)+len(remove), MaxTagMembers)
	}
	for _, o := range remove {
		if slices.Contains(add, o) {
			return res, problem.Invalidf("openid_added_and_removed", "remove", "%s is both in add and in remove — %s 同时出现在 add 和 remove 中", o, o)
		}
	}
	c, err := t.client(account)
	if err != nil {
		return res, err
	}
	for _, side := range []struct {
		openids []string
		add     bool
		call    func(context.Context, int64, []string) error
		count   *int
	}{{add, true, c.TagUsers, &res.Tagged}, {remove, false, c.UntagUsers, &res.Untagged}} {
		for batch := range slices.Chunk(side.openids, wechat.MaxTagBatch) {
			if err := side.call(ctx, id, batch); err != nil {
				return res, tagError(fmt.Errorf("follower: tag %d of %s after %d tagged and %d untagged: %w", id, account, res.Tagged, res.Untagged, err))
			}
			if err := t.store.changeTag(ctx, account, id, batch, side.add); err != nil {
				return res, err
			}
			*side.count += len(batch)
		}
	}
	return res, nil
}

// tagError words WeChat's refusals of a tag operation for the caller; the
// WeChat error stays in the chain.
func tagError(err error) error {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	var p *problem.Error
	switch apiErr.Code {
	case wechat.CodeTagNameTaken:
		p = problem.Conflictf("tag_name_taken", "name", "another tag has this name — 已有同名标签")
	case wechat.CodeUnknownTag:
		p = problem.NotFoundf("unknown_tag", "id", "WeChat has no such tag — 标签不存在")
	case 45056:
		p = problem.Conflictf("too_many_tags", "name", "the account has its %d tags already — 标签数量已达上限 %d 个", wechat.MaxTags, wechat.MaxTags)
	case 45059:
		p = problem.Conflictf("too_many_tags_per_follower", "add", "a follower carries at most %d tags — 每个粉丝最多 %d 个标签", wechat.MaxTagsPerUser, wechat.MaxTagsPerUser)
	case 45057:
		p = problem.Conflictf("tag_too_large", "id", "WeChat does not delete a tag of more than 100 000 followers; untag them first — 粉丝数超过 10 万的标签不能直接删除，请先取消标签")
	case wechat.CodeInvalidOpenID, 49003:
		p = problem.Invalidf("invalid_openid", "add", "an openid is not a follower of this account — 存在不属于该公众号的 openid")
	default:
		return err
	}
	p.Message += " (" + err.Error() + ")"
	return errors.Join(p, err)
}

func uniqueOpenIDs(in []string) []string {
	out := make([]string, 0, len(in))
	for _, o := range in {
		if o = strings.TrimSpace(o); o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// OpenIDsWithTag returns the subscribed followers carrying tag id, the
// audience of a send to a tag.
func (s *Store) OpenIDsWithTag(ctx context.Context, account string, id int64) ([]string, error) {
	return s.openidsWithTag(ctx, account, id, true)
}

// SubscribedOpenIDs returns up to limit subscribed followers of the
// account, the audience of a send to all.
func (s *Store) SubscribedOpenIDs(ctx context.Context, account string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT openid FROM followers WHERE account = $1 AND subscribed ORDER BY openid LIMIT $2`, account, limit)
	if err != nil {
		return nil, fmt.Errorf("follower: subscribed followers of %s: %w", account, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// openidsWithTag lists the account's followers carrying tag id.
func (s *Store) openidsWithTag(ctx context.Context, account string, id int64, subscribedOnly bool) ([]string, error) {
	q := `SELECT openid FROM followers WHERE account = $1 AND EXISTS (SELECT 1 FROM json_each(tag_ids) WHERE json_each.value = $2)`
	if s.db.Dialect == db.Postgres {
		q = `SELECT openid FROM followers WHERE account = $1 AND tag_ids @> jsonb_build_array($2::bigint)`
	}
	if subscribedOnly {
		q += ` AND subscribed`
	}
	q += ` ORDER BY openid`
	rows, err := s.db.QueryContext(ctx, q, account, id)
	if err != nil {
		return nil, fmt.Errorf("follower: followers with tag %d: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// changeTag adds tag id to (or removes it from) the tag ids of the
// account's followers among openids, in one transaction; openids the
// store has not seen are skipped (a sync brings them with their tags).
func (s *Store) changeTag(ctx context.Context, account string, id int64, openids []string, add bool) error {
	if len(openids) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("follower: tagging: %w", err)
	}
	defer tx.Rollback()
	now := db.Timestamp(s.now())
	for _, openid := range openids {
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT tag_ids FROM followers WHERE account = $1 AND openid = $2`, account, openid).Scan(&raw)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			return fmt.Errorf("follower: tagging %s: %w", openid, err)
		}
		var ids []int64
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &ids); err != nil {
				return fmt.Errorf("follower: tags of %s: %w", openid, err)
			}
		}
		has := slices.Contains(ids, id)
		switch {
		case add && !has:
			ids = append(ids, id)
		case !add && has:
			ids = slices.DeleteFunc(ids, func(x int64) bool { return x == id })
		default:
			continue
		}
		if ids == nil {
			ids = []int64{}
		}
		encoded, _ := json.Marshal(ids)
		if _, err := tx.ExecContext(ctx, `UPDATE followers SET tag_ids = $1, updated_at = $2 WHERE account = $3 AND openid = $4`,
			string(encoded), now, account, openid); err != nil {
			return fmt.Errorf("follower: tagging %s: %w", openid, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("follower: tagging: %w", err)
	}
	return nil
}
