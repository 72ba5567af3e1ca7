package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-auth/vigil"
)

// fuzzDecoder feeds arbitrary bodies and content types to a decoder. It
// must not panic, and every error must be a client error (4xx) from the
// status table: a decode failure is never the server's fault.
func fuzzDecoder(f *testing.F, seeds []string, decode func(*http.Request) error) {
	f.Helper()
	for _, s := range seeds {
		f.Add(s, "application/json")
	}
	f.Add("token=abc", "application/x-www-form-urlencoded")
	f.Add(`{"a":1}`, "text/plain")
	f.Add(``, ``)
	f.Add(`{"a":`+strings.Repeat("[", 5000), "application/json")
	f.Add("\xff\xfe{\"code\":\"\xc3\x28\"}", "application/json; charset=utf-8")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		err := decode(r)
		if err == nil {
			return
		}
		var e *vigil.Error
		if !errors.As(err, &e) {
			t.Fatalf("decode error is not a vigil error: %v", err)
		}
		status, ok := statusByCode[e.Code]
		if !ok || status < 400 || status > 499 {
			t.Fatalf("decode error %q maps to %d, want 4xx", e.Code, status)
		}
	})
}

func FuzzDecodeCode(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"code":"123456"}`, `{"code":""}`, `{"code":123456}`, `{"code":"1","x":1}`, `{"code":null}`,
		`[]`, `null`, `{"code":"12"} {}`, `{"code":"\u0000"}`, `{"CODE":"123456"}`,
	}, func(r *http.Request) error { _, err := decodeCodeRequest(r); return err })
}

func FuzzDecodeResend(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"id":"0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e"}`, `{"address":"a@example.com"}`, `{"address":"+4915112345678"}`,
		`{"id":"x","address":"y"}`, `{}`, `{"id":1}`, `{"address":["a"]}`,
	}, func(r *http.Request) error { _, err := decodeResendRequest(r); return err })
}

func FuzzDecodeStart(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"identity_id":"0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e","address":"a@example.com","channel":"email"}`,
		`{"identity_id":"0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e","address":"+4915112345678","channel":"sms","method":"link"}`,
		`{"identity_id":"x","address":"a","channel":"fax","method":"y"}`, `{"channel":1}`, `{"method":true}`,
	}, func(r *http.Request) error { _, err := decodeStartRequest(r); return err })
}

func FuzzDecodeForceVerify(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"address":"a@example.com","channel":"email"}`, `{"address":"+4915112345678","channel":"sms"}`,
		`{"address":"","channel":""}`, `{"address":1e999}`,
	}, func(r *http.Request) error { _, err := decodeForceVerifyRequest(r); return err })
}

func FuzzDecodeLinkForm(f *testing.F) {
	for _, s := range []string{"token=abc", "token=a&token=b", "token=%zz", "token=" + strings.Repeat("x", 300), "&&==;", "token=%00"} {
		f.Add(s, "application/x-www-form-urlencoded")
	}
	f.Add(`{"token":"abc"}`, "application/json")
	f.Add(`token=abc`, "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		token, err := decodeLinkRequest(r)
		if err == nil {
			if token == "" || len(token) > maxTokenLen {
				t.Fatalf("accepted token of length %d", len(token))
			}
			return
		}
		var e *vigil.Error
		if !errors.As(err, &e) {
			t.Fatalf("decode error is not a vigil error: %v", err)
		}
		if status := statusByCode[e.Code]; status < 400 || status > 499 {
			t.Fatalf("decode error %q maps to %d, want 4xx", e.Code, status)
		}
	})
}

func FuzzDecodeCodeTrust(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"code":"123456","flow_id":"5c2b8a74-7c0e-4d0b-9a57-2f5d0c1b9e11","trust_device":true}`,
		`{"code":"123456","trust_device":true,"device_kind":"mobile_app","device_name":"Ann's phone"}`,
		`{"code":"1","trust_device":"yes"}`, `{"code":"1","device_kind":7}`, `{"code":"1","device_name":null}`,
		`{"code":"1","flow_id":{}}`, `{"code":"1","device_name":"\u202e\u0007"}`,
	}, func(r *http.Request) error { _, err := decodeCodeRequest(r); return err })
}

// The device endpoints decode into their request types with the one
// decoder; the engine checks meaning.
func FuzzDecodeDeviceRequests(f *testing.F) {
	fuzzDecoder(f, []string{
		`{"token":"abc"}`, `{"ceremony_id":"0190a6c4-7b8e-7c3a-9d2e-1f2a3b4c5d6e","token":"abc","credential":{"id":"AA"}}`,
		`{"ceremony_id":"x","credential":null}`, `{"credential":"` + strings.Repeat("A", 1000) + `"}`,
		`{"device_token":"abc"}`, `{"name":"Front desk","kind":"security_key"}`, `{"kind":"toaster"}`, `{}`,
		`{"credential":{"response":{"clientDataJSON":[1,2,3]}}}`, `{"credential":1e999}`,
	}, func(r *http.Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		for _, dst := range []any{&enrollOptionsRequest{}, &enrollFinishRequest{}, &proofFinishRequest{}, &refreshRequest{}, &enrollmentRequest{}, &struct{}{}} {
			rr := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			rr.Header.Set("Content-Type", r.Header.Get("Content-Type"))
			if err := decodeJSON(rr, dst); err != nil {
				var e *vigil.Error
				if !errors.As(err, &e) {
					return err
				}
				if status := statusByCode[e.Code]; status < 400 || status > 499 {
					return err
				}
			}
		}
		return nil
	})
}
