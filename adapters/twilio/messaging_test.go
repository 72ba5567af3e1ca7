package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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

const (
	phone = "+4915123456780"
	from  = "+15017122661"
	code  = "201346"
	text  = "Your verification code is: " + code + "\n\nIf this was not you, do nothing.\n"
)

func outbound() vigil.Outbound {
	return vigil.Outbound{ID: "msg_01HZX3", Channel: vigil.ChannelSMS, To: phone, Text: text}
}

// newSender returns a Sender for tw, with the account's Auth Token unless
// modify changes the config.
func newSender(t *testing.T, tw *twiliotest.Server, modify func(*twilio.Config)) *twilio.Sender {
	t.Helper()
	cfg := twilio.Config{
		Credentials: twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken},
		From:        from,
		BaseURL:     tw.URL(),
	}
	if modify != nil {
		modify(&cfg)
	}
	s, err := twilio.New(cfg)
	require.NoError(t, err)
	return s
}

func TestSend(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	s := newSender(t, tw, func(c *twilio.Config) {
		c.StatusCallback = "https://vigil.example.com/twilio/status"
		c.ValidityPeriod = 10 * time.Minute
	})
	res, err := s.Send(t.Context(), outbound())
	require.NoError(t, err)

	msgs := tw.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, vigil.SendResult{Provider: "twilio", ProviderID: m.SID, Status: vigil.MessageSent}, res)
	require.Equal(t, phone, m.To)
	require.Equal(t, from, m.From)
	require.Equal(t, text, m.Body)
	require.Equal(t, "https://vigil.example.com/twilio/status", m.StatusCallback)
	require.Equal(t, "600", m.ValidityPeriod)
	require.Empty(t, m.MessagingServiceSID)
	require.Equal(t, tw.AccountSID, m.Username)
	require.Equal(t, "application/x-www-form-urlencoded", m.Header.Get("Content-Type"))
	// Twilio takes no idempotency key on message creation (see doc.go).
	require.Empty(t, m.Header.Get("I-Twilio-Idempotency-Token"))
	require.Empty(t, m.Header.Get("Idempotency-Key"))
}

func TestSendOptions(t *testing.T) {
	t.Parallel()
	service := "MG" + strings.Repeat("3c", 16)
	tests := []struct {
		name         string
		modify       func(tw *twiliotest.Server, c *twilio.Config)
		wantProvider string
		wantTo       string
		wantFrom     string
		wantService  string
		wantUser     func(tw *twiliotest.Server) string
	}{
		{
			name: "API key",
			modify: func(tw *twiliotest.Server, c *twilio.Config) {
				c.AuthToken, c.APIKeySID, c.APIKeySecret = "", tw.APIKeySID, tw.APIKeySecret
			},
			wantProvider: "twilio", wantTo: phone, wantFrom: from,
			wantUser: func(tw *twiliotest.Server) string { return tw.APIKeySID },
		},
		{
			name:         "WhatsApp",
			modify:       func(_ *twiliotest.Server, c *twilio.Config) { c.WhatsApp = true },
			wantProvider: "twilio_whatsapp", wantTo: "whatsapp:" + phone, wantFrom: "whatsapp:" + from,
		},
		{
			name: "WhatsApp From already prefixed",
			modify: func(_ *twiliotest.Server, c *twilio.Config) {
				c.WhatsApp, c.From = true, "whatsapp:"+from
			},
			wantProvider: "twilio_whatsapp", wantTo: "whatsapp:" + phone, wantFrom: "whatsapp:" + from,
		},
		{
			name:         "Messaging Service",
			modify:       func(_ *twiliotest.Server, c *twilio.Config) { c.From, c.MessagingServiceSID = "", service },
			wantProvider: "twilio", wantTo: phone, wantService: service,
		},
		{
			name: "WhatsApp through a Messaging Service",
			modify: func(_ *twiliotest.Server, c *twilio.Config) {
				c.From, c.MessagingServiceSID, c.WhatsApp = "", service, true
			},
			wantProvider: "twilio_whatsapp", wantTo: "whatsapp:" + phone, wantService: service,
		},
		{
			name:         "alphanumeric sender",
			modify:       func(_ *twiliotest.Server, c *twilio.Config) { c.From = "Vigil" },
			wantProvider: "twilio", wantTo: phone, wantFrom: "Vigil",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			s := newSender(t, tw, func(c *twilio.Config) { tt.modify(tw, c) })
			res, err := s.Send(t.Context(), outbound())
			require.NoError(t, err)
			msgs := tw.Messages()
			require.Len(t, msgs, 1)
			m := msgs[0]
			require.Equal(t, tt.wantProvider, res.Provider)
			require.Equal(t, m.SID, res.ProviderID)
			require.Equal(t, tt.wantTo, m.To)
			require.Equal(t, tt.wantFrom, m.From)
			require.Equal(t, tt.wantService, m.MessagingServiceSID)
			wantUser := tw.AccountSID
			if tt.wantUser != nil {
				wantUser = tt.wantUser(tw)
			}
			require.Equal(t, wantUser, m.Username)
		})
	}
}

