package engagelab_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/engagelab"
	"github.com/vigil-auth/vigil/internal/engagelabtest"
)

const (
	phone = "+4915123456780"
	email = "ada@example.com"
	// echo is what a provider might say back: the number, which no error
	// may carry.
	echo = "cannot deliver to " + phone
)

type testBundle struct {
	srv    *engagelabtest.Server
	sender *engagelab.Sender
}

// setup starts a fake and a Sender for it; modify may change the config.
func setup(t *testing.T, modify func(*engagelab.Config), opts ...engagelabtest.Option) testBundle {
	t.Helper()
	srv := engagelabtest.Start(t, opts...)
	cfg := engagelab.Config{
		BaseURL:    srv.URL(),
		DevKey:     engagelabtest.DevKey,
		DevSecret:  engagelabtest.DevSecret,
		TemplateID: engagelabtest.TemplateID,
	}
	if modify != nil {
		modify(&cfg)
	}
	s, err := engagelab.New(cfg)
	require.NoError(t, err)
	return testBundle{srv: srv, sender: s}
}

func request() vigil.OTPRequest {
	return vigil.OTPRequest{ID: "msg_01HZX3", Channel: vigil.ChannelSMS, To: phone, Locale: "en"}
}

func TestSendAndCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	res, err := b.sender.SendOTP(ctx, request())
	require.NoError(t, err)
	require.Equal(t, "engagelab", res.Provider)
	require.Equal(t, vigil.MessageSent, res.Status)
	require.Len(t, res.ProviderID, 19, "EngageLab-style message id")
	code := b.srv.Code(t, res.ProviderID)

	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	steps := []struct {
		name string
		code string
		want bool
	}{
		{"wrong code", wrong, false},
		{"right code", code, true},
		{"already verified", code, false},
	}
	for _, st := range steps {
		ok, err := b.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: st.code})
		require.NoError(t, err, st.name)
		require.Equal(t, st.want, ok, st.name)
	}
	m, ok := b.srv.Message(res.ProviderID)
	require.True(t, ok)
	require.True(t, m.Verified)
	require.Equal(t, 3, m.Checks)
}

func TestCheckGoneSends(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		res, err := b.sender.SendOTP(ctx, request())
		require.NoError(t, err)
		b.srv.Expire(res.ProviderID)
		ok, err := b.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: res.ProviderID, Code: b.srv.Code(t, res.ProviderID)})
		require.NoError(t, err)
		require.False(t, ok)
	})
	t.Run("unknown message id", func(t *testing.T) {
		t.Parallel()
		ok, err := b.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: "1725407449772531999", Code: "123456"})
		require.NoError(t, err)
		require.False(t, ok)
	})
	t.Run("expired by the clock", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		cb := setup(t, nil, engagelabtest.WithClock(clock), engagelabtest.WithTTL(time.Minute))
		res, err := cb.sender.SendOTP(ctx, request())
		require.NoError(t, err)
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		ok, err := cb.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: res.ProviderID, Code: cb.srv.Code(t, res.ProviderID)})
		require.NoError(t, err)
		require.False(t, ok)
	})
}

// TestWireFormat compares the requests with EngageLab's documented
// examples (OTP Send, OTP Verify).
func TestWireFormat(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *engagelab.Config) { c.Params = map[string]string{"brand": "Vigil"} })
	ctx := context.Background()
	res, err := b.sender.SendOTP(ctx, request())
	require.NoError(t, err)
	_, err = b.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: res.ProviderID, Code: "667090"})
	require.NoError(t, err)

	reqs := b.srv.Requests()
	require.Len(t, reqs, 2)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(engagelabtest.DevKey+":"+engagelabtest.DevSecret))
	want := []struct{ path, body string }{
		{"/v1/messages", `{"to":"+4915123456780","template":{"id":"vigil-otp","language":"en","params":{"brand":"Vigil"}}}`},
		{"/v1/verifications", `{"message_id":"` + res.ProviderID + `","verify_code":"667090"}`},
	}
	for i, w := range want {
		r := reqs[i]
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, w.path, r.Path)
		require.JSONEq(t, w.body, string(r.Body))
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.Equal(t, auth, r.Header.Get("Authorization"))
		require.Empty(t, r.Header.Get("Idempotency-Key"), "EngageLab has none")
	}
}

func TestLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *engagelab.Config) {
		c.Templates = map[string]string{"de": "otp-de", "pt_BR": "otp-pt-br", "zh-TW": "otp-zh-tw"}
	}, engagelabtest.WithTemplates(engagelabtest.TemplateID, "otp-de", "otp-pt-br", "otp-zh-tw", "otp-fr"))
	fr := setup(t, func(c *engagelab.Config) { c.Language = "zh-cn"; c.TemplateID = "otp-fr" },
		engagelabtest.WithTemplates("otp-fr"))

	tests := []struct {
		locale       string
		sender       testBundle
		wantTemplate string
		wantLanguage string
	}{
		{"", b, engagelabtest.TemplateID, "default"},
		{"en", b, engagelabtest.TemplateID, "en"},
		{"en-GB", b, engagelabtest.TemplateID, "en"},
		{"EN_us", b, engagelabtest.TemplateID, "en"},
		{"ja-JP", b, engagelabtest.TemplateID, "ja"},
		{"th", b, engagelabtest.TemplateID, "th"},
		{"es-419", b, engagelabtest.TemplateID, "es"},
		{"zh", b, engagelabtest.TemplateID, "zh_CN"},
		{"zh-CN", b, engagelabtest.TemplateID, "zh_CN"},
		{"zh-Hans-SG", b, engagelabtest.TemplateID, "zh_CN"},
		{"zh-HK", b, engagelabtest.TemplateID, "zh_HK"},
		{"zh-Hant", b, engagelabtest.TemplateID, "zh_HK"},
		{"zh-MO", b, engagelabtest.TemplateID, "zh_HK"},
		{"yue", b, engagelabtest.TemplateID, "zh_HK"},
		{"zh-TW", b, "otp-zh-tw", "default"},
		{"de", b, "otp-de", "default"},
		{"de-DE", b, "otp-de", "default"},
		{"de-AT-u-co-phonebk", b, "otp-de", "default"},
		{"pt-BR", b, "otp-pt-br", "default"},
		{"pt-PT", b, engagelabtest.TemplateID, "default"},
		{"fr-FR", b, engagelabtest.TemplateID, "default"},
		{"fr-FR", fr, "otp-fr", "zh_CN"},
		{"", fr, "otp-fr", "zh_CN"},
		{"en", fr, "otp-fr", "en"},
	}
	for _, tt := range tests {
		name := tt.locale
		if tt.sender == fr {
			name += " with Language"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := request()
			r.Locale = tt.locale
			res, err := tt.sender.sender.SendOTP(context.Background(), r)
			require.NoError(t, err)
			m, ok := tt.sender.srv.Message(res.ProviderID)
			require.True(t, ok)
			require.Equal(t, tt.wantTemplate, m.TemplateID)
			require.Equal(t, tt.wantLanguage, m.Language)
		})
	}
}

