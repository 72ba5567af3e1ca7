package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

const someID = "0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"

// jsonEndpoint is one endpoint that takes a JSON body, with a valid body
// and a field to send with the wrong type.
type jsonEndpoint struct {
	admin     bool
	path      string
	valid     string
	typeField string // field name, sent as a number
	accept    string
	// emptyOK: {} is a valid request (resend: the logged-in user's own
	// verifications).
	emptyOK bool
}

var jsonEndpoints = []jsonEndpoint{
	{path: "/self-service/verifications/" + someID + "/code", valid: `{"code":"123456"}`, typeField: "code"},
	{path: "/self-service/verifications/resend", valid: `{"address":"a@example.com"}`, typeField: "address", emptyOK: true},
	{path: "/self-service/verifications/link", valid: `{"token":"abc"}`, typeField: "token", accept: "application/json"},
	{admin: true, path: "/admin/verifications", valid: `{"identity_id":"` + someID + `","address":"a@example.com","channel":"email"}`, typeField: "identity_id"},
	{admin: true, path: "/admin/identities/" + someID + "/addresses/verify", valid: `{"address":"a@example.com","channel":"email"}`, typeField: "channel"},
}

type badInput struct {
	name        string
	body        string
	contentType string
	chunked     bool // hide the length so the limit trips while reading
	status      int
	code        string
	mentions    string
}