// TestSendDocumentedAnswers runs Send against Twilio's documented JSON,
// byte for byte, where the fake writes its own.
func TestSendDocumentedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		file     string
		wantID   string
		wantCode int
	}{
		{name: "created", status: http.StatusCreated, file: "message_created.json", wantID: "SM8d1e4b0c6f2a47e9b3c5d7f9a1e3c5b7"},
		{name: "invalid To", status: http.StatusBadRequest, file: "error_21211.json", wantCode: 21211},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile("testdata/" + tt.file)
			require.NoError(t, err)
			const account = "AC2f9c6a0e4b7d41c38a5e90b1d6f3c7a2"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/2010-04-01/Accounts/"+account+"/Messages.json" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(tt.status)
				_, _ = w.Write(body)
			}))
			t.Cleanup(srv.Close)
			s, err := twilio.New(twilio.Config{
				Credentials: twilio.Credentials{AccountSID: account, AuthToken: "secret-token"},
				From:        from,
				BaseURL:     srv.URL + "/",
			})
			require.NoError(t, err)
			res, err := s.Send(t.Context(), outbound())
			if tt.wantCode == 0 {
				require.NoError(t, err)
				require.Equal(t, tt.wantID, res.ProviderID)
				require.Equal(t, vigil.MessageSent, res.Status)
				return
			}
			checkErr(t, err, true)
			apiErr, ok := errors.AsType[*twilio.APIError](err)
			require.True(t, ok)
			require.Equal(t, tt.wantCode, apiErr.Code)
			require.Equal(t, tt.status, apiErr.StatusCode)
		})
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fault         twiliotest.Fault
		wantStatus    int
		wantCode      int
		wantRetry     time.Duration
		wantPermanent bool
	}{
		{name: "503", fault: twiliotest.Fault{Status: 503}, wantStatus: 503, wantCode: 20503},
		{name: "500", fault: twiliotest.Fault{Status: 500}, wantStatus: 500, wantCode: 20500},
		{name: "502 from a proxy", fault: twiliotest.Fault{Status: 502, RawBody: "<html>bad gateway " + phone + "</html>"}, wantStatus: 502},
		{name: "429 Retry-After", fault: twiliotest.Fault{Status: 429, RetryAfter: "30"}, wantStatus: 429, wantCode: 20429, wantRetry: 30 * time.Second},
		{name: "429 without Retry-After", fault: twiliotest.Fault{Status: 429}, wantStatus: 429, wantCode: 20429},
		{name: "queue full", fault: twiliotest.Fault{Status: 400, Code: 21611}, wantStatus: 400, wantCode: 21611},
		{name: "invalid number", fault: twiliotest.Fault{Status: 400, Code: 21211, Message: "The 'To' number " + phone + " is not a valid phone number."}, wantStatus: 400, wantCode: 21211, wantPermanent: true},
		{name: "not a mobile", fault: twiliotest.Fault{Status: 400, Code: 21614}, wantStatus: 400, wantCode: 21614, wantPermanent: true},
		{name: "unsubscribed", fault: twiliotest.Fault{Status: 400, Code: 21610}, wantStatus: 400, wantCode: 21610, wantPermanent: true},
		{name: "trial unverified", fault: twiliotest.Fault{Status: 400, Code: 21608}, wantStatus: 400, wantCode: 21608, wantPermanent: true},
		{name: "geo permissions", fault: twiliotest.Fault{Status: 400, Code: 21408}, wantStatus: 400, wantCode: 21408, wantPermanent: true},
		{name: "invalid From", fault: twiliotest.Fault{Status: 400, Code: 21212}, wantStatus: 400, wantCode: 21212, wantPermanent: true},
		{name: "From not owned", fault: twiliotest.Fault{Status: 400, Code: 21606}, wantStatus: 400, wantCode: 21606, wantPermanent: true},
		{name: "403", fault: twiliotest.Fault{Status: 403, Code: 20003}, wantStatus: 403, wantCode: 20003, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			tw.Inject(tt.fault)
			s := newSender(t, tw, nil)
			_, err := s.Send(t.Context(), outbound())
			checkErr(t, err, tt.wantPermanent, tw.AuthToken)
			apiErr, ok := errors.AsType[*twilio.APIError](err)
			require.True(t, ok, "err = %v", err)
			require.Equal(t, tt.wantStatus, apiErr.StatusCode)
			require.Equal(t, tt.wantCode, apiErr.Code)
			require.Equal(t, tt.wantRetry, apiErr.RetryAfter)
			require.Equal(t, "send message", apiErr.Op)
			require.Equal(t, 1, tw.Requests(twiliotest.EndpointMessages), "no retries inside Send")
			require.Empty(t, tw.Messages())
		})
	}
}

func TestSendRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(tw *twiliotest.Server, c *twilio.Config)
		want   int
	}{
		{"wrong Auth Token", func(_ *twiliotest.Server, c *twilio.Config) { c.AuthToken = "not-the-token" }, 20003},
		{"wrong API key secret", func(tw *twiliotest.Server, c *twilio.Config) {
			c.AuthToken, c.APIKeySID, c.APIKeySecret = "", tw.APIKeySID, "not-the-secret"
		}, 20003},
		{"other account", func(_ *twiliotest.Server, c *twilio.Config) { c.AccountSID = "AC" + strings.Repeat("0", 32) }, 20003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			s := newSender(t, tw, func(c *twilio.Config) { tt.modify(tw, c) })
			_, err := s.Send(t.Context(), outbound())
			checkErr(t, err, true, "not-the-token", "not-the-secret")
			apiErr, ok := errors.AsType[*twilio.APIError](err)
			require.True(t, ok)
			require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
			require.Equal(t, tt.want, apiErr.Code)
		})
	}
}

func TestSendRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	s, err := twilio.New(twilio.Config{
		Credentials: twilio.Credentials{AccountSID: "AC" + strings.Repeat("a", 32), AuthToken: "t"},
		From:        from,
		BaseURL:     srv.URL,
	})
	require.NoError(t, err)
	_, err = s.Send(t.Context(), outbound())
	checkErr(t, err, true)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, hits)
}

func TestSendTransportFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		timeout  time.Duration
		cancel   time.Duration // cancel the caller's context after this long
		deadline time.Duration // the caller's context deadline
		closed   bool
		wantIs   error
	}{
		{name: "Timeout", timeout: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller deadline is shorter", timeout: time.Minute, deadline: 100 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller cancels", timeout: time.Minute, cancel: 100 * time.Millisecond, wantIs: context.Canceled},
		{name: "connection refused", closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tw := twiliotest.Start(t)
			tw.Inject(twiliotest.Fault{Hang: true})
			s := newSender(t, tw, func(c *twilio.Config) { c.Timeout = tt.timeout })
			if tt.closed {
				tw.Close()
			}
			ctx := t.Context()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
				defer cancel()
			}
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := s.Send(ctx, outbound())
			require.Less(t, time.Since(start), 5*time.Second)
			checkErr(t, err, false)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
		})
	}
}

// TestSendSlowTwilioStillCreates shows why a timeout is transient and why
// its retry can send the code twice: Twilio took the message, the answer
// came too late, and message creation takes no idempotency key.
func TestSendSlowTwilioStillCreates(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	tw.Inject(twiliotest.Fault{Delay: time.Minute, Times: 1})
	impatient := newSender(t, tw, func(c *twilio.Config) { c.Timeout = time.Second })
	_, err := impatient.Send(t.Context(), outbound())
	checkErr(t, err, false)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = tw.WaitForMessages(ctx, 1)
	require.NoError(t, err, "Twilio created the message all the same")

	res, err := newSender(t, tw, nil).Send(t.Context(), outbound())
	require.NoError(t, err)
	msgs := tw.Messages()
	require.Len(t, msgs, 2)
	require.Equal(t, msgs[1].SID, res.ProviderID)
	require.Equal(t, msgs[0].Body, msgs[1].Body, "the duplicate carries the same code")
}

func TestSendRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	s := newSender(t, tw, nil)
	tests := []struct {
		name   string
		modify func(*vigil.Outbound)
	}{
		{"email channel", func(m *vigil.Outbound) { m.Channel = vigil.ChannelEmail }},
		{"no recipient", func(m *vigil.Outbound) { m.To = "" }},
		{"not E.164", func(m *vigil.Outbound) { m.To = "015123456780" }},
		{"line break", func(m *vigil.Outbound) { m.To = phone + "\n" }},
		{"already a WhatsApp address", func(m *vigil.Outbound) { m.To = "whatsapp:" + phone }},
		{"no text", func(m *vigil.Outbound) { m.Text = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := outbound()
			tt.modify(&m)
			_, err := s.Send(t.Context(), m)
			checkErr(t, err, true)
		})
	}
	t.Cleanup(func() { require.Zero(t, tw.Requests(twiliotest.EndpointMessages)) })
}