func TestEmailChannel(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := request()
	r.Channel, r.To = vigil.ChannelEmail, email
	res, err := b.sender.SendOTP(context.Background(), r)
	require.NoError(t, err)
	m, _ := b.srv.Message(res.ProviderID)
	require.Equal(t, "email", m.Channel)
	require.Equal(t, email, m.To)
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		failure       engagelabtest.Failure
		wantPermanent bool
		wantCode      int
	}{
		{name: "invalid number", failure: engagelabtest.Failure{Status: 400, Code: 5011, Message: echo}, wantPermanent: true, wantCode: 5011},
		{name: "number blacklisted", failure: engagelabtest.Failure{Status: 400, Code: 5013, Message: echo}, wantPermanent: true, wantCode: 5013},
		{name: "unreachable", failure: engagelabtest.Failure{Status: 400, Code: 5012, Message: echo}, wantPermanent: true, wantCode: 5012},
		{name: "template not found", failure: engagelabtest.Failure{Status: 400, Code: 4001, Message: "template not found"}, wantPermanent: true, wantCode: 4001},
		{name: "bad parameters", failure: engagelabtest.Failure{Status: 400, Code: 3002, Message: "bad to " + phone}, wantPermanent: true, wantCode: 3002},
		{name: "auth failed", failure: engagelabtest.Failure{Status: 401, Code: 2001, Message: "dev_key " + engagelabtest.DevKey + " invalid"}, wantPermanent: true, wantCode: 2001},
		{name: "no permission", failure: engagelabtest.Failure{Status: 403, Code: 2004}, wantPermanent: true, wantCode: 2004},
		{name: "unknown 4xx", failure: engagelabtest.Failure{Status: 422, Body: `{"error":"` + echo + `"}`}, wantPermanent: true},
		{name: "internal error", failure: engagelabtest.Failure{Status: 500, Code: 1000, Message: echo}, wantCode: 1000},
		{name: "bad gateway without body", failure: engagelabtest.Failure{Status: 502, Body: "<html>" + echo + "</html>"}},
		{name: "unavailable", failure: engagelabtest.Failure{Status: 503, Code: 1000}, wantCode: 1000},
		{name: "429", failure: engagelabtest.Failure{Status: 429, Code: 3004, Message: "too many for " + phone}, wantCode: 3004},
		{name: "rate limited as 400", failure: engagelabtest.Failure{Status: 400, Code: 3004}, wantCode: 3004},
		{name: "send failed", failure: engagelabtest.Failure{Status: 400, Code: 5001}, wantCode: 5001},
		{name: "internal send error", failure: engagelabtest.Failure{Status: 400, Code: 5016}, wantCode: 5016},
		{name: "handset off", failure: engagelabtest.Failure{Status: 400, Code: 5018}, wantCode: 5018},
		{name: "code as a string", failure: engagelabtest.Failure{Status: 400, Body: `{"code":"5011","message":"` + echo + `"}`}, wantPermanent: true, wantCode: 5011},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.srv.Fail(engagelabtest.Send, tt.failure)
			_, err := b.sender.SendOTP(context.Background(), request())
			checkErr(t, err, tt.wantPermanent, "send")
			var e *engagelab.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.failure.Status, e.StatusCode)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, "send", e.Op)
			require.Empty(t, b.srv.Messages())
		})
	}
}

// TestSendRefused runs into the fake's own refusals, not injected ones.
func TestSendRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		modify   func(*engagelab.Config)
		to       string
		wantCode int
	}{
		{name: "wrong secret", modify: func(c *engagelab.Config) { c.DevSecret = "hunter2" }, to: phone, wantCode: 2001},
		{name: "unknown template", modify: func(c *engagelab.Config) { c.TemplateID = "nope" }, to: phone, wantCode: 4001},
		{name: "invalid number", to: "+0123", wantCode: 5011},
		{name: "not a number", to: "4915123456780", wantCode: 5011},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.modify)
			r := request()
			r.To = tt.to
			_, err := b.sender.SendOTP(context.Background(), r)
			checkErr(t, err, true, strconv.Itoa(tt.wantCode))
			var e *engagelab.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantCode, e.Code)
			require.NotContains(t, err.Error(), tt.to)
		})
	}
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		failure engagelabtest.Failure
		wantErr bool
	}{
		{name: "expired or verified", failure: engagelabtest.Failure{Status: 400, Code: 3003}},
		{name: "404 with 3003", failure: engagelabtest.Failure{Status: 404, Code: 3003}},
		{name: "bare 404", failure: engagelabtest.Failure{Status: 404, Body: `404 page not found`}, wantErr: true},
		{name: "bad parameters", failure: engagelabtest.Failure{Status: 400, Code: 3002}, wantErr: true},
		{name: "auth failed", failure: engagelabtest.Failure{Status: 401, Code: 2001}, wantErr: true},
		{name: "3003 as 500", failure: engagelabtest.Failure{Status: 500, Code: 3003}, wantErr: true},
		{name: "internal error", failure: engagelabtest.Failure{Status: 500, Code: 1000}, wantErr: true},
		{name: "503 HTML", failure: engagelabtest.Failure{Status: 503, Body: "<html>down</html>"}, wantErr: true},
		{name: "429", failure: engagelabtest.Failure{Status: 429, Code: 3004}, wantErr: true},
		{name: "no verified field", failure: engagelabtest.Failure{Body: `{"message_id":"1"}`}, wantErr: true},
		{name: "not JSON", failure: engagelabtest.Failure{Body: `OK`}, wantErr: true},
		{name: "verified as text", failure: engagelabtest.Failure{Body: `{"verified":"true"}`}, wantErr: true},
		{name: "another message", failure: engagelabtest.Failure{Body: `{"message_id":"42","verified":true}`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			res, err := b.sender.SendOTP(context.Background(), request())
			require.NoError(t, err)
			code := b.srv.Code(t, res.ProviderID)
			b.srv.Fail(engagelabtest.Verify, tt.failure)
			ok, err := b.sender.CheckOTP(context.Background(), vigil.OTPCheck{ProviderID: res.ProviderID, To: phone, Code: code})
			require.False(t, ok)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			msg := err.Error()
			t.Logf("error: %s", msg)
			require.Contains(t, msg, "engagelab: check")
			for _, secret := range []string{code, phone, engagelabtest.DevKey, engagelabtest.DevSecret} {
				require.NotContains(t, msg, secret)
			}
		})
	}
}

func TestCheckAnswerShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"documented", `{"message_id":"%s","verify_code":"667090","verified":true}`, true},
		{"false", `{"message_id":"%s","verify_code":"667090","verified":false}`, false},
		{"numeric message id", `{"message_id":%s,"verified":true}`, true},
		{"no message id", `{"verified":true}`, true},
		{"extra fields", `{"message_id":"%s","verified":true,"channel":"sms"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			res, err := b.sender.SendOTP(context.Background(), request())
			require.NoError(t, err)
			body := tt.body
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, res.ProviderID)
			}
			b.srv.Fail(engagelabtest.Verify, engagelabtest.Failure{Body: body})
			ok, err := b.sender.CheckOTP(context.Background(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: "667090"})
			require.NoError(t, err)
			require.Equal(t, tt.want, ok)
		})
	}
}

func TestSendAnswerShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantID  string
		wantErr bool
	}{
		{name: "documented", body: `{"message_id":"1725407449772531712","send_channel":"whatsapp"}`, wantID: "1725407449772531712"},
		{name: "numeric id keeps every digit", body: `{"message_id":1725407449772531713,"send_channel":"sms"}`, wantID: "1725407449772531713"},
		{name: "non-numeric id", body: `{"message_id":"abc-1"}`, wantID: "abc-1"},
		{name: "no message id", body: `{"send_channel":"sms"}`, wantErr: true},
		{name: "empty message id", body: `{"message_id":""}`, wantErr: true},
		{name: "object message id", body: `{"message_id":{"id":"1"}}`, wantErr: true},
		{name: "not JSON", body: `accepted`, wantErr: true},
		{name: "over the read cap", body: `{"pad":"` + strings.Repeat("x", 70<<10) + `","message_id":"late"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.srv.Fail(engagelabtest.Send, engagelabtest.Failure{Body: tt.body})
			res, err := b.sender.SendOTP(context.Background(), request())
			if tt.wantErr {
				checkErr(t, err, false, "message_id")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantID, res.ProviderID)
		})
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		timeout  time.Duration
		deadline time.Duration // the caller's context deadline, when set
		cancel   bool
		wantIs   error
	}{
		{name: "Timeout", timeout: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "shorter context deadline wins", timeout: time.Minute, deadline: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller cancels", timeout: time.Minute, cancel: true, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *engagelab.Config) { c.Timeout = tt.timeout })
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
				defer cancel()
			}

			b.srv.Fail(engagelabtest.Send, engagelabtest.Failure{Delay: time.Minute})
			start := time.Now()
			_, err := b.sender.SendOTP(ctx, request())
			require.Less(t, time.Since(start), 5*time.Second)
			checkErr(t, err, false, "send")
			require.ErrorIs(t, err, tt.wantIs)

			res, err := b.sender.SendOTP(context.Background(), request())
			require.NoError(t, err, "the next send goes through")

			if tt.cancel {
				return // ctx is done already
			}
			b.srv.Fail(engagelabtest.Verify, engagelabtest.Failure{Delay: time.Minute})
			cctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(cctx, tt.deadline)
				defer cancel()
			}
			ok, err := b.sender.CheckOTP(cctx, vigil.OTPCheck{ProviderID: res.ProviderID, Code: "123456"})
			require.False(t, ok)
			require.ErrorIs(t, err, tt.wantIs)
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s, err := engagelab.New(engagelab.Config{BaseURL: url, DevKey: "k", DevSecret: "hunter2", TemplateID: "t"})
	require.NoError(t, err)
	_, err = s.SendOTP(context.Background(), request())
	checkErr(t, err, false, "127.0.0.1")
	_, err = s.CheckOTP(context.Background(), vigil.OTPCheck{ProviderID: "1", Code: "123456"})
	require.Error(t, err)
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	s, err := engagelab.New(engagelab.Config{BaseURL: srv.URL + "/proxy/", DevKey: "k", DevSecret: "hunter2", TemplateID: "t"})
	require.NoError(t, err)
	_, err = s.SendOTP(context.Background(), request())
	checkErr(t, err, true, "302")
	require.Contains(t, err.Error(), "engagelab: send")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, hits)
}

