package twilio_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/twilio"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

func newCallbacks(t testing.TB, token string) *twilio.Callbacks {
	t.Helper()
	c, err := twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: token})
	require.NoError(t, err)
	return c
}

// docsParams are the parameters of the worked example in Twilio's webhook
// security documentation (Auth Token 12345); sdkParams those of the tests
// of Twilio's Go library (client/request_validator_test.go).
var (
	docsParams = url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675310"},
		"Digits":  {"1234"},
		"From":    {"+14158675310"},
		"To":      {"+18005551212"},
	}
	sdkParams = url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
)

const docsURL = "https://mycompany.com/myapp.php?foo=1&bar=2"

func TestCheckSignatureKnownVectors(t *testing.T) {
	t.Parallel()
	c := newCallbacks(t, "12345")
	tests := []struct {
		name      string
		url       string
		params    url.Values
		signature string
		wantOK    bool
	}{
		{"docs example", docsURL, docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc=", true},
		{"sdk", docsURL, sdkParams, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true},
		// Twilio leaves the port out of https URLs before signing.
		{"https with port, signed without", "https://mycompany.com:1234/myapp.php?foo=1&bar=2", sdkParams, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true},
		// Or signed with the default port, which the libraries accept.
		{"https signed with :443", docsURL, sdkParams, "kvajT1Ptam85bY51eRf/AJRuM3w=", true},
		{"http signed with :80", "http://mycompany.com/myapp.php?foo=1&bar=2", sdkParams, "0ZXoZLH/DfblKGATFgpif+LLRf4=", true},
		{"http with port, signed with it", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", sdkParams, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", true},
		// Credentials in the URL are dropped before signing.
		{"credentials dropped", "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc=", true},
		{"tampered param", docsURL, withParam(docsParams, "Digits", "1235"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"added param", docsURL, withParam(docsParams, "Extra", ""), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"dropped param", docsURL, withoutParam(docsParams, "Caller"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"other path", "https://mycompany.com/other.php?foo=1&bar=2", docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"other query", "https://mycompany.com/myapp.php?foo=2&bar=2", docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"http instead of https", "http://mycompany.com/myapp.php?foo=1&bar=2", docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"one bit off", docsURL, docsParams, "HvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"non-canonical base64", docsURL, docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezd=", false},
		{"not base64", docsURL, docsParams, "not base64!", false},
		{"truncated", docsURL, docsParams, "GvWf1cFY", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := c.CheckSignature(tt.url, tt.params, tt.signature)
			if tt.wantOK {
				require.NoError(t, err)
				return
			}
			sigErr, ok := errors.AsType[*twilio.SignatureError](err)
			require.True(t, ok, "err = %v", err)
			require.False(t, sigErr.Missing)
		})
	}

	err := c.CheckSignature(docsURL, docsParams, "")
	sigErr, ok := errors.AsType[*twilio.SignatureError](err)
	require.True(t, ok)
	require.True(t, sigErr.Missing)

	wrong := newCallbacks(t, "54321")
	require.Error(t, wrong.CheckSignature(docsURL, docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc="))
}

func TestCheckSignatureSecondaryToken(t *testing.T) {
	t.Parallel()
	c, err := twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: "new-token", SecondaryAuthToken: "12345"})
	require.NoError(t, err)
	require.NoError(t, c.CheckSignature(docsURL, docsParams, "GvWf1cFY/Q7PnoempGyD5oXAezc="))
	require.NoError(t, c.CheckSignature(docsURL, docsParams, twiliotest.Sign("new-token", docsURL, docsParams)))
	require.Error(t, c.CheckSignature(docsURL, docsParams, twiliotest.Sign("old-token", docsURL, docsParams)))
}

// TestCheckSignatureRepeatedParams agrees with the fake on a parameter
// that appears twice (values sorted, as Twilio's Node library does).
func TestCheckSignatureRepeatedParams(t *testing.T) {
	t.Parallel()
	c := newCallbacks(t, "tok")
	params := url.Values{"MediaUrl": {"https://b.example/2", "https://a.example/1"}, "MessageSid": {"SM1"}}
	u := "https://vigil.example.com/twilio/status"
	require.NoError(t, c.CheckSignature(u, params, twiliotest.Sign("tok", u, params)))
}

func withParam(p url.Values, k, v string) url.Values {
	out := url.Values{}
	for key, vals := range p {
		out[key] = append([]string(nil), vals...)
	}
	out.Set(k, v)
	return out
}

func withoutParam(p url.Values, k string) url.Values {
	out := withParam(p, "x", "")
	out.Del("x")
	out.Del(k)
	return out
}

// statusHandler is a handler as api/ would write one: Parse, then answer
// 403, 400, 413 or 204.
type statusHandler struct {
	cb        *twilio.Callbacks
	publicURL string // "" means the URL the request reached
	mu        sync.Mutex
	updates   []vigil.StatusUpdate
}

func (h *statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	public := h.publicURL
	if public == "" {
		public = "http://" + r.Host + r.URL.Path
	}
	u, ok, err := h.cb.Parse(r, public)
	if _, bad := errors.AsType[*twilio.SignatureError](err); bad {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if _, big := errors.AsType[*http.MaxBytesError](err); big {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if ok {
		h.mu.Lock()
		h.updates = append(h.updates, u)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *statusHandler) got() []vigil.StatusUpdate {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]vigil.StatusUpdate(nil), h.updates...)
}

// TestStatusCallbackEndToEnd sends through the Sender, has the fake post
// Twilio's signed callbacks, and reads them with Parse.
func TestStatusCallbackEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		whatsapp  bool
		status    string
		errorCode int
		want      *vigil.StatusUpdate // nil: no news
	}{
		{name: "queued", status: "queued"},
		{name: "sending", status: "sending"},
		{name: "sent", status: "sent", want: &vigil.StatusUpdate{Status: vigil.MessageSent}},
		{name: "delivered", status: "delivered", want: &vigil.StatusUpdate{Status: vigil.MessageDelivered}},
		{name: "undelivered", status: "undelivered", errorCode: 30003, want: &vigil.StatusUpdate{Status: vigil.MessageUndelivered, ErrorCode: "30003"}},
		{name: "failed", status: "failed", errorCode: 30007, want: &vigil.StatusUpdate{Status: vigil.MessageFailed, ErrorCode: "30007"}},
		{name: "WhatsApp read", whatsapp: true, status: "read", want: &vigil.StatusUpdate{Status: vigil.MessageDelivered}},
		{name: "WhatsApp failed", whatsapp: true, status: "failed", errorCode: 63016, want: &vigil.StatusUpdate{Status: vigil.MessageFailed, ErrorCode: "63016"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			h := &statusHandler{cb: newCallbacks(t, tw.AuthToken)}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			s := newSender(t, tw, func(c *twilio.Config) {
				c.StatusCallback = srv.URL + "/twilio/status?tenant=a%2Fb"
				c.WhatsApp = tt.whatsapp
			})
			res, err := s.Send(t.Context(), outbound())
			require.NoError(t, err)

			status, err := tw.SendStatus(t.Context(), res.ProviderID, tt.status, tt.errorCode)
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, status)
			got := h.got()
			if tt.want == nil {
				require.Empty(t, got)
				return
			}
			want := *tt.want
			want.Provider, want.ProviderID = res.Provider, res.ProviderID
			require.Equal(t, []vigil.StatusUpdate{want}, got)
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	s := newSender(t, tw, func(c *twilio.Config) { c.StatusCallback = "https://vigil.example.com/twilio/status" })
	res, err := s.Send(t.Context(), outbound())
	require.NoError(t, err)
	params, err := tw.StatusParams(res.ProviderID, "delivered", 0)
	require.NoError(t, err)

	h := &statusHandler{cb: newCallbacks(t, tw.AuthToken), publicURL: "https://vigil.example.com/twilio/status"}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		cb         twiliotest.Callback
		wantStatus int
	}{
		{"signed for the public URL", twiliotest.Callback{SignURL: "https://vigil.example.com/twilio/status"}, http.StatusNoContent},
		{"signed for the public URL with :443", twiliotest.Callback{SignURL: "https://vigil.example.com:443/twilio/status"}, http.StatusNoContent},
		{"signed for the internal URL", twiliotest.Callback{}, http.StatusForbidden},
		{"wrong token", twiliotest.Callback{SignURL: "https://vigil.example.com/twilio/status", AuthToken: "nope"}, http.StatusForbidden},
		{"query not signed", twiliotest.Callback{URL: srv.URL + "/twilio/status?x=1", SignURL: "https://vigil.example.com/twilio/status"}, http.StatusForbidden},
		{"query signed", twiliotest.Callback{URL: srv.URL + "/twilio/status?x=1", SignURL: "https://vigil.example.com/twilio/status?x=1"}, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cb := tt.cb
			if cb.URL == "" {
				cb.URL = srv.URL + "/twilio/status"
			}
			if cb.AuthToken == "" {
				cb.AuthToken = tw.AuthToken
			}
			cb.Params = params
			status, err := twiliotest.Post(t.Context(), cb)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, status)
		})
	}

	sig := twiliotest.Sign(tw.AuthToken, "https://vigil.example.com/twilio/status", params)
	raw := []struct {
		name        string
		method      string
		body        string
		contentType string
		signature   string
		want        int
	}{
		{"tampered status", http.MethodPost, withParam(params, "MessageStatus", "failed").Encode(), "application/x-www-form-urlencoded", sig, http.StatusForbidden},
		{"no signature", http.MethodPost, params.Encode(), "application/x-www-form-urlencoded", "", http.StatusForbidden},
		{"GET", http.MethodGet, "", "", sig, http.StatusBadRequest},
		{"JSON", http.MethodPost, `{"MessageSid":"SM1"}`, "application/json", sig, http.StatusBadRequest},
		{"content type with charset", http.MethodPost, params.Encode(), "application/x-www-form-urlencoded; charset=utf-8", sig, http.StatusNoContent},
		{"not a form", http.MethodPost, "%zz", "application/x-www-form-urlencoded", sig, http.StatusBadRequest},
		{"too large", http.MethodPost, params.Encode() + "&Pad=" + strings.Repeat("x", twilio.DefaultMaxCallbackBody), "application/x-www-form-urlencoded", sig, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/twilio/status", strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.signature != "" {
				req.Header.Set("X-Twilio-Signature", tt.signature)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.want, resp.StatusCode)
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	const sid = "SM8d1e4b0c6f2a47e9b3c5d7f9a1e3c5b7"
	tests := []struct {
		name    string
		params  url.Values
		want    vigil.StatusUpdate
		wantOK  bool
		wantErr bool
	}{
		{name: "delivered", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageDelivered}},
		{name: "error code ignored when delivered", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"delivered"}, "ErrorCode": {"30003"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageDelivered}},
		{name: "partially delivered", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"partially_delivered"}, "ErrorCode": {"30008"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageUndelivered, ErrorCode: "30008"}},
		{name: "canceled", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"canceled"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageFailed}},
		{name: "older names", params: url.Values{"SmsSid": {sid}, "SmsStatus": {"SENT"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageSent}},
		{name: "bad error code dropped", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"failed"}, "ErrorCode": {"30003; drop table"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio", ProviderID: sid, Status: vigil.MessageFailed}},
		{name: "WhatsApp by prefix", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"read"}, "To": {"whatsapp:+4915123456780"}}, wantOK: true,
			want: vigil.StatusUpdate{Provider: "twilio_whatsapp", ProviderID: sid, Status: vigil.MessageDelivered}},
		{name: "accepted", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"accepted"}}},
		{name: "scheduled", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"scheduled"}}},
		{name: "received", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"received"}}},
		{name: "unknown", params: url.Values{"MessageSid": {sid}, "MessageStatus": {"teleported"}}},
		{name: "no sid", params: url.Values{"MessageStatus": {"delivered"}}, wantErr: true},
		{name: "bad sid", params: url.Values{"MessageSid": {"SM1<script>"}, "MessageStatus": {"delivered"}}, wantErr: true},
		{name: "no status", params: url.Values{"MessageSid": {sid}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := twilio.ParseStatus(tt.params)
			if tt.wantErr {
				require.Error(t, err)
				require.False(t, ok)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestNewCallbacks(t *testing.T) {
	t.Parallel()
	_, err := twilio.NewCallbacks(twilio.CallbackConfig{})
	require.ErrorContains(t, err, "AuthToken")
	_, err = twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: "t", MaxBody: -1})
	require.ErrorContains(t, err, "MaxBody")

	c, err := twilio.NewCallbacks(twilio.CallbackConfig{AuthToken: "t", MaxBody: 16})
	require.NoError(t, err)
	params := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "http://vigil.test/cb", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twiliotest.Sign("t", "http://vigil.test/cb", params))
	_, _, err = c.Parse(req, "http://vigil.test/cb")
	_, big := errors.AsType[*http.MaxBytesError](err)
	require.True(t, big, "err = %v", err)
}

