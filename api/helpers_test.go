package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/flows"
)

const testAdminKey = "test-admin-key-0123456789abcdef"

// logBuffer collects log output from concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newServer builds a Server around svc (nil for tests that never reach
// the engine) with its logs in the returned buffer.
func newServer(t *testing.T, cfg Config, svc *flows.Service) (*Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = logs.logger()
	}
	if cfg.AdminAPIKey == "" {
		cfg.AdminAPIKey = testAdminKey
	}
	return New(cfg, svc), logs
}

type req struct {
	method, path, body string
	contentType        string
	headers            map[string]string
	admin              bool // send the admin key
}

func do(t *testing.T, h http.Handler, rq req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if rq.contentType != "" {
		r.Header.Set("Content-Type", rq.contentType)
	} else if rq.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if rq.admin {
		r.Header.Set("Authorization", "Bearer "+testAdminKey)
	}
	for k, v := range rq.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errorOf decodes the error shape and checks it is the whole story.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"), "body: %s", w.Body.String())
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), w.Body.String())
	require.NotEmpty(t, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
	return e
}

func requireError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body.String())
	e := errorOf(t, w)
	require.Equal(t, code, e.Error.Code, "message: %s", e.Error.Message)
	return e
}
