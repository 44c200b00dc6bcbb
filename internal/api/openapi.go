package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the contract of every /api/v1 route, kept by hand next to the
// route table; openapi_test.go holds the two against each other.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI is GET /api/v1/openapi.json (no key).
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
}

// OpenAPI returns the contract document (openapi.json), for the console's
// rendered view of it.
func OpenAPI() []byte { return openAPI }