func TestRefusedBeforeCalling(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	sends := []struct {
		name   string
		modify func(*vigil.OTPRequest)
	}{
		{"unknown channel", func(r *vigil.OTPRequest) { r.Channel = "pigeon" }},
		{"no recipient", func(r *vigil.OTPRequest) { r.To = "" }},
		{"line break in recipient", func(r *vigil.OTPRequest) { r.To = phone + "\r\n" }},
		{"huge recipient", func(r *vigil.OTPRequest) { r.To = strings.Repeat("1", 400) }},
	}
	for _, tt := range sends {
		r := request()
		tt.modify(&r)
		_, err := b.sender.SendOTP(ctx, r)
		checkErr(t, err, true, "engagelab:")
	}
	codes := []string{"", "12 34", "12-34", "१२३४५६", strings.Repeat("1", 33), "123456\n"}
	for _, c := range codes {
		ok, err := b.sender.CheckOTP(ctx, vigil.OTPCheck{ProviderID: "1725407449772531712", Code: c})
		require.NoError(t, err, "code %q", c)
		require.False(t, ok, "code %q", c)
	}
	ok, err := b.sender.CheckOTP(ctx, vigil.OTPCheck{Code: "123456"})
	require.Error(t, err, "no message id")
	require.False(t, ok)
	require.Empty(t, b.srv.Requests())
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r := request()
			r.To = fmt.Sprintf("+49151234567%02d", i)
			res, err := b.sender.SendOTP(context.Background(), r)
			if err != nil {
				errs <- err
				return
			}
			m, _ := b.srv.Message(res.ProviderID)
			ok, err := b.sender.CheckOTP(context.Background(), vigil.OTPCheck{ProviderID: res.ProviderID, Code: m.Code})
			if err != nil || !ok {
				errs <- fmt.Errorf("check %d: %v, %w", i, ok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Len(t, b.srv.Messages(), n)
}

func TestNew(t *testing.T) {
	t.Parallel()
	ok := engagelab.Config{DevKey: "k", DevSecret: "s", TemplateID: "t"}
	with := func(modify func(*engagelab.Config)) engagelab.Config {
		c := ok
		modify(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     engagelab.Config
		wantErr []string
	}{
		{name: "defaults", cfg: ok},
		{name: "everything", cfg: with(func(c *engagelab.Config) {
			c.BaseURL = "http://127.0.0.1:8080/engagelab/"
			c.Language = "zh_HK"
			c.Templates = map[string]string{"de": "t-de", "pt-BR": "t-pt"}
			c.Params = map[string]string{"brand": "Vigil"}
			c.Timeout = time.Second
			c.HTTPClient = http.DefaultClient
		})},
		{name: "language spelled BCP 47", cfg: with(func(c *engagelab.Config) { c.Language = "zh-CN" })},
		{name: "empty", wantErr: []string{"DevKey and DevSecret", "TemplateID"}},
		{name: "relative URL", cfg: with(func(c *engagelab.Config) { c.BaseURL = "/v1" }), wantErr: []string{"BaseURL"}},
		{name: "ftp URL", cfg: with(func(c *engagelab.Config) { c.BaseURL = "ftp://otp.example.com" }), wantErr: []string{"BaseURL"}},
		{name: "credentials in URL", cfg: with(func(c *engagelab.Config) { c.BaseURL = "https://k:s@otp.api.engagelab.cc" }), wantErr: []string{"userinfo"}},
		{name: "query in URL", cfg: with(func(c *engagelab.Config) { c.BaseURL = "https://otp.api.engagelab.cc?x=1" }), wantErr: []string{"query"}},
		{name: "colon in key", cfg: with(func(c *engagelab.Config) { c.DevKey = "a:b" }), wantErr: []string{"colon"}},
		{name: "unsupported language", cfg: with(func(c *engagelab.Config) { c.Language = "de" }), wantErr: []string{`Language "de"`}},
		{name: "bad template tag", cfg: with(func(c *engagelab.Config) { c.Templates = map[string]string{"d e": "x"} }), wantErr: []string{"not a language tag"}},
		{name: "empty template id", cfg: with(func(c *engagelab.Config) { c.Templates = map[string]string{"de": ""} }), wantErr: []string{`Templates["de"]`}},
		{name: "template twice", cfg: with(func(c *engagelab.Config) { c.Templates = map[string]string{"pt-BR": "a", "pt_br": "b"} }), wantErr: []string{"twice"}},
		{name: "empty param", cfg: with(func(c *engagelab.Config) { c.Params = map[string]string{"": "x"} }), wantErr: []string{"Params"}},
		{name: "negative timeout", cfg: with(func(c *engagelab.Config) { c.Timeout = -time.Second }), wantErr: []string{"Timeout"}},
		{name: "every problem at once", cfg: engagelab.Config{BaseURL: "nope", Language: "xx", Timeout: -1}, wantErr: []string{"BaseURL", "DevKey", "TemplateID", "Language", "Timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := engagelab.New(tt.cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "k:s@")
		})
	}
}

func TestErrorMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err           engagelab.Error
		wantPermanent bool
		wantGone      bool
		wantText      string
	}{
		{engagelab.Error{Op: "send", StatusCode: 400, Code: 5011}, true, false, "engagelab: send: EngageLab answered 400 Bad Request (code 5011: invalid number)"},
		{engagelab.Error{Op: "send", StatusCode: 400, Code: 9999}, true, false, "(code 9999)"},
		{engagelab.Error{Op: "send", StatusCode: 408}, false, false, "408 Request Timeout"},
		{engagelab.Error{Op: "check", StatusCode: 400, Code: 3003}, true, true, "already verified"},
		{engagelab.Error{Op: "check", StatusCode: 404}, true, false, "404"},
		{engagelab.Error{Op: "check", StatusCode: 500, Code: 3003}, false, false, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.wantPermanent, tt.err.Permanent())
			require.Equal(t, tt.wantGone, tt.err.Gone())
			require.Contains(t, tt.err.Error(), tt.wantText)
		})
	}
}

// checkErr asserts err is set, of the wanted kind, mentions wantIn and
// leaks neither the recipient, the credentials nor EngageLab's message.
func checkErr(t *testing.T, err error, wantPermanent bool, wantIn string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, wantPermanent, vigil.IsPermanent(err), "IsPermanent (err: %v)", err)
	msg := err.Error()
	t.Logf("error: %s", msg)
	require.Contains(t, msg, wantIn)
	for _, secret := range []string{phone, email, engagelabtest.DevKey, engagelabtest.DevSecret, "hunter2", "cannot deliver"} {
		require.NotContains(t, msg, secret)
	}
	require.False(t, errors.Is(err, context.Canceled) && wantPermanent, "a cancelled call is never permanent")
}
