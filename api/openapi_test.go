package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

// The OpenAPI document's own field names are camelCase.
//
//nolint:tagliatelle // OpenAPI names these fields, not us
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

//nolint:tagliatelle // OpenAPI names these fields, not us
type operation struct {
	OperationID string                     `json:"operationId"`
	Security    []map[string][]string      `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
	RequestBody *struct {
		Content map[string]json.RawMessage `json:"content"`
	} `json:"requestBody"`
}

var httpMethods = map[string]bool{"get": true, "head": true, "post": true, "put": true, "patch": true, "delete": true, "options": true, "trace": true}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1."), doc.OpenAPI)
	return doc
}

// routes lists "METHOD /path" for every route of a router.
func routes(t *testing.T, r chi.Routes) []string {
	t.Helper()
	var out []string
	require.NoError(t, chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+route)
		return nil
	}))
	return out
}

// The document describes exactly the routes the routers serve: a route
// without documentation, or documentation without a route, fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	doc := loadOpenAPI(t)

	served := map[string]bool{}
	for _, r := range append(routes(t, s.public), routes(t, s.admin)...) {
		served[r] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for key := range item {
			if httpMethods[key] {
				documented[strings.ToUpper(key)+" "+path] = true
			}
		}
	}
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	require.Equal(t, keys(served), keys(documented))
	require.Contains(t, served, "POST /self-service/verifications/{id}/code")
	require.Contains(t, served, "GET /admin/audit/verify")
}

// Admin routes carry the bearer security requirement, and only they do;
// every operation has an id and responses; every JSON body endpoint
// documents 400, 413 and 415.
func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.Equal(t, "http", doc.Components.SecuritySchemes["adminKey"].Type)
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["adminKey"].Scheme)
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			if !httpMethods[key] {
				continue
			}
			var op operation
			require.NoError(t, json.Unmarshal(raw, &op), path)
			name := key + " " + path
			require.NotEmpty(t, op.OperationID, name)
			require.False(t, ids[op.OperationID], "duplicate operationId %s", op.OperationID)
			ids[op.OperationID] = true
			require.NotEmpty(t, op.Responses, name)
			if strings.HasPrefix(path, "/admin/") {
				require.Equal(t, []map[string][]string{{"adminKey": {}}}, op.Security, name)
				require.Contains(t, op.Responses, "401", name)
			} else if len(op.Security) > 0 {
				// Session-based public calls name Kratos' session and
				// answer 401 without one.
				require.Equal(t, []map[string][]string{{"kratosSession": {}}}, op.Security, name)
				require.Contains(t, op.Responses, "401", name)
			}
			if op.RequestBody != nil && op.RequestBody.Content["application/json"] != nil {
				for _, status := range []string{"400", "413", "415"} {
					require.Contains(t, op.Responses, status, name)
				}
			}
		}
	}
}

// Every $ref points at something that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	var root any
	require.NoError(t, json.Unmarshal(openAPI, &root))
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "$ref" {
					ref, ok := c.(string)
					require.True(t, ok, at)
					require.True(t, strings.HasPrefix(ref, "#/"), "%s: external ref %s", at, ref)
					cur := root
					for part := range strings.SplitSeq(strings.TrimPrefix(ref, "#/"), "/") {
						m, ok := cur.(map[string]any)
						require.True(t, ok, "%s: %s", at, ref)
						cur, ok = m[part]
						require.True(t, ok, "%s: unresolved %s", at, ref)
					}
					continue
				}
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(root, "#")
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	for _, h := range []http.Handler{s.Public(), s.Admin()} {
		w := do(t, h, req{method: http.MethodGet, path: "/openapi.json"})
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "application/json", w.Header().Get("Content-Type"))
		require.JSONEq(t, string(openAPI), w.Body.String())
	}
}
