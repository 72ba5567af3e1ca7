package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

// formCallback reads a Twilio-shaped report signed, for the test, by an
// X-Test-Signature header that must say "ok".
func formCallback(r *http.Request) (vigil.StatusUpdate, bool, error) {
	if r.Header.Get("X-Test-Signature") != "ok" {
		return vigil.StatusUpdate{}, false, vigil.Errorf(vigil.EUNAUTHORIZED, "Missing or wrong signature.")
	}
	if err := r.ParseForm(); err != nil {
		return vigil.StatusUpdate{}, false, vigil.Errorf(vigil.EINVALID, "Malformed form.")
	}
	u := vigil.StatusUpdate{Provider: "recording", ProviderID: r.PostForm.Get("MessageSid"), ErrorCode: r.PostForm.Get("ErrorCode")}
	switch r.PostForm.Get("MessageStatus") {
	case "delivered":
		u.Status = vigil.MessageDelivered
	case "undelivered":
		u.Status = vigil.MessageUndelivered
	case "queued", "sending":
		return u, false, nil
	default:
		return u, false, vigil.Errorf(vigil.EINVALID, "Unknown status.")
	}
	return u, true, nil
}

func TestStatusCallback(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(_ *flows.Config, _ *flows.Deps, c *Config) {
		c.Callbacks = map[string]StatusCallback{"recording": formCallback}
	})
	identity := "0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"
	b.start(t, identity, "+4915123456789", vigil.ChannelSMS, vigil.MethodCode)
	b.deliver(t, identity)
	messages := func() []flows.MessageView {
		w := b.admin(t, http.MethodGet, "/admin/messages?identity_id="+identity, "")
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		return decode[messagesResponse](t, w).Messages
	}
	m := messages()[0]
	require.Equal(t, vigil.MessageSent, m.Status)
	require.Equal(t, "DE", m.Country)
	require.Equal(t, "recording", m.Provider)
	sid := b.sms.last(t).ID // recordingSender answers with the message id as provider id

	post := func(provider, sig string, form url.Values) int {
		t.Helper()
		w := do(t, b.srv.Public(), req{method: http.MethodPost, path: "/callbacks/" + provider + "/status", body: form.Encode(),
			contentType: "application/x-www-form-urlencoded", headers: map[string]string{"X-Test-Signature": sig}})
		return w.Code
	}
	report := func(status string) url.Values {
		return url.Values{"MessageSid": {sid}, "MessageStatus": {status}}
	}
	require.Equal(t, http.StatusNotFound, post("nope", "ok", report("delivered")))
	require.Equal(t, http.StatusUnauthorized, post("recording", "bad", report("delivered")))
	require.Equal(t, vigil.MessageSent, messages()[0].Status, "an unsigned report changes nothing")
	require.Equal(t, http.StatusBadRequest, post("recording", "ok", report("exploded")))
	require.Equal(t, http.StatusNoContent, post("recording", "ok", report("sending")))
	require.Equal(t, http.StatusNoContent, post("recording", "ok", report("delivered")))
	require.Equal(t, vigil.MessageDelivered, messages()[0].Status)
	require.Equal(t, http.StatusNoContent, post("recording", "ok", report("undelivered")))
	require.Equal(t, vigil.MessageDelivered, messages()[0].Status, "never backwards, never off a final status")
	require.Equal(t, http.StatusNoContent, post("recording", "ok", url.Values{"MessageSid": {"SMunknown"}, "MessageStatus": {"delivered"}}))

	w := do(t, b.srv.Admin(), req{method: http.MethodGet, path: "/metrics"})
	require.Contains(t, w.Body.String(), `vigil_deliveries_total{channel="sms",country="DE",provider="recording",status="delivered"} 1`)
	require.Contains(t, w.Body.String(), `vigil_deliveries_total{channel="sms",country="DE",provider="recording",status="sent"} 1`)
}

// captchaStub accepts one token.
type captchaStub struct{}

func (captchaStub) Verify(_ context.Context, token, _ string) (bool, error) {
	return token == "good", nil
}

func TestResendCaptcha(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(c *flows.Config, d *flows.Deps, _ *Config) {
		c.CaptchaOnResend = true
		d.Captcha = captchaStub{}
	})
	identity := "0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"
	st := b.start(t, identity, "ada@example.com", vigil.ChannelEmail, vigil.MethodCode)
	for _, body := range []string{`{"id":"` + st.ID + `"}`, `{"address":"nobody@example.com"}`, `{"id":"` + st.ID + `","captcha_token":"bad"}`} {
		w := b.public(t, http.MethodPost, "/self-service/verifications/resend", body)
		require.Equal(t, http.StatusBadRequest, w.Code, body)
		require.Contains(t, w.Body.String(), `"captcha_failed"`)
	}
	w := b.public(t, http.MethodPost, "/self-service/verifications/resend", `{"id":"`+st.ID+`","captcha_token":"good"}`)
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	w = b.public(t, http.MethodPost, "/self-service/verifications/resend", `{"id":"`+st.ID+`","captcha_token":"`+strings.Repeat("x", 5000)+`"}`)
	require.Equal(t, http.StatusBadRequest, w.Code)
	require.Contains(t, w.Body.String(), "captcha_token")
}
