package twilio_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/twilio"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

func newVerify(t *testing.T, tw *twiliotest.Server, modify func(*twilio.VerifyConfig)) *twilio.Verify {
	t.Helper()
	cfg := twilio.VerifyConfig{
		Credentials: twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken},
		ServiceSID:  tw.VerifyServiceSID,
		BaseURL:     tw.URL(),
	}
	if modify != nil {
		modify(&cfg)
	}
	v, err := twilio.NewVerify(cfg)
	require.NoError(t, err)
	return v
}

func otpRequest() vigil.OTPRequest {
	return vigil.OTPRequest{ID: "msg_01HZX3", Channel: vigil.ChannelSMS, To: phone, Locale: "de"}
}

// wrongCode returns a plausible code that is not right.
func wrongCode(right string) string {
	if right == "000000" {
		return "111111"
	}
	return "000000"
}

func TestVerifySendAndCheck(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)

	res, err := v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	require.Equal(t, "twilio_verify", res.Provider)
	require.Equal(t, vigil.MessageSent, res.Status)
	ver, ok := tw.Verification(res.ProviderID)
	require.True(t, ok, "ProviderID %q is the verification SID", res.ProviderID)
	require.Equal(t, phone, ver.To)
	require.Equal(t, "sms", ver.Channel)
	require.Equal(t, "de", ver.Locale)

	ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: wrongCode(ver.Code)})
	require.NoError(t, err)
	require.False(t, ok, "a wrong code is pending, not approved")

	ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: ver.Code})
	require.NoError(t, err)
	require.True(t, ok)

	// Approved verifications are gone: 404, which is (false, nil).
	ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: ver.Code})
	require.NoError(t, err)
	require.False(t, ok)
	require.Equal(t, 3, tw.Requests(twiliotest.EndpointVerificationCheck))
}

func TestVerifyResendKeepsTheCode(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	first, err := v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	again, err := v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	require.Equal(t, first.ProviderID, again.ProviderID)
	ver, _ := tw.Verification(first.ProviderID)
	require.Equal(t, 2, ver.Sends)
}

func TestVerifyChannels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		smsChannel  string
		req         vigil.OTPRequest
		wantChannel string
	}{
		{"sms", "", vigil.OTPRequest{Channel: vigil.ChannelSMS, To: phone}, "sms"},
		{"empty channel is SMS", "", vigil.OTPRequest{To: phone}, "sms"},
		{"whatsapp", "whatsapp", vigil.OTPRequest{Channel: vigil.ChannelSMS, To: phone}, "whatsapp"},
		{"call", "call", vigil.OTPRequest{Channel: vigil.ChannelSMS, To: phone}, "call"},
		{"email", "whatsapp", vigil.OTPRequest{Channel: vigil.ChannelEmail, To: "ada@example.com"}, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			v := newVerify(t, tw, func(c *twilio.VerifyConfig) { c.SMSChannel = tt.smsChannel })
			res, err := v.SendOTP(t.Context(), tt.req)
			require.NoError(t, err)
			ver, ok := tw.Verification(res.ProviderID)
			require.True(t, ok)
			require.Equal(t, tt.wantChannel, ver.Channel)
			require.Equal(t, tt.req.To, ver.To)
			require.Empty(t, ver.Locale)
		})
	}
}

// Twilio answers an unsupported Locale with 404; SendOTP asks once more
// without it.
func TestVerifyUnsupportedLocale(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	req := otpRequest()
	req.Locale = "gsw-CH"
	res, err := v.SendOTP(t.Context(), req)
	require.NoError(t, err)
	ver, ok := tw.Verification(res.ProviderID)
	require.True(t, ok)
	require.Empty(t, ver.Locale)
	require.Equal(t, 2, tw.Requests(twiliotest.EndpointVerifications))

	// A locale that is not a language tag is not sent at all.
	req.Locale = "de\r\nX: 1"
	_, err = v.SendOTP(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, 3, tw.Requests(twiliotest.EndpointVerifications))
}

func TestVerifyCheckGone(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)

	// Expired.
	res, err := v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	ver, _ := tw.Verification(res.ProviderID)
	require.True(t, tw.Expire(res.ProviderID))
	ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: ver.Code})
	require.NoError(t, err)
	require.False(t, ok)

	// Out of checks: Twilio's 60202 after five wrong codes.
	res, err = v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	ver, _ = tw.Verification(res.ProviderID)
	for range 5 {
		ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: wrongCode(ver.Code)})
		require.NoError(t, err)
		require.False(t, ok)
	}
	ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: ver.Code})
	require.NoError(t, err)
	require.False(t, ok, "past Twilio's limit even the right code fails")

	// Unknown SID.
	ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: "VE" + strings.Repeat("0", 32), Code: "123456"})
	require.NoError(t, err)
	require.False(t, ok)
}