func badInputs(ep jsonEndpoint) []badInput {
	big := `{"x":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	empty := badInput{name: "empty object", body: `{}`, status: 400, code: vigil.EINVALID}
	if ep.emptyOK {
		empty = badInput{name: "channel without session mode", body: `{"id":"` + someID + `","channel":"sms"}`, status: 400, code: vigil.EINVALID}
	}
	return []badInput{
		empty,
		{name: "too large", body: big, status: 413, code: codeTooLarge},
		{name: "too large chunked", body: big, chunked: true, status: 413, code: codeTooLarge},
		{name: "text/plain", body: ep.valid, contentType: "text/plain", status: 415, code: codeUnsupportedMedia},
		{name: "no content type", body: ep.valid, contentType: "-", status: 415, code: codeUnsupportedMedia},
		{name: "bogus content type", body: ep.valid, contentType: "application/json; =", status: 415, code: codeUnsupportedMedia},
		{name: "empty body", body: "", contentType: "application/json", status: 400, code: codeMalformedJSON},
		{name: "truncated", body: ep.valid[:len(ep.valid)-3], status: 400, code: codeMalformedJSON},
		{name: "not json", body: "hello", status: 400, code: codeMalformedJSON},
		{name: "array", body: "[]", status: 400, code: codeMalformedJSON},
		{name: "string", body: `"x"`, status: 400, code: codeMalformedJSON},
		{name: "unknown field", body: ep.valid[:len(ep.valid)-1] + `,"extra":1}`, status: 400, code: codeUnknownField, mentions: "extra"},
		{name: "wrong type", body: `{"` + ep.typeField + `":42}`, status: 400, code: codeInvalidField, mentions: ep.typeField},
		{name: "wrong type object", body: `{"` + ep.typeField + `":{"a":1}}`, status: 400, code: codeInvalidField, mentions: ep.typeField},
		{name: "trailing object", body: ep.valid + ep.valid, status: 400, code: codeMalformedJSON},
		{name: "trailing garbage", body: ep.valid + " x", status: 400, code: codeMalformedJSON},
	}
}

// testBadInput runs every bad input against every JSON endpoint of s. With
// a nil engine it also proves decoding happens before the engine is asked.
func testBadInput(t *testing.T, s *Server, logs *logBuffer) {
	t.Helper()
	for _, ep := range jsonEndpoints {
		for _, tt := range badInputs(ep) {
			t.Run(ep.path+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length from httptest
				}
				r := httptest.NewRequest(http.MethodPost, ep.path, body)
				switch tt.contentType {
				case "":
					r.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					r.Header.Set("Content-Type", tt.contentType)
				}
				if ep.accept != "" {
					r.Header.Set("Accept", ep.accept)
				}
				h := s.Public()
				if ep.admin {
					h = s.Admin()
					r.Header.Set("Authorization", "Bearer "+testAdminKey)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				e := requireError(t, w, tt.status, tt.code)
				if tt.mentions != "" {
					require.Contains(t, e.Error.Message, tt.mentions)
				}
			})
		}
	}
	t.Cleanup(func() {
		require.NotContains(t, logs.String(), `"level":"ERROR"`, "client mistakes are not server errors")
	})
}

func TestBadInputIsolated(t *testing.T) {
	t.Parallel()
	s, logs := newServer(t, Config{}, nil)
	testBadInput(t, s, logs)
}

func newJSONRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func codeOf(err error) string {
	if e, ok := errors.AsType[*vigil.Error](err); ok {
		return e.Code
	}
	return "not a vigil error: " + err.Error()
}

func TestDecodeValidation(t *testing.T) {
	t.Parallel()
	decoders := map[string]func(*http.Request) error{
		"code":   func(r *http.Request) error { _, err := decodeCodeRequest(r); return err },
		"resend": func(r *http.Request) error { _, err := decodeResendRequest(r); return err },
		"start":  func(r *http.Request) error { _, err := decodeStartRequest(r); return err },
		"force":  func(r *http.Request) error { _, err := decodeForceVerifyRequest(r); return err },
	}
	tests := []struct {
		name, decoder, body, code string
	}{
		{name: "code ok", decoder: "code", body: `{"code":"123456"}`},
		{name: "code charset param ok", decoder: "code", body: `{"code":"1"}`},
		{name: "code empty", decoder: "code", body: `{"code":""}`, code: vigil.EINVALID},
		{name: "code blank", decoder: "code", body: `{"code":"   "}`, code: vigil.EINVALID},
		{name: "code null", decoder: "code", body: `null`, code: vigil.EINVALID},
		{name: "code too long", decoder: "code", body: `{"code":"` + strings.Repeat("1", 65) + `"}`, code: vigil.EINVALID},
		{name: "resend id", decoder: "resend", body: `{"id":"` + someID + `"}`},
		{name: "resend address", decoder: "resend", body: `{"address":"+4915112345678"}`},
		{name: "resend both", decoder: "resend", body: `{"id":"` + someID + `","address":"a@example.com"}`, code: vigil.EINVALID},
		{name: "resend neither is session mode", decoder: "resend", body: `{}`},
		{name: "resend empty strings is session mode", decoder: "resend", body: `{"id":"","address":""}`},
		{name: "resend both", decoder: "resend", body: `{"id":"` + someID + `","address":"a@example.com"}`, code: vigil.EINVALID},
		{name: "resend bad channel", decoder: "resend", body: `{"channel":"fax"}`, code: vigil.EINVALID},
		{name: "resend channel with address", decoder: "resend", body: `{"address":"a@example.com","channel":"email"}`, code: vigil.EINVALID},
		{name: "resend bad id", decoder: "resend", body: `{"id":"x"}`, code: vigil.EINVALID},
		{name: "resend blank address", decoder: "resend", body: `{"address":"  "}`, code: vigil.EINVALID},
		{name: "resend long address", decoder: "resend", body: `{"address":"` + strings.Repeat("a", 321) + `"}`, code: vigil.EINVALID},
		{name: "start ok default method", decoder: "start", body: `{"identity_id":"` + someID + `","address":"a@example.com","channel":"email"}`},
		{name: "start link", decoder: "start", body: `{"identity_id":"` + someID + `","address":"a@example.com","channel":"email","method":"link"}`},
		{name: "start bad identity", decoder: "start", body: `{"identity_id":"nope","address":"a@example.com","channel":"email"}`, code: vigil.EINVALID},
		{name: "start no identity", decoder: "start", body: `{"address":"a@example.com","channel":"email"}`, code: vigil.EINVALID},
		{name: "start bad channel", decoder: "start", body: `{"identity_id":"` + someID + `","address":"a@example.com","channel":"fax"}`, code: vigil.EINVALID},
		{name: "start no channel", decoder: "start", body: `{"identity_id":"` + someID + `","address":"a@example.com"}`, code: vigil.EINVALID},
		{name: "start bad method", decoder: "start", body: `{"identity_id":"` + someID + `","address":"a@example.com","channel":"email","method":"carrier-pigeon"}`, code: vigil.EINVALID},
		{name: "start no address", decoder: "start", body: `{"identity_id":"` + someID + `","channel":"email"}`, code: vigil.EINVALID},
		{name: "force ok", decoder: "force", body: `{"address":"a@example.com","channel":"sms"}`},
		{name: "force no channel", decoder: "force", body: `{"address":"a@example.com"}`, code: vigil.EINVALID},
		{name: "force no address", decoder: "force", body: `{"channel":"sms"}`, code: vigil.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newJSONRequest(tt.body)
			r.Header.Set("Content-Type", "application/json; charset=utf-8")
			err := decoders[tt.decoder](r)
			if tt.code == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, tt.code, codeOf(err))
		})
	}
}

func TestDecodeStartDefaultsMethod(t *testing.T) {
	t.Parallel()
	req, err := decodeStartRequest(newJSONRequest(`{"identity_id":"` + someID + `","address":"a@example.com","channel":"email"}`))
	require.NoError(t, err)
	require.Equal(t, vigil.MethodCode, req.Method)
}

func TestDecodeLinkRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ct, body, token, code string
	}{
		{name: "form", ct: "application/x-www-form-urlencoded", body: "token=abc_-1", token: "abc_-1"},
		{name: "form with charset", ct: "application/x-www-form-urlencoded; charset=UTF-8", body: "token=abc&other=1", token: "abc"},
		{name: "form escaped", ct: "application/x-www-form-urlencoded", body: "token=a%2Bb", token: "a+b"},
		{name: "json", ct: "application/json", body: `{"token":"abc"}`, token: "abc"},
		{name: "form twice", ct: "application/x-www-form-urlencoded", body: "token=a&token=b", code: vigil.EINVALID},
		{name: "form malformed", ct: "application/x-www-form-urlencoded", body: "token=%zz", code: vigil.EINVALID},
		{name: "form missing", ct: "application/x-www-form-urlencoded", body: "x=1", code: vigil.EINVALID},
		{name: "form empty", ct: "application/x-www-form-urlencoded", body: "", code: vigil.EINVALID},
		{name: "json unknown", ct: "application/json", body: `{"token":"a","x":1}`, code: codeUnknownField},
		{name: "multipart", ct: "multipart/form-data; boundary=x", body: "--x--", code: codeUnsupportedMedia},
		{name: "no type", ct: "", body: "token=abc", code: codeUnsupportedMedia},
		{name: "form huge", ct: "application/x-www-form-urlencoded", body: "token=" + strings.Repeat("a", maxBodyBytes), code: codeTooLarge},
		{name: "token too long", ct: "application/x-www-form-urlencoded", body: "token=" + strings.Repeat("a", maxTokenLen+1), code: vigil.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/self-service/verifications/link?token=fromquery", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			token, err := decodeLinkRequest(r)
			if tt.code != "" {
				require.Equal(t, tt.code, codeOf(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.token, token, "the token comes from the body, never the query")
		})
	}
}

// A form post that goes wrong gets a page, not JSON, with the status from
// the table.
func TestLinkPostErrorsArePagesForForms(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	w := do(t, s.Public(), req{method: http.MethodPost, path: "/self-service/verifications/link", contentType: "application/x-www-form-urlencoded", body: "nothing=1", headers: map[string]string{"Accept": "text/html"}})
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	require.Equal(t, "no-referrer", w.Header().Get("Referrer-Policy"))
	require.Contains(t, w.Body.String(), "not valid")
}

// GET without a usable token never asks the engine: a not-valid page.
func TestLinkPeekWithoutToken(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, Config{}, nil)
	for _, p := range []string{"/self-service/verifications/link", "/self-service/verifications/link?token=", "/self-service/verifications/link?token=" + strings.Repeat("a", maxTokenLen+1)} {
		w := do(t, s.Public(), req{method: http.MethodGet, path: p})
		require.Equal(t, http.StatusNotFound, w.Code)
		require.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
		require.Contains(t, w.Body.String(), "This link is not valid")
		require.Equal(t, "DENY", w.Header().Get("X-Frame-Options"))
		w = do(t, s.Public(), req{method: http.MethodHead, path: p})
		require.Equal(t, http.StatusNotFound, w.Code)
		require.Empty(t, w.Body.String())
		require.NotEmpty(t, w.Header().Get("Content-Length"))
	}
}
