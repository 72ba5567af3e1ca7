package twiliotest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil/internal/twiliotest"
)

// answer is a decoded JSON answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) code() int { return a.int("code") }

func (a answer) int(key string) int {
	if c, ok := a.body[key].(float64); ok {
		return int(c)
	}
	return 0
}

var client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

func post(t *testing.T, endpoint, user, pass string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &a.body), "body %s", raw)
	}
	return a
}

func messagesURL(tw *twiliotest.Server) string {
	return tw.URL() + "/2010-04-01/Accounts/" + tw.AccountSID + "/Messages.json"
}

func sms(to, body string) url.Values {
	return url.Values{"To": {to}, "From": {"+15005550006"}, "Body": {body}}
}

// The worked example of Twilio's webhook security documentation, and the
// vectors of Twilio's Go library (client/request_validator_test.go).
func TestSignKnownVectors(t *testing.T) {
	t.Parallel()
	docs := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675310"},
		"Digits":  {"1234"},
		"From":    {"+14158675310"},
		"To":      {"+18005551212"},
	}
	sdk := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
	tests := []struct {
		name   string
		url    string
		params url.Values
		want   string
	}{
		{"docs", "https://mycompany.com/myapp.php?foo=1&bar=2", docs, "GvWf1cFY/Q7PnoempGyD5oXAezc="},
		{"sdk", "https://mycompany.com/myapp.php?foo=1&bar=2", sdk, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"sdk with :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", sdk, "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"sdk http with :80", "http://mycompany.com:80/myapp.php?foo=1&bar=2", sdk, "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		{"sdk http with :1234", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", sdk, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, twiliotest.Sign("12345", tt.url, tt.params))
		})
	}
}

func TestCreateMessage(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	form := sms("+4915123456780", "Your code is 201346")
	form.Set("StatusCallback", "https://vigil.example.com/twilio/status")
	a := post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, form)
	require.Equal(t, http.StatusCreated, a.status, a.body)

	sid, _ := a.body["sid"].(string)
	require.Regexp(t, `^SM[0-9a-f]{32}$`, sid)
	require.Equal(t, "queued", a.body["status"])
	require.Equal(t, "+4915123456780", a.body["to"])
	require.Equal(t, "+15005550006", a.body["from"])
	require.Equal(t, "Your code is 201346", a.body["body"])
	require.Equal(t, tw.AccountSID, a.body["account_sid"])
	require.Equal(t, "2010-04-01", a.body["api_version"])
	require.Equal(t, "outbound-api", a.body["direction"])
	require.Nil(t, a.body["error_code"])
	require.Equal(t, "/2010-04-01/Accounts/"+tw.AccountSID+"/Messages/"+sid+".json", a.body["uri"])

	m, ok := tw.Message(sid)
	require.True(t, ok)
	require.Equal(t, "+4915123456780", m.To)
	require.Equal(t, "+15005550006", m.From)
	require.Equal(t, "Your code is 201346", m.Body)
	require.Equal(t, "https://vigil.example.com/twilio/status", m.StatusCallback)
	require.Equal(t, tw.AccountSID, m.Username)
	require.Len(t, tw.Messages(), 1)
	require.Equal(t, 1, tw.Requests(twiliotest.EndpointMessages))
}

func TestCreateMessageServiceAndWhatsApp(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	service := "MG" + strings.Repeat("a", 32)
	a := post(t, messagesURL(tw), tw.APIKeySID, tw.APIKeySecret, url.Values{
		"To": {"+4915123456780"}, "MessagingServiceSid": {service}, "Body": {"hi"},
	})
	require.Equal(t, http.StatusCreated, a.status, a.body)
	require.Equal(t, "accepted", a.body["status"])
	require.Nil(t, a.body["from"])
	require.Equal(t, service, a.body["messaging_service_sid"])

	a = post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, url.Values{
		"To": {"whatsapp:+4915123456780"}, "From": {"whatsapp:+15005550006"}, "Body": {"hi"},
	})
	require.Equal(t, http.StatusCreated, a.status, a.body)
	require.Equal(t, "whatsapp:+4915123456780", a.body["to"])

	msgs := tw.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, tw.APIKeySID, msgs[0].Username)
}

