package wechat

import (
	"context"
	"net/http"
)

// User tags (protocol doc §5.13).

// Tag limits WeChat enforces.
const (
	MaxTags          = 100 // tags an account may have (45056)
	MaxTagNameRunes  = 30  // characters of a tag's name (45158)
	MaxTagBatch      = 50  // openids per batchtagging / batchuntagging (40032)
	MaxTagsPerUser   = 20  // tags one follower may carry (45059)
	LastReservedTag  = 2   // tags 0, 1 and 2 are WeChat's own (45058)
	CodeTagNameTaken = 45157
	CodeUnknownTag   = 45159
)

// Tag is one of an account's user tags.
type Tag struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

type tagEnvelope struct {
	Tag struct {
		ID   int64  `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	} `json:"tag"`
}

// CreateTag calls POST /cgi-bin/tags/create.
func (c *Client) CreateTag(ctx context.Context, name string) (Tag, error) {
	var in, out tagEnvelope
	in.Tag.Name = name
	if err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/tags/create", token: true, body: in, once: true}, &out); err != nil {
		return Tag{}, err
	}
	return Tag{ID: out.Tag.ID, Name: out.Tag.Name}, nil
}

// Tags calls GET /cgi-bin/tags/get.
func (c *Client) Tags(ctx context.Context) ([]Tag, error) {
	var out struct {
		Tags []Tag `json:"tags"`
	}
	if err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/tags/get", token: true}, &out); err != nil {
		return nil, err
	}
	return out.Tags, nil
}

// RenameTag calls POST /cgi-bin/tags/update.
func (c *Client) RenameTag(ctx context.Context, id int64, name string) error {
	var in tagEnvelope
	in.Tag.ID, in.Tag.Name = id, name
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/tags/update", token: true, body: in}, nil)
}

// DeleteTag calls POST /cgi-bin/tags/delete.
func (c *Client) DeleteTag(ctx context.Context, id int64) error {
	var in tagEnvelope
	in.Tag.ID = id
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/tags/delete", token: true, body: in}, nil)
}

type tagMembers struct {
	OpenIDs []string `json:"openid_list"`
	TagID   int64    `json:"tagid"`
}

// TagUsers calls POST /cgi-bin/tags/members/batchtagging for at most
// MaxTagBatch openids.
func (c *Client) TagUsers(ctx context.Context, id int64, openids []string) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/tags/members/batchtagging", token: true,
		body: tagMembers{OpenIDs: openids, TagID: id}}, nil)
}

// UntagUsers calls POST /cgi-bin/tags/members/batchuntagging for at most
// MaxTagBatch openids.
func (c *Client) UntagUsers(ctx context.Context, id int64, openids []string) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/tags/members/batchuntagging", token: true,
		body: tagMembers{OpenIDs: openids, TagID: id}}, nil)
}