func TestSendConcurrent(t *testing.T) {
	t.Parallel()
	tw := twiliotest.Start(t)
	s := newSender(t, tw, nil)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			m := outbound()
			m.To = fmt.Sprintf("+49151%08d", i)
			res, err := s.Send(context.Background(), m)
			ids[i], errs[i] = res.ProviderID, err
		})
	}
	wg.Wait()
	seen := make(map[string]bool, n)
	for i := range n {
		require.NoError(t, errs[i])
		require.False(t, seen[ids[i]])
		seen[ids[i]] = true
	}
	require.Len(t, tw.Messages(), n)
}

func TestNew(t *testing.T) {
	t.Parallel()
	account := "AC" + strings.Repeat("a", 32)
	key := "SK" + strings.Repeat("b", 32)
	tests := []struct {
		name     string
		cfg      twilio.Config
		wantErrs []string
	}{
		{name: "auth token", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from}},
		{name: "API key and everything", cfg: twilio.Config{
			Credentials:         twilio.Credentials{AccountSID: account, APIKeySID: key, APIKeySecret: "s"},
			MessagingServiceSID: "MG" + strings.Repeat("c", 32), WhatsApp: true, From: from,
			StatusCallback: "https://vigil.example.com/cb", ValidityPeriod: time.Hour,
			BaseURL: "https://api.dublin.ie1.twilio.com", Timeout: time.Second, HTTPClient: http.DefaultClient,
		}},
		{name: "short code", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: "89757"}},
		{name: "nothing", wantErrs: []string{"AccountSID", "AuthToken, or APIKeySID", "need From"}},
		{name: "both auths", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t", APIKeySID: key, APIKeySecret: "s"}, From: from}, wantErrs: []string{"exclude"}},
		{name: "key without secret", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, APIKeySID: key}, From: from}, wantErrs: []string{"APIKeySecret"}},
		{name: "bad key SID", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, APIKeySID: "AC1", APIKeySecret: "s"}, From: from}, wantErrs: []string{"APIKeySID must be SK"}},
		{name: "SID and token swapped", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: "abcdef0123456789abcdef0123456789", AuthToken: account}, From: from}, wantErrs: []string{"AccountSID must be AC"}},
		{name: "bad From", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: "+49 151 2345"}, wantErrs: []string{"From must be"}},
		{name: "WhatsApp From not a number", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: "Vigil", WhatsApp: true}, wantErrs: []string{"with WhatsApp"}},
		{name: "whatsapp: From without WhatsApp", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: "whatsapp:" + from}, wantErrs: []string{"needs WhatsApp"}},
		{name: "bad service", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, MessagingServiceSID: "MG1"}, wantErrs: []string{"MessagingServiceSID"}},
		{name: "bad callback", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, StatusCallback: "/cb"}, wantErrs: []string{"StatusCallback"}},
		{name: "validity too long", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, ValidityPeriod: 11 * time.Hour}, wantErrs: []string{"ValidityPeriod"}},
		{name: "validity not whole seconds", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, ValidityPeriod: 1500 * time.Millisecond}, wantErrs: []string{"ValidityPeriod"}},
		{name: "base URL with credentials", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, BaseURL: "https://u:p@api.twilio.com"}, wantErrs: []string{"BaseURL"}},
		{name: "base URL not http", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, BaseURL: "ftp://api.twilio.com"}, wantErrs: []string{"BaseURL"}},
		{name: "negative timeout", cfg: twilio.Config{Credentials: twilio.Credentials{AccountSID: account, AuthToken: "t"}, From: from, Timeout: -time.Second}, wantErrs: []string{"Timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := twilio.New(tt.cfg)
			if len(tt.wantErrs) == 0 {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErrs {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

// checkErr asserts err is set, of the wanted kind, and leaks neither the
// number, the text, the code nor any of secrets.
func checkErr(t *testing.T, err error, wantPermanent bool, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, wantPermanent, vigil.IsPermanent(err), "IsPermanent (err: %v)", err)
	msg := err.Error()
	t.Logf("error: %s", msg)
	require.True(t, strings.HasPrefix(msg, "twilio: ") || strings.HasPrefix(msg, "permanent: twilio: "), msg)
	for _, secret := range append([]string{phone, strings.TrimPrefix(phone, "+"), code, "verification code"}, secrets...) {
		require.NotContains(t, msg, secret)
	}
}