func TestAuthAndRouting(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t, twiliotest.WithAccount("AC"+strings.Repeat("1", 32), "token"))
	tests := []struct {
		name       string
		url        string
		user, pass string
		wantStatus int
		wantCode   int
	}{
		{"no auth", messagesURL(tw), "", "", http.StatusUnauthorized, 20003},
		{"wrong token", messagesURL(tw), tw.AccountSID, "nope", http.StatusUnauthorized, 20003},
		{"key with account token", messagesURL(tw), tw.APIKeySID, tw.AuthToken, http.StatusUnauthorized, 20003},
		{"other account", tw.URL() + "/2010-04-01/Accounts/AC" + strings.Repeat("2", 32) + "/Messages.json", tw.AccountSID, "token", http.StatusNotFound, 20404},
		{"unknown path", tw.URL() + "/2010-04-01/Accounts/" + tw.AccountSID + "/Calls.json", tw.AccountSID, "token", http.StatusNotFound, 20404},
		{"unknown service", tw.URL() + "/v2/Services/VA" + strings.Repeat("0", 32) + "/Verifications", tw.AccountSID, "token", http.StatusNotFound, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := post(t, tt.url, tt.user, tt.pass, sms("+4915123456780", "hi"))
			require.Equal(t, tt.wantStatus, a.status)
			require.Equal(t, tt.wantCode, a.code())
			require.Equal(t, tt.wantStatus, a.int("status"))
			require.Equal(t, fmt.Sprintf("https://www.twilio.com/docs/errors/%d", tt.wantCode), a.body["more_info"])
			if tt.wantStatus == http.StatusUnauthorized {
				require.Contains(t, a.header.Get("WWW-Authenticate"), "Basic")
			}
		})
	}
	require.Empty(t, tw.Messages())
}

func TestMessageValidation(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tests := []struct {
		name     string
		form     url.Values
		wantCode int
	}{
		{"no To", url.Values{"From": {"+15005550006"}, "Body": {"x"}}, 21604},
		{"invalid To", sms("+12", "x"), 21211},
		{"To not E.164", sms("004915123456780", "x"), 21211},
		{"no From", url.Values{"To": {"+4915123456780"}, "Body": {"x"}}, 21603},
		{"invalid From", url.Values{"To": {"+4915123456780"}, "From": {"not a sender!"}, "Body": {"x"}}, 21212},
		{"bad service", url.Values{"To": {"+4915123456780"}, "MessagingServiceSid": {"MG1"}, "Body": {"x"}}, 21701},
		{"channel mismatch", url.Values{"To": {"whatsapp:+4915123456780"}, "From": {"+15005550006"}, "Body": {"x"}}, 21910},
		{"no body", sms("+4915123456780", ""), 21602},
		{"body too long", sms("+4915123456780", strings.Repeat("x", 1601)), 21617},
		{"bad StatusCallback", func() url.Values {
			f := sms("+4915123456780", "x")
			f.Set("StatusCallback", "/relative")
			return f
		}(), 21609},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, tt.form)
			require.Equal(t, http.StatusBadRequest, a.status)
			require.Equal(t, tt.wantCode, a.code(), a.body)
		})
	}
	t.Cleanup(func() { require.Empty(t, tw.Messages()) })
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.Inject(twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: 503, Times: 1})
	tw.Inject(twiliotest.Fault{To: "+15005550001", Status: 400, Code: 21211, Message: "The 'To' number +15005550001 is not a valid phone number."})
	tw.Inject(twiliotest.Fault{Endpoint: twiliotest.EndpointVerifications, Status: 429, RetryAfter: "7", Times: 1})

	a := post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("+4915123456780", "x"))
	require.Equal(t, 503, a.status)
	require.Equal(t, 20503, a.code())

	a = post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("+4915123456780", "x"))
	require.Equal(t, http.StatusCreated, a.status, "the 503 ran out")

	for range 2 {
		a = post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("whatsapp:+15005550001", "x"))
		require.Equal(t, 400, a.status)
		require.Equal(t, 21211, a.code())
	}

	verifyURL := tw.URL() + "/v2/Services/" + tw.VerifyServiceSID + "/Verifications"
	a = post(t, verifyURL, tw.AccountSID, tw.AuthToken, url.Values{"To": {"+4915123456780"}, "Channel": {"sms"}})
	require.Equal(t, 429, a.status)
	require.Equal(t, "7", a.header.Get("Retry-After"))
	require.Equal(t, 20429, a.code())

	tw.ClearFaults()
	a = post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("+15005550001", "x"))
	require.Equal(t, http.StatusCreated, a.status)
	require.Len(t, tw.Messages(), 2)
	require.Equal(t, 5, tw.Requests(twiliotest.EndpointMessages))
}

