package engagelabtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/engagelabtest"
)

// call posts body to the fake with raw HTTP and decodes the JSON answer.
func call(t *testing.T, srv *engagelabtest.Server, path, body string, auth bool, contentType string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.SetBasicAuth(engagelabtest.DevKey, engagelabtest.DevSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
	return resp.StatusCode, out
}

func TestWire(t *testing.T) {
	t.Parallel()
	srv := engagelabtest.Start(t)
	const js = "application/json"
	send := `{"to":"+6591234567","template":{"id":"vigil-otp","language":"default","params":{"key1":"value1"}}}`

	tests := []struct {
		name       string
		path, body string
		auth       bool
		ctype      string
		wantStatus int
		wantCode   float64 // EngageLab error code; 0 for success
	}{
		{"no auth", engagelabtest.Send, send, false, js, 401, 2001},
		{"form body", engagelabtest.Send, send, true, "application/x-www-form-urlencoded", 400, 3001},
		{"broken JSON", engagelabtest.Send, `{"to":`, true, js, 400, 3001},
		{"unknown field", engagelabtest.Send, `{"to":"+6591234567","template":{"id":"vigil-otp"},"code":"1"}`, true, js, 400, 3001},
		{"no template", engagelabtest.Send, `{"to":"+6591234567"}`, true, js, 400, 3002},
		{"unknown template", engagelabtest.Send, `{"to":"+6591234567","template":{"id":"x"}}`, true, js, 400, 4001},
		{"unsupported language", engagelabtest.Send, `{"to":"+6591234567","template":{"id":"vigil-otp","language":"de"}}`, true, js, 400, 3002},
		{"bad number", engagelabtest.Send, `{"to":"12","template":{"id":"vigil-otp"}}`, true, js, 400, 5011},
		{"documented send", engagelabtest.Send, send, true, js, 200, 0},
		{"verify unknown", engagelabtest.Verify, `{"message_id":"1","verify_code":"667090"}`, true, js, 400, 3003},
		{"verify without code", engagelabtest.Verify, `{"message_id":"1"}`, true, js, 400, 3002},
		{"unknown path", "/v2/messages", send, true, js, 404, 3002},
	}
	for _, tt := range tests {
		status, out := call(t, srv, tt.path, tt.body, tt.auth, tt.ctype)
		require.Equal(t, tt.wantStatus, status, tt.name)
		if tt.wantCode != 0 {
			require.InDelta(t, tt.wantCode, out["code"], 0, tt.name)
			require.IsType(t, "", out["message"], tt.name)
			continue
		}
		require.Regexp(t, `^\d{19}$`, out["message_id"], tt.name)
		require.Equal(t, "sms", out["send_channel"], tt.name)
	}

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, map[string]string{"key1": "value1"}, m.Params)
	require.Regexp(t, `^\d{6}$`, m.Code)

	verify := func(code string) (int, map[string]any) {
		return call(t, srv, engagelabtest.Verify, `{"message_id":"`+m.ID+`","verify_code":"`+code+`"}`, true, js)
	}
	wrong := "000000"
	if m.Code == wrong {
		wrong = "111111"
	}
	status, out := verify(wrong)
	require.Equal(t, 200, status)
	require.Equal(t, map[string]any{"message_id": m.ID, "verify_code": wrong, "verified": false}, out)
	status, out = verify(m.Code)
	require.Equal(t, 200, status)
	require.Equal(t, true, out["verified"])
	status, out = verify(m.Code)
	require.Equal(t, 400, status)
	require.InDelta(t, 3003, out["code"], 0)
	require.Len(t, srv.Requests(), len(tests)+3)
}

func TestFailQueue(t *testing.T) {
	t.Parallel()
	srv := engagelabtest.Start(t)
	srv.Fail(engagelabtest.Send, engagelabtest.Failure{Status: 503, Code: 1000, Message: "down"})
	srv.Fail(engagelabtest.Send, engagelabtest.Failure{Status: 202, Body: `{"message_id":"x"}`})
	body := `{"to":"+6591234567","template":{"id":"vigil-otp"}}`

	status, out := call(t, srv, engagelabtest.Send, body, true, "application/json")
	require.Equal(t, 503, status)
	require.Equal(t, map[string]any{"code": float64(1000), "message": "down"}, out)
	status, out = call(t, srv, engagelabtest.Send, body, true, "application/json")
	require.Equal(t, 202, status)
	require.Equal(t, map[string]any{"message_id": "x"}, out)
	status, _ = call(t, srv, engagelabtest.Send, body, true, "application/json")
	require.Equal(t, 200, status, "the queue is used up")
	require.Len(t, srv.Messages(), 1)
}

func TestDelayEndsWithTheClient(t *testing.T) {
	t.Parallel()
	srv := engagelabtest.Start(t)
	srv.Fail(engagelabtest.Verify, engagelabtest.Failure{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+engagelabtest.Verify, strings.NewReader(`{}`))
	require.NoError(t, err)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
}
