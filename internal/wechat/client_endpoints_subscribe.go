package wechat

import (
	"context"
	"net/http"
)

// SubscribeTemplate is an entry of wxaapi/newtmpl/gettemplate: a
// subscription template of a mini program, or a subscription notification
// template of an official account.
type SubscribeTemplate struct {
	TemplateID string `json:"priTmplId"`
	Title      string `json:"title"`
	Content    string `json:"content"`
	Example    string `json:"example,omitempty"`
	// Type is 2 for a one-time template, 3 for a long-term one.
	Type int `json:"type"`
}

// Subscription template types.
const (
	SubscribeTemplateOneTime  = 2
	SubscribeTemplateLongTerm = 3
)

// ListSubscribeTemplates calls GET /wxaapi/newtmpl/gettemplate.
func (c *Client) ListSubscribeTemplates(ctx context.Context) ([]SubscribeTemplate, error) {
	var out struct {
		Data []SubscribeTemplate `json:"data"`
	}
	err := c.do(ctx, call{method: http.MethodGet, path: "/wxaapi/newtmpl/gettemplate", token: true}, &out)
	return out.Data, err
}