func TestFaultRawBodyAndDelay(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.Inject(twiliotest.Fault{Status: 502, RawBody: "<html>Bad Gateway</html>", Times: 1})
	tw.Inject(twiliotest.Fault{Delay: 50 * time.Millisecond, Times: 1})

	a := post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("+4915123456780", "x"))
	require.Equal(t, 502, a.status)
	require.Nil(t, a.body)

	start := time.Now()
	a = post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, sms("+4915123456780", "x"))
	require.Equal(t, http.StatusCreated, a.status)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
}

func TestFaultHang(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.Inject(twiliotest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, messagesURL(tw), strings.NewReader(sms("+4915123456780", "x").Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// A request still hanging when the test ends must not block Close.
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, messagesURL(tw), nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(20 * time.Millisecond)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t, twiliotest.WithVerifyLimits(3, 2, time.Minute))
	start := tw.URL() + "/v2/Services/" + tw.VerifyServiceSID + "/Verifications"
	check := tw.URL() + "/v2/Services/" + tw.VerifyServiceSID + "/VerificationCheck"
	const to = "+4915123456780"

	a := post(t, start, tw.AccountSID, tw.AuthToken, url.Values{"To": {to}, "Channel": {"sms"}, "Locale": {"de"}})
	require.Equal(t, http.StatusCreated, a.status, a.body)
	sid, _ := a.body["sid"].(string)
	require.Regexp(t, `^VE[0-9a-f]{32}$`, sid)
	require.Equal(t, "pending", a.body["status"])
	require.Equal(t, false, a.body["valid"])
	require.Equal(t, tw.VerifyServiceSID, a.body["service_sid"])
	code, ok := tw.Code(to)
	require.True(t, ok)
	require.Regexp(t, `^[0-9]{6}$`, code)

	// A resend while pending: same SID, same code, until the limit.
	for range 2 {
		a = post(t, start, tw.AccountSID, tw.AuthToken, url.Values{"To": {to}, "Channel": {"whatsapp"}})
		require.Equal(t, http.StatusCreated, a.status)
		require.Equal(t, sid, a.body["sid"])
		require.Equal(t, "whatsapp", a.body["channel"])
	}
	a = post(t, start, tw.AccountSID, tw.AuthToken, url.Values{"To": {to}, "Channel": {"sms"}})
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, 60203, a.code())

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"VerificationSid": {sid}, "Code": {wrong}})
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "pending", a.body["status"])
	require.Equal(t, false, a.body["valid"])

	a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"To": {to}, "Code": {code}})
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "approved", a.body["status"])
	require.Equal(t, true, a.body["valid"])

	a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"VerificationSid": {sid}, "Code": {code}})
	require.Equal(t, http.StatusNotFound, a.status)
	require.Equal(t, 20404, a.code())

	v, ok := tw.Verification(sid)
	require.True(t, ok)
	require.Equal(t, "approved", v.Status)
	require.Equal(t, 3, v.Sends)
	require.Equal(t, 2, v.Checks)
	require.Equal(t, "whatsapp", v.Channel)
}

func TestVerifyLimitsAndExpiry(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	start := tw.URL() + "/v2/Services/" + tw.VerifyServiceSID + "/Verifications"
	check := tw.URL() + "/v2/Services/" + tw.VerifyServiceSID + "/VerificationCheck"

	a := post(t, start, tw.AccountSID, tw.AuthToken, url.Values{"To": {"+4915123456781"}, "Channel": {"sms"}})
	require.Equal(t, http.StatusCreated, a.status)
	sid, _ := a.body["sid"].(string)
	for range 5 {
		a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"VerificationSid": {sid}, "Code": {"wrong1"}})
		require.Equal(t, http.StatusOK, a.status)
		require.Equal(t, "pending", a.body["status"])
	}
	code, _ := tw.Code("+4915123456781")
	a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"VerificationSid": {sid}, "Code": {code}})
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, 60202, a.code())

	a = post(t, start, tw.AccountSID, tw.AuthToken, url.Values{"To": {"a@example.com"}, "Channel": {"email"}})
	require.Equal(t, http.StatusCreated, a.status)
	sid, _ = a.body["sid"].(string)
	require.True(t, tw.Expire(sid))
	code, ok := tw.Code("a@example.com")
	require.False(t, ok, "an expired verification has no pending code")
	v, _ := tw.Verification(sid)
	a = post(t, check, tw.AccountSID, tw.AuthToken, url.Values{"VerificationSid": {sid}, "Code": {v.Code + code}})
	require.Equal(t, http.StatusNotFound, a.status)
	require.Equal(t, 20404, a.code())

	tests := []struct {
		name       string
		url        string
		form       url.Values
		wantStatus int
		wantCode   int
	}{
		{"unsupported locale", start, url.Values{"To": {"+4915123456782"}, "Channel": {"sms"}, "Locale": {"xx-YY"}}, 404, 20404},
		{"bad channel", start, url.Values{"To": {"+4915123456782"}, "Channel": {"pigeon"}}, 400, 60200},
		{"bad number", start, url.Values{"To": {"12345"}, "Channel": {"sms"}}, 400, 60200},
		{"bad email", start, url.Values{"To": {"nobody"}, "Channel": {"email"}}, 400, 60200},
		{"check without code", check, url.Values{"To": {"+4915123456782"}}, 400, 60200},
		{"check without target", check, url.Values{"Code": {"123456"}}, 400, 60200},
		{"check unknown", check, url.Values{"VerificationSid": {"VE" + strings.Repeat("0", 32)}, "Code": {"123456"}}, 404, 20404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := post(t, tt.url, tw.AccountSID, tw.AuthToken, tt.form)
			require.Equal(t, tt.wantStatus, a.status, a.body)
			require.Equal(t, tt.wantCode, a.code())
		})
	}
}

