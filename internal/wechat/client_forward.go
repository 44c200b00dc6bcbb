package wechat

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
)

// ForwardRequest is a raw API request relayed as it is, for the WeChat
// API proxy (internal/proxy): the body is streamed, not encoded here.
type ForwardRequest struct {
	Method string
	// Path is the API path such as /cgi-bin/user/get.
	Path string
	// Query is sent as given; it carries the access_token.
	Query  url.Values
	Header http.Header
	// Body returns the request body (nil: no body). When Replayable is
	// false it is called once and the request is never sent to a second
	// base URL, since the body is gone after the first try.
	Body       func() (io.ReadCloser, error)
	Replayable bool
	// ContentLength of the body when known (> 0); otherwise chunked.
	ContentLength int64
}

// Forward sends r to the first healthy base URL, failing over exactly as
// every other call does (transport errors and 5xx mark a URL down), and
// returns the answer unread: the caller closes its body. A 5xx from the
// last URL tried is returned as the response, not as an error.
func (c *Client) Forward(ctx context.Context, r ForwardRequest) (*http.Response, error) {
	t := c.t
	order := t.order()
	if !r.Replayable && len(order) > 1 {
		order = order[:1]
	}
	var lastErr error
	for n, i := range order {
		base := t.baseURLs[i]
		u := base + r.Path
		if len(r.Query) > 0 {
			u += "?" + r.Query.Encode()
		}
		var body io.ReadCloser
		if r.Body != nil {
			b, err := r.Body()
			if err != nil {
				return nil, fmt.Errorf("wechat %s: request body: %w", r.Path, err)
			}
			body = b
		}
		req, err := http.NewRequestWithContext(ctx, r.Method, u, body)
		if err != nil {
			if body != nil {
				body.Close()
			}
			return nil, fmt.Errorf("wechat %s: build request: %s", r.Path, redactText(err.Error()))
		}
		if body != nil && r.ContentLength > 0 {
			req.ContentLength = r.ContentLength
		}
		for k, v := range r.Header {
			req.Header[k] = v
		}
		if r.Replayable && r.Body != nil {
			req.GetBody = r.Body
		}
		resp, err := t.http.Do(req)
		last := n+1 == len(order)
		if err == nil && (resp.StatusCode < 500 || last) {
			if resp.StatusCode < 500 {
				t.markUp(i)
			} else {
				t.markDown(i)
			}
			return resp, nil
		}
		if err != nil {
			lastErr = &TransportError{Path: r.Path, Host: hostOf(base), Err: scrubError(err), Sent: true}
		} else {
			resp.Body.Close()
			lastErr = &HTTPError{Path: r.Path, Host: hostOf(base), StatusCode: resp.StatusCode}
		}
		if ctx.Err() != nil {
			return nil, lastErr
		}
		t.markDown(i)
		if !last {
			t.log.LogAttrs(ctx, slog.LevelWarn, "wechat: API domain failed, trying the next one",
				slog.String("failed", base), slog.String("next", t.baseURLs[order[n+1]]),
				slog.String("path", r.Path), slog.String("error", lastErr.Error()))
		}
	}
	return nil, lastErr
}
