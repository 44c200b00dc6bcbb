package api

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/wxgate/wxgate/internal/auth"
	"github.com/wxgate/wxgate/internal/db/dbtest"
)

// TestOpenAPIMatchesRoutes fails when a route is in the mux and not in
// openapi.json, or the other way round.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(Options{Auth: auth.NewStore(dbtest.SQLite(t), func() time.Time { return now })})
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.json is not valid: %v", err)
	}
	var inSpec []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, method+" "+path)
		}
	}
	slices.Sort(inSpec)
	inMux := slices.Sorted(slices.Values(h.routes))
	for _, r := range inMux {
		if !slices.Contains(inSpec, r) {
			t.Errorf("route %s is in the mux but not in openapi.json", r)
		}
	}
	for _, r := range inSpec {
		if !slices.Contains(inMux, r) {
			t.Errorf("route %s is in openapi.json but not in the mux", r)
		}
	}
	// Every operation names its scope, so a client knows which key to make.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if _, ok := op.Extensions["x-scopes"]; !ok {
				t.Errorf("%s %s has no x-scopes", method, path)
			}
			if !strings.HasPrefix(path, "/api/v1/") {
				t.Errorf("%s %s is outside /api/v1/", method, path)
			}
		}
	}
	if len(inMux) < 40 {
		t.Errorf("only %d routes recorded; the route table is not being read", len(inMux))
	}
}
