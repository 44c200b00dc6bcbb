package api_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// TestOpenAPIExamples sends every request example of the served OpenAPI
// document to a running gateway and validates each answer against the
// document's response for that status.
func TestOpenAPIExamples(t *testing.T) {
	t.Parallel()
	e := startE2E(t, dbtest.SQLite(t), config.BindingConfig{})
	status, _, raw := e.call(t, "GET", "/api/v1/openapi.json", "", nil)
	if status != 200 {
		t.Fatalf("openapi.json without a key: %d %s", status, raw)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("served document is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %s, want 3.1", doc.OpenAPI)
	}

	type call struct {
		method, path string
		item         *openapi3.PathItem
		op           *openapi3.Operation
	}
	var calls []call
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			calls = append(calls, call{method, path, item, op})
		}
	}
	// Writes before reads before deletes, so that reads find what the
	// examples created.
	rank := map[string]int{"POST": 0, "PUT": 1, "PATCH": 2, "GET": 3, "DELETE": 4}
	// Templates are registered first: messages, previews, aliases and
	// schedules name one.
	first := func(c call) int {
		if c.method == "POST" && c.path == "/api/v1/templates" {
			return 0
		}
		return 1
	}
	slices.SortFunc(calls, func(a, b call) int {
		return cmp.Or(cmp.Compare(first(a), first(b)), cmp.Compare(rank[a.method], rank[b.method]), cmp.Compare(a.path, b.path))
	})
	// The examples that cannot succeed against a fresh gateway: they need a
	// person who scanned a code, a follower the simulator pushed, or a
	// wx.login code. Their error answers are validated all the same.
	noSuccess := map[string]string{
		"GET /api/v1/bindings/qrcode/{ticket}":                       "the ticket is WeChat's, random per code",
		"GET /api/v1/bindings/qrcode/{ticket}/png":                   "the ticket is WeChat's, random per code",
		"GET /api/v1/bindings/{id}":                                  "a binding needs a scan",
		"DELETE /api/v1/bindings/{id}":                               "a binding needs a scan",
		"GET /api/v1/followers/{openid}":                             "no follower before a subscribe or sync",
		"POST /api/v1/miniprogram/login":                             "a code comes from wx.login",
		"GET /api/v1/messages/{id}":                                  "message ids are random",
		"POST /api/v1/messages/{id}/recipients/{seq}/resend":         "message ids are random",
		"POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver": "a delivery needs an event",
		"POST /api/v1/followers/{openid}/typing":                     "the example's openid is no follower of the simulator",
		"POST /api/v1/tags/{id}/members":                             "the example's openid is no follower of the simulator",
		"POST /api/v1/mass/preview":                                  "the example's openid is no follower of the simulator",
		"GET /api/v1/menus/match":                                    "the example's openid is no follower of the simulator",
		"DELETE /api/v1/media/{media_id}":                            "media ids are WeChat's, random per upload",
		"POST /api/v1/media/downloads":                               "media ids are WeChat's, random per message",
		"GET /api/v1/media/downloads/{media_id}":                     "media ids are WeChat's, random per message",
	}

	answered := map[int]int{}
	for _, c := range calls {
		name := c.method + " " + c.path
		target, pathParams := c.path, map[string]string{}
		query := url.Values{}
		for _, pr := range append(slices.Clone(c.item.Parameters), c.op.Parameters...) {
			p := pr.Value
			if p.Example == nil {
				if p.Required {
					t.Errorf("%s: required parameter %s has no example", name, p.Name)
				}
				continue
			}
			v := fmt.Sprint(p.Example)
			switch p.In {
			case "path":
				pathParams[p.Name] = v
				target = strings.ReplaceAll(target, "{"+p.Name+"}", url.PathEscape(v))
			case "query":
				query.Set(p.Name, v)
			}
		}
		if len(query) > 0 {
			target += "?" + query.Encode()
		}
		var body []byte
		contentType := "application/json"
		if rb := c.op.RequestBody; rb != nil && rb.Value.Content.Get("multipart/form-data") != nil {
			// An upload: the example's fields, and a real image for "file".
			var form bytes.Buffer
			mw := multipart.NewWriter(&form)
			fields, _ := rb.Value.Content.Get("multipart/form-data").Example.(map[string]any)
			for k, v := range fields {
				if k != "file" {
					_ = mw.WriteField(k, fmt.Sprint(v))
				}
			}
			fw, _ := mw.CreateFormFile("file", "welcome.jpg")
			_, _ = fw.Write(append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 100)...))
			_ = mw.Close()
			body, contentType = form.Bytes(), mw.FormDataContentType()
		} else if rb != nil {
			mt := rb.Value.Content.Get("application/json")
			if mt == nil || mt.Example == nil {
				t.Errorf("%s: request body without a JSON example", name)
				continue
			}
			body, _ = json.Marshal(mt.Example)
		}
		req, _ := http.NewRequestWithContext(t.Context(), c.method, e.url+target, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.key)
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered[resp.StatusCode]++
		if why, ok := noSuccess[name]; resp.StatusCode >= 300 && !ok {
			t.Errorf("%s → %d: the example should succeed: %s", name, resp.StatusCode, got)
		} else if ok && resp.StatusCode < 300 {
			t.Errorf("%s → %d: listed as unable to succeed (%s); take it off the list", name, resp.StatusCode, why)
		}
		t.Logf("%s → %d %.200s", name, resp.StatusCode, got)

		// The request as the validator sees it: the path in the document
		// and the example's own body.
		vreq, _ := http.NewRequest(c.method, e.url+target, bytes.NewReader(body))
		input := &openapi3filter.RequestValidationInput{
			Request:    vreq,
			PathParams: pathParams,
			Route:      &routers.Route{Spec: doc, Path: c.path, PathItem: c.item, Method: c.method, Operation: c.op},
		}
		if body != nil {
			vreq.Header.Set("Content-Type", contentType)
		}
		// The example itself must be a valid request (the key is not the
		// validator's business: the gateway checked it).
		input.Options = &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
		if err := openapi3filter.ValidateRequest(t.Context(), input); err != nil {
			t.Errorf("%s: the example is not a valid request: %v", name, err)
		}
		vreq.Body = io.NopCloser(bytes.NewReader(body))
		opts := &openapi3filter.Options{IncludeResponseStatus: true}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			opts.ExcludeResponseBody = true
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input,
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Body:                   io.NopCloser(bytes.NewReader(got)),
			Options:                opts,
		}
		if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
			t.Errorf("%s → %d does not match the document: %v\n%s", name, resp.StatusCode, err, got)
		}
	}
	t.Logf("answers by status: %v", answered)
}
