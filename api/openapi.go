package api

import (
	_ "embed"
	"net/http"
)

// openAPI describes both listeners. TestOpenAPIMatchesRoutes walks the
// routers and fails when a route and the document disagree.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI: GET /openapi.json on both listeners.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeRaw(w, http.StatusOK, mimeJSON, openAPI)
	return nil
}
