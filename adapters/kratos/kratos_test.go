package kratos_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/kratos"
)

const (
	identityID   = "5ca948b6-2664-4c3d-bfa9-4609f3f98ada"
	sessionID    = "20bf4f41-f0a2-4406-8d45-3e98385dc1f1"
	sessionToken = "ory_st_HBjbcJmE4r1Rmy5UoqCIHRNkkFa8glfI"
)

// fakeKratos speaks the part of Kratos' admin and public API the adapter
// uses, with bodies captured from Kratos v26.2.0 (testdata/). It applies
// add and replace patches like Kratos and refuses every other operation.
type fakeKratos struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	identities map[string]map[string]any
	patches    []string      // raw PATCH bodies
	requests   []http.Header // headers of every request
	// fail, when set, answers a request instead of the fake's logic
	// ("GET" or "PATCH" or "WHOAMI").
	fail  map[string]func(w http.ResponseWriter)
	delay time.Duration

	// Answers from testdata, read before the server starts.
	session, unauthorized, notFound, badPatch []byte
}

func newFake(t *testing.T) *fakeKratos {
	t.Helper()
	f := &fakeKratos{
		t: t, identities: map[string]map[string]any{}, fail: map[string]func(http.ResponseWriter){},
		session:      readFile(t, "testdata/session.json"),
		unauthorized: readFile(t, "testdata/error_401.json"),
		notFound:     readFile(t, "testdata/error_404.json"),
		badPatch:     readFile(t, "testdata/error_400_patch.json"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/identities/{id}", f.getIdentity)
	mux.HandleFunc("PATCH /admin/identities/{id}", f.patchIdentity)
	mux.HandleFunc("GET /sessions/whoami", f.whoami)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Header.Clone())
		delay := f.delay
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// addIdentity stores testdata/identity.json after edit changed it.
func (f *fakeKratos) addIdentity(edit func(id map[string]any)) {
	f.t.Helper()
	var id map[string]any
	require.NoError(f.t, json.Unmarshal(readFile(f.t, "testdata/identity.json"), &id))
	if edit != nil {
		edit(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identities[identityID] = id
}

func (f *fakeKratos) identity(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.identities[id])
	require.NoError(f.t, err)
	var out map[string]any
	require.NoError(f.t, json.Unmarshal(b, &out))
	return out
}

func (f *fakeKratos) patchBodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.patches...)
}

func (f *fakeKratos) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeKratos) failed(key string, w http.ResponseWriter) bool {
	f.mu.Lock()
	fn := f.fail[key]
	f.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(w)
	return true
}

func (f *fakeKratos) getIdentity(w http.ResponseWriter, r *http.Request) {
	if f.failed("GET", w) {
		return
	}
	f.mu.Lock()
	id, ok := f.identities[r.PathValue("id")]
	b, err := json.Marshal(id)
	f.mu.Unlock()
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, f.notFound)
	case err != nil:
		f.t.Errorf("fake: %v", err)
		writeError(http.StatusInternalServerError)(w)
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

func (f *fakeKratos) patchIdentity(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("fake: PATCH: %v, Content-Type %q", err, r.Header.Get("Content-Type"))
		writeError(http.StatusInternalServerError)(w)
		return
	}
	f.mu.Lock()
	f.patches = append(f.patches, string(body))
	f.mu.Unlock()
	if f.failed("PATCH", w) {
		return
	}

	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &ops); err != nil {
		f.t.Errorf("fake: PATCH body: %v", err)
		writeError(http.StatusBadRequest)(w)
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.identities[r.PathValue("id")]
	if !ok {
		writeJSON(w, http.StatusNotFound, f.notFound)
		return
	}
	for _, op := range ops {
		var v any
		if op.Op != "add" && op.Op != "replace" {
			writeJSON(w, http.StatusBadRequest, f.badPatch)
			return
		}
		if err := json.Unmarshal(op.Value, &v); err != nil || !setPointer(id, op.Path, v) {
			writeError(http.StatusBadRequest)(w)
			return
		}
	}
	// Kratos sets verified_at for a newly verified address.
	list, _ := id["verifiable_addresses"].([]any)
	for _, a := range list {
		if a, _ := a.(map[string]any); a["verified"] == true && a["verified_at"] == nil {
			a["verified_at"] = "2026-11-22T04:00:00Z"
		}
	}
	b, err := json.Marshal(id)
	if err != nil {
		f.t.Errorf("fake: %v", err)
	}
	writeJSON(w, http.StatusOK, b)
}

