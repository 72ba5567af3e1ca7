package kratostest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// Response is one HTTP answer from Kratos.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test when it is not
// one.
func (r *Response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	return decodeObject(tb, r.Body)
}

// Do sends one request to Kratos and reads the whole answer. target is
// absolute (k.PublicURL or k.AdminURL plus a path); a non-nil body is sent
// as JSON. Content-Type and Accept are application/json unless header sets
// them. A failed request fails the test; any HTTP status is returned.
func (k *Kratos) Do(tb testing.TB, method, target string, body any, header http.Header) *Response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatalf("kratostest: encode %s %s: %v", method, target, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, rd)
	if err != nil {
		tb.Fatalf("kratostest: %s %s: %v", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, values := range header {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	resp, err := k.client.Do(req)
	if err != nil {
		tb.Fatalf("kratostest: %s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("kratostest: %s %s: read answer: %v", method, target, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// RegistrationFlow creates a native (API) registration flow and returns
// its id.
func (k *Kratos) RegistrationFlow(tb testing.TB) string {
	tb.Helper()
	return k.createFlow(tb, "/self-service/registration/api")
}

// SubmitRegistration submits the password method to a registration flow.
// transient may be nil.
func (k *Kratos) SubmitRegistration(tb testing.TB, flowID string, traits map[string]any, password string, transient map[string]any) *Response {
	tb.Helper()
	body := map[string]any{"method": "password", "password": password, "traits": traits}
	if transient != nil {
		body["transient_payload"] = transient
	}
	return k.Do(tb, http.MethodPost, k.PublicURL+"/self-service/registration?flow="+url.QueryEscape(flowID), body, nil)
}

// Register runs a whole native registration with the password method.
// identityID is the new identity's id when Kratos answered 200 and ""
// otherwise (a hook may veto a registration); resp is Kratos' answer
// either way. With the session hook the answer carries a session_token.
func (k *Kratos) Register(tb testing.TB, traits map[string]any, password string, transient map[string]any) (identityID string, resp *Response) {
	tb.Helper()
	resp = k.SubmitRegistration(tb, k.RegistrationFlow(tb), traits, password, transient)
	if resp.Status != http.StatusOK {
		return "", resp
	}
	var v struct {
		Identity struct {
			ID string `json:"id"`
		} `json:"identity"`
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil || v.Identity.ID == "" {
		tb.Fatalf("kratostest: registration answered 200 without identity.id: %v\n%s", err, resp.Body)
	}
	return v.Identity.ID, resp
}

// LoginFlow creates a native (API) login flow and returns its id. A test
// can submit the same flow again after a hook blocked it.
func (k *Kratos) LoginFlow(tb testing.TB) string {
	tb.Helper()
	return k.createFlow(tb, "/self-service/login/api")
}

// SubmitLogin submits the password method to a login flow and returns
// Kratos' status and body: 200 with session_token and session when every
// hook allowed the login, 400 with the flow (and its ui.messages) when one
// blocked it. transient may be nil.
func (k *Kratos) SubmitLogin(tb testing.TB, flowID, identifier, password string, transient map[string]any) (status int, body []byte) {
	tb.Helper()
	req := map[string]any{"method": "password", "identifier": identifier, "password": password}
	if transient != nil {
		req["transient_payload"] = transient
	}
	resp := k.Do(tb, http.MethodPost, k.PublicURL+"/self-service/login?flow="+url.QueryEscape(flowID), req, nil)
	return resp.Status, resp.Body
}

// Login runs a whole native login with the password method in a new flow.
func (k *Kratos) Login(tb testing.TB, identifier, password string, transient map[string]any) (status int, body []byte) {
	tb.Helper()
	return k.SubmitLogin(tb, k.LoginFlow(tb), identifier, password, transient)
}

// Identity returns the identity as the admin API shows it (GET
// /admin/identities/{id}), failing the test unless Kratos answers 200.
func (k *Kratos) Identity(tb testing.TB, id string) map[string]any {
	tb.Helper()
	resp := k.Do(tb, http.MethodGet, k.AdminURL+"/admin/identities/"+url.PathEscape(id), nil, nil)
	if resp.Status != http.StatusOK {
		tb.Fatalf("kratostest: get identity %s: HTTP %d\n%s", id, resp.Status, resp.Body)
	}
	return resp.JSON(tb)
}

// SessionToken returns the session_token of a successful native login or
// registration answer, failing the test when there is none.
func SessionToken(tb testing.TB, body []byte) string {
	tb.Helper()
	token, _ := decodeObject(tb, body)["session_token"].(string)
	if token == "" {
		tb.Fatalf("kratostest: no session_token in answer:\n%s", body)
	}
	return token
}

func (k *Kratos) createFlow(tb testing.TB, path string) string {
	tb.Helper()
	resp := k.Do(tb, http.MethodGet, k.PublicURL+path, nil, nil)
	if resp.Status != http.StatusOK {
		tb.Fatalf("kratostest: GET %s: HTTP %d\n%s", path, resp.Status, resp.Body)
	}
	id, _ := resp.JSON(tb)["id"].(string)
	if id == "" {
		tb.Fatalf("kratostest: GET %s: no flow id\n%s", path, resp.Body)
	}
	return id
}

func decodeObject(tb testing.TB, body []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		tb.Fatalf("kratostest: answer is not a JSON object: %v\n%s", err, body)
	}
	return m
}

// SessionTokenOrEmpty returns the session_token of an answer, or "" when
// there is none (a refused login, an error page).
func SessionTokenOrEmpty(body []byte) string {
	var m struct {
		Token string `json:"session_token"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	return m.Token
}