func TestVerifyCheckByRecipient(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	_, err := v.SendOTP(t.Context(), otpRequest())
	require.NoError(t, err)
	code, _ := tw.Code(phone)
	// No SID, or one that is not a verification SID: checked by To.
	for _, id := range []string{"", "not-a-sid"} {
		ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: id, To: phone, Code: wrongCode(code)})
		require.NoError(t, err)
		require.False(t, ok)
	}
	ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{To: phone, Code: code})
	require.NoError(t, err)
	require.True(t, ok)
}

func TestVerifyCheckImplausibleCode(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	for _, c := range []string{"", "123", "12345678901", "12 345", "12345\n", "１２３４５６"} {
		ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: "VE" + strings.Repeat("1", 32), Code: c})
		require.NoError(t, err)
		require.False(t, ok)
	}
	require.Zero(t, tw.Requests(twiliotest.EndpointVerificationCheck))

	_, err := v.CheckOTP(t.Context(), vigil.OTPCheck{Code: "123456"})
	checkErr(t, err, true)
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		endpoint      twiliotest.Endpoint
		fault         twiliotest.Fault
		wantCode      int
		wantRetry     time.Duration
		wantPermanent bool
	}{
		{name: "invalid parameter", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 400, Code: 60200, Message: "Invalid parameter `To`: " + phone}, wantCode: 60200, wantPermanent: true},
		{name: "landline", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 400, Code: 60205}, wantCode: 60205, wantPermanent: true},
		{name: "fraud guard", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 403, Code: 60410}, wantCode: 60410, wantPermanent: true},
		{name: "geo permissions", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 403, Code: 60605}, wantCode: 60605, wantPermanent: true},
		{name: "max send attempts", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 429, Code: 60203}, wantCode: 60203},
		{name: "rate limited", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 429, RetryAfter: "5"}, wantCode: 20429, wantRetry: 5 * time.Second},
		{name: "send 503", endpoint: twiliotest.EndpointVerifications, fault: twiliotest.Fault{Status: 503}, wantCode: 20503},
		{name: "check 503", endpoint: twiliotest.EndpointVerificationCheck, fault: twiliotest.Fault{Status: 503}, wantCode: 20503},
		{name: "check rate limited", endpoint: twiliotest.EndpointVerificationCheck, fault: twiliotest.Fault{Status: 429}, wantCode: 20429},
		{name: "check bad request", endpoint: twiliotest.EndpointVerificationCheck, fault: twiliotest.Fault{Status: 400, Code: 60200}, wantCode: 60200, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			v := newVerify(t, tw, nil)
			tt.fault.Endpoint = tt.endpoint
			var err error
			if tt.endpoint == twiliotest.EndpointVerifications {
				tw.Inject(tt.fault)
				_, err = v.SendOTP(t.Context(), otpRequest())
			} else {
				res, sendErr := v.SendOTP(t.Context(), otpRequest())
				require.NoError(t, sendErr)
				tw.Inject(tt.fault)
				var ok bool
				ok, err = v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: code})
				require.False(t, ok)
			}
			checkErr(t, err, tt.wantPermanent, tw.AuthToken)
			apiErr, ok := errors.AsType[*twilio.APIError](err)
			require.True(t, ok, "err = %v", err)
			require.Equal(t, tt.fault.Status, apiErr.StatusCode)
			require.Equal(t, tt.wantCode, apiErr.Code)
			require.Equal(t, tt.wantRetry, apiErr.RetryAfter)
		})
	}
}

// TestVerifyMaxSendAttempts runs into Twilio's own per-recipient limit.
func TestVerifyMaxSendAttempts(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	for range 5 {
		_, err := v.SendOTP(t.Context(), otpRequest())
		require.NoError(t, err)
	}
	_, err := v.SendOTP(t.Context(), otpRequest())
	checkErr(t, err, false)
	apiErr, ok := errors.AsType[*twilio.APIError](err)
	require.True(t, ok)
	require.Equal(t, 60203, apiErr.Code)
}

func TestVerifyTimeout(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.Inject(twiliotest.Fault{Hang: true})
	v := newVerify(t, tw, func(c *twilio.VerifyConfig) { c.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := v.SendOTP(t.Context(), otpRequest())
	checkErr(t, err, false)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: "VE" + strings.Repeat("1", 32), Code: code})
	require.False(t, ok)
	checkErr(t, err, false)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestVerifyRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	v := newVerify(t, tw, nil)
	for _, r := range []vigil.OTPRequest{
		{Channel: vigil.ChannelSMS, To: "0151 23456780"},
		{Channel: vigil.ChannelSMS, To: "ada@example.com"},
		{Channel: vigil.ChannelEmail, To: phone},
		{Channel: vigil.ChannelEmail, To: "ada@example.com\r\nBcc: eve@example.com"},
		{Channel: "push", To: phone},
	} {
		_, err := v.SendOTP(t.Context(), r)
		checkErr(t, err, true)
	}
	require.Zero(t, tw.Requests(twiliotest.EndpointVerifications))
}