func (f *fakeKratos) whoami(w http.ResponseWriter, r *http.Request) {
	if f.failed("WHOAMI", w) {
		return
	}
	valid := r.Header.Get("X-Session-Token") == sessionToken ||
		r.Header.Get("Authorization") == "Bearer "+sessionToken
	if c, err := r.Cookie("ory_kratos_session"); err == nil && c.Value == sessionToken {
		valid = true
	}
	if !valid {
		writeJSON(w, http.StatusUnauthorized, f.unauthorized)
		return
	}
	writeJSON(w, http.StatusOK, f.session)
}

// setPointer does a JSON Patch add or replace at an existing parent.
func setPointer(doc map[string]any, pointer string, v any) bool {
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	var parent any = doc
	for _, p := range parts[:len(parts)-1] {
		switch c := parent.(type) {
		case map[string]any:
			parent = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return false
			}
			parent = c[i]
		default:
			return false
		}
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(c) {
			return false
		}
		c[i] = v
	default:
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(status int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		writeJSON(w, status, []byte(`{"error":{"code":`+strconv.Itoa(status)+`,"status":"`+http.StatusText(status)+`","message":"alice@example.com is not valid","reason":"alice@example.com is mentioned here"}}`))
	}
}

// object and addressAt fail the test instead of panicking on a shape the
// test did not expect.
func object(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "not a JSON object: %v", v)
	return m
}

func addressAt(t *testing.T, id map[string]any, i int) map[string]any {
	t.Helper()
	list, ok := id["verifiable_addresses"].([]any)
	require.True(t, ok)
	require.Less(t, i, len(list))
	return object(t, list[i])
}

