package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/api"
)

// The API reference page shows every operation of openapi.json, in both
// languages, with its scopes and its example body.
func TestAPIContractPage(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Scopes      []string `json:"x-scopes"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		body := signedIn(t, lang).get("/admin/api").page(t, http.StatusOK)
		n := 0
		for path, ops := range doc.Paths {
			for method, op := range ops {
				n++
				id := `id="op-` + op.OperationID + `"`
				i := strings.Index(body, id)
				if i < 0 {
					t.Fatalf("%s: %s %s (%s) is not on the page", lang, method, path, op.OperationID)
				}
				end := strings.Index(body[i:], "</details>")
				section := body[i : i+end]
				if !strings.Contains(section, strings.ToUpper(method)) || !strings.Contains(section, `<code class="path">`+path+`</code>`) {
					t.Fatalf("%s: the section of %s lacks its method or path:\n%s", lang, op.OperationID, section)
				}
				for _, s := range op.Scopes {
					if !strings.Contains(section, `<code class="scope">`+s+`</code>`) {
						t.Fatalf("%s: %s does not show its scope %s", lang, op.OperationID, s)
					}
				}
			}
		}
		if got := strings.Count(body, `data-test="api-op"`); got != n {
			t.Fatalf("%s: %d operations on the page, %d in openapi.json", lang, got, n)
		}
		if !strings.Contains(body, `href="/api/v1/openapi.json"`) {
			t.Fatalf("%s: no link to the document itself", lang)
		}
		want := map[string]string{"zh-CN": "接口文档", "en": "API reference"}[lang]
		if !strings.Contains(body, "<h1>"+want+"</h1>") {
			t.Fatalf("%s: heading %q missing", lang, want)
		}
	}
	// An example request body is shown, indented, and escaped as HTML.
	body := signedIn(t, "en").get("/admin/api").page(t, http.StatusOK)
	i := strings.Index(body, `id="op-post_messages"`)
	if i < 0 {
		t.Fatal("POST /api/v1/messages is not on the page")
	}
	section := body[i : i+strings.Index(body[i:], "</details>")]
	if !strings.Contains(section, `<pre class="example">{`) || !strings.Contains(section, "\n  &#34;") {
		t.Fatalf("the example of POST /api/v1/messages is not shown indented:\n%s", section)
	}
}