// TestVerifyDocumentedAnswers runs SendOTP and CheckOTP against Twilio's
// documented JSON, and checks the requests' paths and forms.
func TestVerifyDocumentedAnswers(t *testing.T) {
	t.Parallel()
	const service = "VA6b8d0f2a4c6e48b1d3f5a7c9e1b3d5f7"
	const verification = "VE4a7c9e1b3d5f47a8b0c2e4f6a8b0c2d4"
	tests := []struct {
		name     string
		file     string
		status   int
		wantOK   bool
		wantCode int // an error with this code
	}{
		{name: "approved", file: "verification_check_approved.json", status: 200, wantOK: true},
		{name: "approved with 201", file: "verification_check_approved.json", status: 201, wantOK: true},
		{name: "pending", file: "verification_check_pending.json", status: 200},
		{name: "not found", file: "error_20404.json", status: 404},
		{name: "max attempts", file: "error_60202.json", status: 429},
		{name: "not JSON", status: 200, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			created, err := os.ReadFile("testdata/verification_created.json")
			require.NoError(t, err)
			answer := []byte("OK")
			if tt.file != "" {
				answer, err = os.ReadFile("testdata/" + tt.file)
				require.NoError(t, err)
			}
			var mu sync.Mutex
			var forms []url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(body))
				mu.Lock()
				forms = append(forms, form)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/v2/Services/" + service + "/Verifications":
					w.WriteHeader(http.StatusCreated)
					_, _ = w.Write(created)
				case "/v2/Services/" + service + "/VerificationCheck":
					w.WriteHeader(tt.status)
					_, _ = w.Write(answer)
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			v, err := twilio.NewVerify(twilio.VerifyConfig{
				Credentials: twilio.Credentials{AccountSID: "AC2f9c6a0e4b7d41c38a5e90b1d6f3c7a2", AuthToken: "secret-token"},
				ServiceSID:  service,
				BaseURL:     srv.URL,
			})
			require.NoError(t, err)
			res, err := v.SendOTP(t.Context(), otpRequest())
			require.NoError(t, err)
			require.Equal(t, verification, res.ProviderID)

			ok, err := v.CheckOTP(t.Context(), vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: code})
			if tt.wantCode != 0 {
				require.Error(t, err)
				require.NotContains(t, err.Error(), phone)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantOK, ok)

			mu.Lock()
			defer mu.Unlock()
			require.Len(t, forms, 2)
			require.Equal(t, url.Values{"To": {phone}, "Channel": {"sms"}, "Locale": {"de"}}, forms[0])
			require.Equal(t, url.Values{"VerificationSid": {verification}, "Code": {code}}, forms[1])
		})
	}
}

func TestNewVerify(t *testing.T) {
	t.Parallel()
	account := "AC" + strings.Repeat("a", 32)
	service := "VA" + strings.Repeat("b", 32)
	tests := []struct {
		name     string
		cfg      twilio.VerifyConfig
		wantErrs []string
	}{
		{name: "ok", cfg: twilio.VerifyConfig{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, ServiceSID: service}},
		{name: "ok with everything", cfg: twilio.VerifyConfig{
			Credentials: twilio.Credentials{AccountSID: account, APIKeySID: "SK" + strings.Repeat("c", 32), APIKeySecret: "s"},
			ServiceSID:  service, SMSChannel: "whatsapp", BaseURL: "http://127.0.0.1:9999/", Timeout: time.Second,
		}},
		{name: "nothing", wantErrs: []string{"AccountSID", "AuthToken", "ServiceSID"}},
		{name: "bad service", cfg: twilio.VerifyConfig{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, ServiceSID: "MG" + strings.Repeat("b", 32)}, wantErrs: []string{"ServiceSID must be VA"}},
		{name: "bad channel", cfg: twilio.VerifyConfig{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, ServiceSID: service, SMSChannel: "email"}, wantErrs: []string{"SMSChannel"}},
		{name: "bad base URL", cfg: twilio.VerifyConfig{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, ServiceSID: service, BaseURL: "verify.twilio.com"}, wantErrs: []string{"BaseURL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := twilio.NewVerify(tt.cfg)
			if len(tt.wantErrs) == 0 {
				require.NoError(t, err)
				require.NotNil(t, v)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErrs {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}
