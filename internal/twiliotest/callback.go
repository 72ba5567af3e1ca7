package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Twilio signs webhooks with HMAC-SHA1; the fake must do the same.
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// callbackClient posts callbacks; like Twilio, it follows no redirects
// and gives up after 15 seconds.
var callbackClient = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Sign returns the X-Twilio-Signature Twilio sends with a POST of params
// to fullURL: base64 of HMAC-SHA1, keyed with the Auth Token, over the URL
// followed by each parameter's name and value, sorted by name (a repeated
// name's values sorted too).
//
// It is written apart from the adapter's check on purpose, so that each
// tests the other against Twilio's documented example.
func Sign(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	for _, name := range slices.Sorted(maps.Keys(params)) {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	_, _ = io.WriteString(mac, b.String())
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Callback is one webhook request, posted the way Twilio posts it.
type Callback struct {
	// URL is where the request goes.
	URL string
	// SignURL is the URL the signature covers; empty means URL. Twilio
	// signs the URL it was given, so a test whose handler sits behind a
	// rewriting proxy, or that wants the port-less form Twilio signs for
	// https, sets it.
	SignURL   string
	AuthToken string
	Params    url.Values
}

// Post sends c as Twilio would: a form-encoded POST with
// X-Twilio-Signature, I-Twilio-Idempotency-Token and Twilio's User-Agent.
// It returns the handler's status code.
func Post(ctx context.Context, c Callback) (int, error) {
	signURL := c.SignURL
	if signURL == "" {
		signURL = c.URL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(c.Params.Encode()))
	if err != nil {
		return 0, fmt.Errorf("twiliotest: callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("X-Twilio-Signature", Sign(c.AuthToken, signURL, c.Params))
	req.Header.Set("I-Twilio-Idempotency-Token", randomHex())
	resp, err := callbackClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("twiliotest: post callback: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// StatusParams returns the form Twilio posts to a message's StatusCallback
// when its status becomes status ("sent", "delivered", "undelivered",
// "failed", "read"); errorCode is added when non-zero, as Twilio does for
// undelivered and failed.
func (s *Server) StatusParams(sid, status string, errorCode int) (url.Values, error) {
	m, ok := s.Message(sid)
	if !ok {
		return nil, fmt.Errorf("twiliotest: no message %s", sid)
	}
	p := url.Values{}
	p.Set("AccountSid", m.AccountSID)
	p.Set("ApiVersion", apiVersion)
	p.Set("From", m.From)
	p.Set("MessageSid", m.SID)
	p.Set("MessageStatus", status)
	p.Set("SmsSid", m.SID)
	p.Set("SmsStatus", status)
	p.Set("To", m.To)
	if m.From == "" {
		p.Del("From")
	}
	if m.MessagingServiceSID != "" {
		p.Set("MessagingServiceSid", m.MessagingServiceSID)
	}
	if to, ok := strings.CutPrefix(m.To, "whatsapp:"); ok {
		p.Set("ChannelPrefix", "whatsapp")
		p.Set("ChannelToAddress", to)
	}
	if errorCode != 0 {
		p.Set("ErrorCode", strconv.Itoa(errorCode))
	}
	if status == "delivered" || status == "undelivered" {
		p.Set("RawDlrDoneDate", time.Now().UTC().Format("0601021504"))
	}
	return p, nil
}

// SendStatus posts a signed status callback for message sid to the
// StatusCallback it was sent with, and returns the handler's status code.
func (s *Server) SendStatus(ctx context.Context, sid, status string, errorCode int) (int, error) {
	p, err := s.StatusParams(sid, status, errorCode)
	if err != nil {
		return 0, err
	}
	m, _ := s.Message(sid)
	if m.StatusCallback == "" {
		return 0, errors.New("twiliotest: message " + sid + " has no StatusCallback")
	}
	return Post(ctx, Callback{URL: m.StatusCallback, AuthToken: s.AuthToken, Params: p})
}