// FuzzParse feeds Parse arbitrary bodies, signed and unsigned: it must not
// panic, must refuse what is unsigned, and whatever it accepts must be a
// well-formed update.
func FuzzParse(f *testing.F) {
	f.Add("MessageSid=SM8d1e4b0c6f2a47e9b3c5d7f9a1e3c5b7&MessageStatus=delivered", true, "")
	f.Add("SmsSid=SM1&SmsStatus=undelivered&ErrorCode=30003&To=whatsapp%3A%2B1555", true, "")
	f.Add("MessageSid=SM1&MessageStatus=failed&ErrorCode=%00", true, "x=1")
	f.Add("a=1&a=2&b=%zz", false, "")
	f.Add(";;&&==", true, "q=%3D")
	const token = "fuzz-token"
	c := newCallbacks(f, token)
	const public = "https://vigil.example.com/twilio/status"
	valid := map[vigil.MessageStatus]bool{
		vigil.MessageSent: true, vigil.MessageDelivered: true, vigil.MessageUndelivered: true, vigil.MessageFailed: true,
	}
	f.Fuzz(func(t *testing.T, body string, signed bool, query string) {
		target := "http://127.0.0.1/twilio/status"
		signURL := public
		if q, err := url.ParseQuery(query); err == nil && query != "" {
			target += "?" + q.Encode()
			signURL += "?" + q.Encode()
		}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		params, formErr := url.ParseQuery(body)
		if signed && formErr == nil {
			req.Header.Set("X-Twilio-Signature", twiliotest.Sign(token, signURL, params))
		}
		u, ok, err := c.Parse(req, public)
		_, sigErr := errors.AsType[*twilio.SignatureError](err)
		switch {
		case !signed || formErr != nil:
			require.Error(t, err)
			require.False(t, ok)
		case sigErr:
			t.Fatalf("a correctly signed body was refused: %v", err)
		}
		if !ok {
			require.Equal(t, vigil.StatusUpdate{}, u)
			return
		}
		require.NoError(t, err)
		require.True(t, valid[u.Status], "status %q", u.Status)
		require.Contains(t, []string{"twilio", "twilio_whatsapp"}, u.Provider)
		require.NotEmpty(t, u.ProviderID)
		require.LessOrEqual(t, len(u.ProviderID), 64)
		for _, r := range u.ProviderID + u.ErrorCode {
			require.True(t, r < 128 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'), "char %q", r)
		}
	})
}

// FuzzCheckSignature checks URLs of every shape: the URL as given always
// verifies, another token never does, and nothing panics.
func FuzzCheckSignature(f *testing.F) {
	f.Add("https://u:p@[::1]:8443/a?b=c#d", "SM1")
	f.Add("https://vigil.example.com:/status", "")
	f.Add("http://[::1/x", "v")
	f.Add("no scheme at all", "v")
	f.Add("HTTPS://Vigil.Example.COM/%7Euser?q=%zz", "v")
	const token = "fuzz-token"
	c := newCallbacks(f, token)
	f.Fuzz(func(t *testing.T, rawURL, value string) {
		params := url.Values{"MessageSid": {value}, "MessageStatus": {"delivered"}}
		require.NoError(t, c.CheckSignature(rawURL, params, twiliotest.Sign(token, rawURL, params)))
		require.Error(t, c.CheckSignature(rawURL, params, twiliotest.Sign("other-token", rawURL, params)))
	})
}