// fixtureAddress is address i of testdata/identity.json, for editing it.
func fixtureAddress(id map[string]any, i int) map[string]any {
	list, _ := id["verifiable_addresses"].([]any)
	a, _ := list[i].(map[string]any)
	return a
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func newClient(t *testing.T, f *fakeKratos, timeout time.Duration) *kratos.Client {
	t.Helper()
	c, err := kratos.New(kratos.Config{AdminURL: f.srv.URL + "/", PublicURL: f.srv.URL, Timeout: timeout})
	require.NoError(t, err)
	return c
}

var verifiedAt = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

var smsSummary = vigil.VerificationSummary{Verified: true, VerifiedAt: &verifiedAt, Channels: []vigil.Channel{vigil.ChannelSMS}}

const smsSummaryJSON = `{"verified":true,"verified_at":"2026-11-22T04:00:00Z","verified_channels":["sms"]}`

func TestMarkVerified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(id map[string]any)
		ch      vigil.Channel
		value   string
		summary vigil.VerificationSummary
		// wantPatch is the exact JSON Patch sent.
		wantPatch string
		// wantIndex is the address that ends verified.
		wantIndex int
	}{
		{
			name:    "sms second, metadata_public null",
			ch:      vigil.ChannelSMS,
			value:   "+4915123456789",
			summary: smsSummary,
			wantPatch: `[
				{"op":"replace","path":"/verifiable_addresses/1/verified","value":true},
				{"op":"replace","path":"/verifiable_addresses/1/status","value":"completed"},
				{"op":"add","path":"/metadata_public","value":{"vigil":` + smsSummaryJSON + `}}]`,
			wantIndex: 1,
		},
		{
			name:    "email compared case-insensitively, other metadata kept",
			edit:    func(id map[string]any) { id["metadata_public"] = map[string]any{"plan": "pro"} },
			ch:      vigil.ChannelEmail,
			value:   "Alice@EXAMPLE.com",
			summary: vigil.VerificationSummary{Verified: true, VerifiedAt: &verifiedAt, Channels: []vigil.Channel{vigil.ChannelEmail}},
			wantPatch: `[
				{"op":"replace","path":"/verifiable_addresses/0/verified","value":true},
				{"op":"replace","path":"/verifiable_addresses/0/status","value":"completed"},
				{"op":"add","path":"/metadata_public/vigil","value":{"verified":true,"verified_at":"2026-11-22T04:00:00Z","verified_channels":["email"]}}]`,
			wantIndex: 0,
		},
		{
			name: "already verified: metadata only",
			edit: func(id map[string]any) {
				a := fixtureAddress(id, 1)
				a["verified"], a["status"], a["verified_at"] = true, "completed", "2026-11-21T00:00:00Z"
				id["metadata_public"] = map[string]any{"vigil": map[string]any{"verified": false}}
			},
			ch:        vigil.ChannelSMS,
			value:     "+4915123456789",
			summary:   smsSummary,
			wantPatch: `[{"op":"replace","path":"/metadata_public/vigil","value":` + smsSummaryJSON + `}]`,
			wantIndex: 1,
		},
		{
			name: "phone stored with spaces (Kratos only trims phone traits)",
			edit: func(id map[string]any) {
				fixtureAddress(id, 1)["value"] = "+49 151 23456789"
			},
			ch:      vigil.ChannelSMS,
			value:   "+4915123456789",
			summary: smsSummary,
			wantPatch: `[
				{"op":"replace","path":"/verifiable_addresses/1/verified","value":true},
				{"op":"replace","path":"/verifiable_addresses/1/status","value":"completed"},
				{"op":"add","path":"/metadata_public","value":{"vigil":` + smsSummaryJSON + `}}]`,
			wantIndex: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.addIdentity(tt.edit)
			c := newClient(t, f, 0)

			require.NoError(t, c.MarkVerified(t.Context(), identityID, tt.ch, tt.value, tt.summary))

			patches := f.patchBodies()
			require.Len(t, patches, 1)
			require.JSONEq(t, tt.wantPatch, patches[0])
			id := f.identity(identityID)
			a := addressAt(t, id, tt.wantIndex)
			require.Equal(t, true, a["verified"])
			require.Equal(t, "completed", a["status"])
			got, err := json.Marshal(object(t, id["metadata_public"])["vigil"])
			require.NoError(t, err)
			want, err := json.Marshal(tt.summary)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(got))
		})
	}
}

func TestMarkVerifiedTwice(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.addIdentity(nil)
	c := newClient(t, f, 0)

	for range 2 {
		require.NoError(t, c.MarkVerified(t.Context(), identityID, vigil.ChannelSMS, "+4915123456789", smsSummary))
	}

	patches := f.patchBodies()
	require.Len(t, patches, 2)
	require.JSONEq(t, `[{"op":"replace","path":"/metadata_public/vigil","value":`+smsSummaryJSON+`}]`, patches[1])
	id := f.identity(identityID)
	require.Equal(t, map[string]any{"vigil": map[string]any{
		"verified": true, "verified_at": "2026-11-22T04:00:00Z", "verified_channels": []any{"sms"},
	}}, id["metadata_public"])
	require.Equal(t, false, addressAt(t, id, 0)["verified"], "the other address is untouched")
}

func TestMarkVerifiedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		id    string
		ch    vigil.Channel
		value string
		edit  func(id map[string]any)
		fail  map[string]func(http.ResponseWriter)
		// Exactly one of these holds for the error.
		wantNotFound  bool
		wantPermanent bool
		// wantPatch reports whether a PATCH was sent.
		wantPatch bool
	}{
		{name: "missing identity", id: "9e1e6a52-0000-4000-8000-000000000000", ch: vigil.ChannelSMS, value: "+4915123456789", wantNotFound: true},
		{name: "empty identity id", id: "", ch: vigil.ChannelSMS, value: "+4915123456789", wantNotFound: true},
		{name: "missing address", id: identityID, ch: vigil.ChannelSMS, value: "+4915100000000", wantNotFound: true},
		{name: "value of the other channel", id: identityID, ch: vigil.ChannelSMS, value: "alice@example.com", wantNotFound: true},
		{name: "empty value", id: identityID, ch: vigil.ChannelSMS, value: "", wantNotFound: true},
		{name: "unknown channel", id: identityID, ch: "push", value: "x", wantPermanent: true},
		{
			name: "identity deleted before the patch", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"PATCH": writeError(http.StatusNotFound)}, wantNotFound: true, wantPatch: true,
		},
		{
			name: "GET 500 is retryable", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"GET": writeError(http.StatusInternalServerError)},
		},
		{
			name: "GET 502 without JSON is retryable", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"GET": func(w http.ResponseWriter) {
				http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			}},
		},
		{
			name: "PATCH 500 is retryable", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"PATCH": writeError(http.StatusInternalServerError)}, wantPatch: true,
		},
		{
			name: "PATCH 429 is retryable", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"PATCH": writeError(http.StatusTooManyRequests)}, wantPatch: true,
		},
		{
			name: "PATCH 400 is permanent", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"PATCH": writeError(http.StatusBadRequest)}, wantPermanent: true, wantPatch: true,
		},
		{
			name: "GET 401 is permanent", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"GET": writeError(http.StatusUnauthorized)}, wantPermanent: true,
		},
		{
			name: "GET 302 is permanent (redirects are not followed)", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			fail: map[string]func(http.ResponseWriter){"GET": func(w http.ResponseWriter) {
				w.Header().Set("Location", "https://elsewhere.example/")
				w.WriteHeader(http.StatusFound)
			}},
			wantPermanent: true,
		},
		{
			name: "metadata_public not an object is permanent", id: identityID, ch: vigil.ChannelSMS, value: "+4915123456789",
			edit: func(id map[string]any) { id["metadata_public"] = []any{"x"} }, wantPermanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.addIdentity(tt.edit)
			maps.Copy(f.fail, tt.fail)
			c := newClient(t, f, 0)

			err := c.MarkVerified(t.Context(), tt.id, tt.ch, tt.value, smsSummary)

			require.Error(t, err)
			require.Equal(t, tt.wantNotFound, errors.Is(err, vigil.ErrNotFound), "not found: %v", err)
			require.Equal(t, tt.wantPermanent, vigil.IsPermanent(err), "permanent: %v", err)
			require.NotContains(t, err.Error(), "alice@example.com", "Kratos' message and reason may quote addresses; they stay out of errors")
			require.Equal(t, tt.wantPatch, len(f.patchBodies()) > 0)
		})
	}
}

func TestErrorNamesKratosErrorID(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.addIdentity(nil)
	f.fail["PATCH"] = func(w http.ResponseWriter) {
		writeJSON(w, http.StatusConflict, []byte(`{"error":{"id":"some_kratos_error","code":409,"status":"Conflict","message":"+4915123456789 is taken"}}`))
	}
	err := newClient(t, f, 0).SetSummary(t.Context(), identityID, smsSummary)
	require.True(t, vigil.IsPermanent(err))
	require.EqualError(t, err, "permanent: kratos: patch identity "+identityID+": HTTP 409 (some_kratos_error)")
}

func TestSetSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		edit      func(id map[string]any)
		wantPatch string
	}{
		{
			name:      "metadata_public null",
			wantPatch: `[{"op":"add","path":"/metadata_public","value":{"vigil":{"verified":false,"verified_channels":null}}}]`,
		},
		{
			name:      "metadata_public without vigil",
			edit:      func(id map[string]any) { id["metadata_public"] = map[string]any{} },
			wantPatch: `[{"op":"add","path":"/metadata_public/vigil","value":{"verified":false,"verified_channels":null}}]`,
		},
		{
			name: "metadata_public with vigil",
			edit: func(id map[string]any) {
				id["metadata_public"] = map[string]any{"vigil": map[string]any{"verified": true}}
			},
			wantPatch: `[{"op":"replace","path":"/metadata_public/vigil","value":{"verified":false,"verified_channels":null}}]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.addIdentity(tt.edit)
			c := newClient(t, f, 0)

			require.NoError(t, c.SetSummary(t.Context(), identityID, vigil.VerificationSummary{}))

			patches := f.patchBodies()
			require.Len(t, patches, 1)
			require.JSONEq(t, tt.wantPatch, patches[0])
			id := f.identity(identityID)
			require.Equal(t, false, addressAt(t, id, 0)["verified"])
			require.Equal(t, false, addressAt(t, id, 1)["verified"])
		})
	}

	t.Run("missing identity", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		err := newClient(t, f, 0).SetSummary(t.Context(), identityID, vigil.VerificationSummary{})
		require.ErrorIs(t, err, vigil.ErrNotFound)
		require.Empty(t, f.patchBodies())
	})
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		creds    vigil.SessionCredentials
		fail     func(http.ResponseWriter)
		wantCode string // "" for success
		// wantHeader must have been sent, when set.
		wantHeader, wantValue string
	}{
		{
			name: "session token", creds: vigil.SessionCredentials{SessionToken: sessionToken},
			wantHeader: "X-Session-Token", wantValue: sessionToken,
		},
		{
			name: "cookie", creds: vigil.SessionCredentials{Cookie: "theme=dark; ory_kratos_session=" + sessionToken},
			wantHeader: "Cookie", wantValue: "theme=dark; ory_kratos_session=" + sessionToken,
		},
		{
			name: "authorization", creds: vigil.SessionCredentials{Authorization: "Bearer " + sessionToken},
			wantHeader: "Authorization", wantValue: "Bearer " + sessionToken,
		},
		{name: "unknown token is 401", creds: vigil.SessionCredentials{SessionToken: "ory_st_nope"}, wantCode: vigil.EUNAUTHORIZED},
		{
			name: "403 (aal2 required)", creds: vigil.SessionCredentials{SessionToken: sessionToken}, wantCode: vigil.EUNAUTHORIZED,
			fail: func(w http.ResponseWriter) {
				writeJSON(w, http.StatusForbidden, []byte(`{"error":{"id":"session_aal2_required","code":403,"status":"Forbidden","message":"Session does not fulfill the requested Authenticator Assurance Level"}}`))
			},
		},
		{
			name: "500 is an internal error", creds: vigil.SessionCredentials{SessionToken: sessionToken}, wantCode: vigil.EINTERNAL,
			fail: writeError(http.StatusInternalServerError),
		},
		{
			name: "404 (wrong URL) is an internal error", creds: vigil.SessionCredentials{SessionToken: sessionToken}, wantCode: vigil.EINTERNAL,
			fail: writeError(http.StatusNotFound),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.fail != nil {
				f.fail["WHOAMI"] = tt.fail
			}
			c := newClient(t, f, 0)

			s, err := c.Whoami(t.Context(), tt.creds)

			if tt.wantCode != "" {
				require.Error(t, err)
				require.Nil(t, s)
				require.Equal(t, tt.wantCode, vigil.ErrorCode(err), "%v", err)
				if tt.wantCode == vigil.EUNAUTHORIZED {
					require.Equal(t, "No valid session.", vigil.ErrorMessage(err))
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, sessionID, s.ID)
			require.Equal(t, identityID, s.IdentityID)
			require.NotNil(t, s.Identity)
			require.Equal(t, identityID, s.Identity.ID)
			require.True(t, s.Identity.Active)
			require.NotEmpty(t, s.Identity.Addresses, "the session's identity carries its verifiable addresses")
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Len(t, f.requests, 1)
			require.Equal(t, tt.wantValue, f.requests[0].Get(tt.wantHeader))
		})
	}

	t.Run("no credentials: no request", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		_, err := newClient(t, f, 0).Whoami(t.Context(), vigil.SessionCredentials{})
		require.Equal(t, vigil.EUNAUTHORIZED, vigil.ErrorCode(err))
		require.Zero(t, f.requestCount())
	})
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	slow := func(t *testing.T) *fakeKratos {
		t.Helper()
		f := newFake(t)
		f.addIdentity(nil)
		f.delay = 5 * time.Second
		return f
	}
	calls := map[string]func(ctx context.Context, c *kratos.Client) error{
		"MarkVerified": func(ctx context.Context, c *kratos.Client) error {
			return c.MarkVerified(ctx, identityID, vigil.ChannelSMS, "+4915123456789", smsSummary)
		},
		"SetSummary": func(ctx context.Context, c *kratos.Client) error {
			return c.SetSummary(ctx, identityID, smsSummary)
		},
		"Whoami": func(ctx context.Context, c *kratos.Client) error {
			_, err := c.Whoami(ctx, vigil.SessionCredentials{SessionToken: sessionToken})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name+"/Config.Timeout", func(t *testing.T) {
			t.Parallel()
			c := newClient(t, slow(t), 50*time.Millisecond)
			start := time.Now()
			err := call(t.Context(), c)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.False(t, vigil.IsPermanent(err), "a timeout is retryable")
			require.Equal(t, vigil.EINTERNAL, vigil.ErrorCode(err))
			require.Less(t, time.Since(start), 2*time.Second)
		})
		t.Run(name+"/ctx", func(t *testing.T) {
			t.Parallel()
			c := newClient(t, slow(t), time.Minute)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			err := call(ctx, c)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.False(t, vigil.IsPermanent(err))
		})
	}
}

func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.addIdentity(func(id map[string]any) {
		id["metadata_public"] = map[string]any{"blob": strings.Repeat("x", 2<<20)}
	})
	err := newClient(t, f, 0).SetSummary(t.Context(), identityID, smsSummary)
	require.ErrorContains(t, err, "larger than")
	require.Empty(t, f.patchBodies())
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  kratos.Config
		ok   bool
	}{
		{name: "ok", cfg: kratos.Config{AdminURL: "http://127.0.0.1:4434", PublicURL: "https://auth.example.com/.ory/"}, ok: true},
		{name: "no admin URL", cfg: kratos.Config{PublicURL: "http://127.0.0.1:4433"}},
		{name: "no public URL", cfg: kratos.Config{AdminURL: "http://127.0.0.1:4434"}},
		{name: "relative URL", cfg: kratos.Config{AdminURL: "127.0.0.1:4434", PublicURL: "http://127.0.0.1:4433"}},
		{name: "query", cfg: kratos.Config{AdminURL: "http://127.0.0.1:4434?x=1", PublicURL: "http://127.0.0.1:4433"}},
		{name: "negative timeout", cfg: kratos.Config{AdminURL: "http://127.0.0.1:4434", PublicURL: "http://127.0.0.1:4433", Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := kratos.New(tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, c)
				return
			}
			require.Error(t, err)
		})
	}
}

func TestHTTPClientIsUsed(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var used bool
	var mu sync.Mutex
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		used = true
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, err := kratos.New(kratos.Config{AdminURL: f.srv.URL, PublicURL: f.srv.URL, HTTPClient: hc})
	require.NoError(t, err)
	_, err = c.Whoami(t.Context(), vigil.SessionCredentials{SessionToken: sessionToken})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.True(t, used)
	_, same := hc.Transport.(roundTripFunc)
	require.True(t, same, "the caller's client is not modified")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
