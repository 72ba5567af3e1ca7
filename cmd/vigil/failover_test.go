package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/internal/engagelabtest"
	"github.com/vigil-auth/vigil/internal/twiliotest"
)

// gateway is an HTTP SMS gateway that records what it is asked to send.
type gateway struct {
	mu     sync.Mutex
	bodies []string
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		To   string `json:"to"`
		Body string `json:"body"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&p); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, p.Body)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"gw-1"}`)
}

func (g *gateway) sent() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.bodies...)
}

// smsChain opens a Main whose SMS chain is built from cfg as vigil serve
// builds it.
func smsChain(t *testing.T, mod func(c *Config)) *Main {
	t.Helper()
	c := testConfig(t)
	c.Verification.EnableSMSVerification = true
	mod(&c)
	require.NoError(t, c.Validate())
	m := NewMain(c, &bytes.Buffer{}, &bytes.Buffer{})
	require.NoError(t, m.Open(context.Background(), OpenOptions{Migrate: true}))
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// deliverAll runs the delivery job of the identity's messages once.
func deliverAll(t *testing.T, m *Main, identity string) []vigil.MessageStatus {
	t.Helper()
	ctx := context.Background()
	msgs, err := m.Service.Messages(ctx, "", identity, 10)
	require.NoError(t, err)
	var out []vigil.MessageStatus
	for _, msg := range msgs {
		_, err := m.Service.Deliver(ctx, msg.ID)
		require.NoError(t, err)
		after, err := m.Service.Messages(ctx, "", identity, 10)
		require.NoError(t, err)
		out = append(out, after[0].Status)
	}
	return out
}

// TestFailoverThroughRealProviders runs vigil.yml's provider chain through
// the real adapters against fakes of their wire protocols.
func TestFailoverThroughRealProviders(t *testing.T) {
	t.Parallel()
	const number = "+4915123456789"
	twilioChain := func(tw *twiliotest.Server, gw string) func(c *Config) {
		return func(c *Config) {
			c.Delivery.SMS.Providers = []string{providerTwilio, providerHTTP}
			c.Delivery.SMS.Twilio = TwilioConfig{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, From: "+15005550006", BaseURL: tw.URL()}
			c.Delivery.SMS.HTTP = HTTPSMSConfig{URL: gw}
		}
	}
	cases := []struct {
		name     string
		fault    twiliotest.Fault
		failover bool
		status   vigil.MessageStatus
	}{
		{"Twilio answers 503", twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: http.StatusServiceUnavailable}, true, vigil.MessageSent},
		{"Twilio answers 429", twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: http.StatusTooManyRequests, RetryAfter: "1"}, true, vigil.MessageSent},
		{"Twilio times out", twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: http.StatusServiceUnavailable, Hang: true}, true, vigil.MessageSent},
		{"invalid number: permanent, no failover", twiliotest.Fault{Endpoint: twiliotest.EndpointMessages, Status: http.StatusBadRequest, Code: 21211}, false, vigil.MessageFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fault.Hang && testing.Short() {
				t.Skip("waits for the provider timeout (10s)")
			}
			tw := twiliotest.Start(t)
			gw := &gateway{}
			srv := httptest.NewServer(gw)
			t.Cleanup(srv.Close)
			tw.Inject(tc.fault)
			m := smsChain(t, twilioChain(tw, srv.URL))

			identity := "0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"
			_, err := m.Service.Start(context.Background(), startRequestSMS(identity, number))
			require.NoError(t, err)
			require.Equal(t, []vigil.MessageStatus{tc.status}, deliverAll(t, m, identity))

			if !tc.failover {
				require.Empty(t, gw.sent(), "a permanent failure is not passed on")
				msgs, err := m.Service.Messages(context.Background(), "", identity, 1)
				require.NoError(t, err)
				require.Contains(t, msgs[0].LastError, "21211")
				return
			}
			require.Len(t, gw.sent(), 1)
			code := sixDigits.FindString(gw.sent()[0])
			require.NotEmpty(t, code)
			msgs, err := m.Service.Messages(context.Background(), "", identity, 1)
			require.NoError(t, err)
			require.Equal(t, providerHTTP, msgs[0].Provider)
			require.Len(t, msgs[0].History, 2)
			require.Equal(t, providerTwilio, msgs[0].History[0].Provider)
			require.Equal(t, "transient_error", msgs[0].History[0].Outcome)
			// Twilio may have taken the message before it timed out:
			// whatever it got carries the same code.
			for _, tm := range tw.Messages() {
				require.Equal(t, code, sixDigits.FindString(tm.Body))
			}
		})
	}

	t.Run("EngageLab makes the code; Vigil checks it through EngageLab", func(t *testing.T) {
		t.Parallel()
		el := engagelabtest.Start(t)
		m := smsChain(t, func(c *Config) {
			c.Delivery.SMS.Provider = providerEngageLab
			c.Delivery.SMS.EngageLab = EngageLabConfig{DevKey: engagelabtest.DevKey, DevSecret: engagelabtest.DevSecret, TemplateID: engagelabtest.TemplateID, BaseURL: el.URL()}
		})
		identity := "0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6f"
		st, err := m.Service.Start(context.Background(), startRequestSMS(identity, number))
		require.NoError(t, err)
		require.Equal(t, []vigil.MessageStatus{vigil.MessageSent}, deliverAll(t, m, identity))
		msgs, err := m.Service.Messages(context.Background(), "", identity, 1)
		require.NoError(t, err)
		require.Equal(t, providerEngageLab, msgs[0].Provider)
		sent := el.Messages()
		require.Len(t, sent, 1)
		code := el.Code(t, sent[0].ID)

		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		_, err = m.Service.CheckCode(context.Background(), st.ID, wrong, "")
		require.Equal(t, vigil.EWRONGCODE, vigil.ErrorCode(err))
		v, err := m.Service.CheckCode(context.Background(), st.ID, code, "")
		require.NoError(t, err)
		require.Equal(t, vigil.StateVerified, v.State)
	})
}

func startRequestSMS(identity, number string) flows.StartRequest {
	return flows.StartRequest{IdentityID: identity, Address: number, Channel: vigil.ChannelSMS, Method: vigil.MethodCode, Actor: "admin"}
}