// TestConcurrentMessages is the load other packages' tests put on the
// server: many clients at once, every message recorded once.
func TestConcurrentMessages(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	const n = 1000
	var wg sync.WaitGroup
	sids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			sids[i], errs[i] = create(t.Context(), tw, fmt.Sprintf("+4915100%06d", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "message %d", i)
	}
	msgs, err := tw.WaitForMessages(t.Context(), n)
	require.NoError(t, err)
	require.Len(t, msgs, n)
	seen := make(map[string]bool, n)
	for i, sid := range sids {
		require.NotEmpty(t, sid, "message %d", i)
		require.False(t, seen[sid], "duplicate SID %s", sid)
		seen[sid] = true
		m, ok := tw.Message(sid)
		require.True(t, ok)
		require.Equal(t, fmt.Sprintf("+4915100%06d", i), m.To)
	}
}

// create posts one message without require, for goroutines, and returns
// its SID.
func create(ctx context.Context, tw *twiliotest.Server, to string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, messagesURL(tw), strings.NewReader(sms(to, "x").Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(tw.AccountSID, tw.AuthToken)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var created struct {
		SID string `json:"sid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return created.SID, nil
}

func TestWaitForMessagesGivesUp(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := tw.WaitForMessages(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSendStatus(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	type got struct {
		form   url.Values
		header http.Header
		url    string
	}
	gotc := make(chan got, 1)
	handler := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		gotc <- got{form: r.PostForm, header: r.Header.Clone(), url: "http://" + r.Host + r.URL.RequestURI()}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(handler.Close)

	form := url.Values{"To": {"whatsapp:+4915123456780"}, "From": {"whatsapp:+15005550006"}, "Body": {"x"}, "StatusCallback": {handler.URL + "/status?m=1"}}
	a := post(t, messagesURL(tw), tw.AccountSID, tw.AuthToken, form)
	require.Equal(t, http.StatusCreated, a.status)
	sid, _ := a.body["sid"].(string)

	status, err := tw.SendStatus(t.Context(), sid, "undelivered", 30003)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, status)
	g := <-gotc
	require.Equal(t, sid, g.form.Get("MessageSid"))
	require.Equal(t, sid, g.form.Get("SmsSid"))
	require.Equal(t, "undelivered", g.form.Get("MessageStatus"))
	require.Equal(t, "30003", g.form.Get("ErrorCode"))
	require.Equal(t, tw.AccountSID, g.form.Get("AccountSid"))
	require.Equal(t, "whatsapp", g.form.Get("ChannelPrefix"))
	require.Equal(t, "2010-04-01", g.form.Get("ApiVersion"))
	require.Equal(t, "application/x-www-form-urlencoded", g.header.Get("Content-Type"))
	require.NotEmpty(t, g.header.Get("I-Twilio-Idempotency-Token"))
	require.Equal(t, twiliotest.Sign(tw.AuthToken, g.url, g.form), g.header.Get("X-Twilio-Signature"))

	_, err = tw.SendStatus(t.Context(), "SM"+strings.Repeat("0", 32), "delivered", 0)
	require.Error(t, err)
}
