package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/vigil-auth/vigil"
)

// mimeJSON is the media type of every JSON body.
const mimeJSON = "application/json"

// maxBodyBytes caps every request body on both listeners.
const maxBodyBytes = 64 << 10

// Field caps. They keep obviously bogus input away from the core; the core
// still validates meaning.
const (
	maxCodeLen    = 64
	maxCaptchaLen = 4096
	maxLocaleLen  = 35  // BCP 47's longest well-formed tags in practice
	maxAddressLen = 320 // RFC 5321 path limit, and far above any phone number
	maxTokenLen   = 256
)

func errTooLarge() error {
	return vigil.Errorf(codeTooLarge, "The request body is larger than %d bytes.", maxBodyBytes)
}

// readBody reads at most maxBodyBytes of the body. It does not rely on the
// body-limit middleware so that the decoders are safe on their own.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errTooLarge()
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge), err == nil && len(b) > maxBodyBytes:
		return nil, errTooLarge()
	case err != nil:
		// The client broke off or sent a bad chunked encoding.
		return nil, vigil.Errorf(vigil.EINVALID, "The request body could not be read.")
	}
	return b, nil
}

// mediaType is the bare media type of the request's Content-Type, lower
// case, or "" when it is missing or unparsable.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// decodeJSON is the one JSON decoder every endpoint uses. dst must be a
// pointer to a struct. It answers client mistakes with 4xx codes:
// request_too_large, unsupported_media_type, malformed_json (including
// trailing data), unknown_field and invalid_field naming the field.
func decodeJSON(r *http.Request, dst any) error {
	if mediaType(r) != mimeJSON {
		return vigil.Errorf(codeUnsupportedMedia, "Content-Type must be application/json.")
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, dst)
}

func unmarshalStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return vigil.Errorf(codeMalformedJSON, "Unexpected data after the JSON object.")
	}
	return nil
}

// jsonError translates encoding/json's errors into client-facing ones.
func jsonError(err error) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		invalid  *json.InvalidUnmarshalError
		unknownP = "json: unknown field "
	)
	switch {
	case errors.Is(err, io.EOF):
		return vigil.Errorf(codeMalformedJSON, "The request body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return vigil.Errorf(codeMalformedJSON, "The JSON in the request body ends early.")
	case errors.As(err, &syntax):
		return vigil.Errorf(codeMalformedJSON, "The request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return vigil.Errorf(codeMalformedJSON, "The request body must be a JSON object.")
		}
		return vigil.Errorf(codeInvalidField, "Field %q must be %s.", typ.Field, jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &invalid):
		return fmt.Errorf("decode request: %w", err) // our bug, not the client's
	case strings.HasPrefix(err.Error(), unknownP):
		return vigil.Errorf(codeUnknownField, "Unknown field %s.", strings.TrimPrefix(err.Error(), unknownP))
	}
	return vigil.Errorf(codeMalformedJSON, "The request body is not valid JSON.")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	}
	return "an object"
}

func invalid(format string, args ...any) error { return vigil.Errorf(vigil.EINVALID, format, args...) }

// validUUID accepts only the canonical form (36 characters, lower case),
// as the core does, so one id has one spelling.
func validUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// checkAddress applies the edge's shape rules to an address field.
func checkAddress(name, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return invalid("Field %q is required.", name)
	case len(v) > maxAddressLen:
		return invalid("Field %q is longer than %d bytes.", name, maxAddressLen)
	}
	return nil
}

func checkChannel(ch vigil.Channel) error {
	if ch == "" {
		return invalid(`Field "channel" is required.`)
	}
	if !ch.Valid() {
		return invalid(`Field "channel" must be "email" or "sms".`)
	}
	return nil
}

// codeRequest is the body of POST /self-service/verifications/{id}/code.
type codeRequest struct {
	Code string `json:"code"`
	// FlowID is the Kratos login flow the person is in.
	FlowID string `json:"flow_id"`
	// TrustDevice asks to trust the device the code is typed on.
	TrustDevice bool             `json:"trust_device"`
	DeviceName  string           `json:"device_name"`
	DeviceKind  vigil.DeviceKind `json:"device_kind"`
}

func decodeCodeRequest(r *http.Request) (codeRequest, error) {
	var req codeRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	switch {
	case strings.TrimSpace(req.Code) == "":
		return req, invalid(`Field "code" is required.`)
	case len(req.Code) > maxCodeLen:
		return req, invalid(`Field "code" is longer than %d bytes.`, maxCodeLen)
	}
	return req, nil
}

// resendRequest is the body of POST /self-service/verifications/resend:
// exactly one of id and address.
type resendRequest struct {
	ID      string        `json:"id"`
	Address string        `json:"address"`
	Channel vigil.Channel `json:"channel"`
	// CaptchaToken is the CAPTCHA widget's token; anonymous callers need
	// one when Vigil is configured to ask.
	CaptchaToken string `json:"captcha_token"`
}

// session reports whether the request names no verification and so asks
// for the logged-in user's own.
func (r resendRequest) session() bool { return r.ID == "" && r.Address == "" }

func decodeResendRequest(r *http.Request) (resendRequest, error) {
	var req resendRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	switch {
	case req.ID != "" && req.Address != "":
		return req, invalid(`Send at most one of "id" and "address".`)
	case req.Channel != "" && !req.session():
		return req, invalid(`Field "channel" goes only with a session, without "id" or "address".`)
	case req.Channel != "" && !req.Channel.Valid():
		return req, invalid(`Field "channel" must be email or sms.`)
	case req.ID != "" && !validUUID(req.ID):
		return req, invalid(`Field "id" must be a UUID.`)
	case len(req.CaptchaToken) > maxCaptchaLen:
		return req, invalid(`Field "captcha_token" is longer than %d bytes.`, maxCaptchaLen)
	case req.Address != "":
		return req, checkAddress("address", req.Address)
	}
	return req, nil
}

// startRequest is the body of POST /admin/verifications.
type startRequest struct {
	IdentityID string        `json:"identity_id"`
	Address    string        `json:"address"`
	Channel    vigil.Channel `json:"channel"`
	Method     vigil.Method  `json:"method"`
	// Locale is the language to write the message in (BCP 47); without
	// it the Accept-Language header decides, then the default.
	Locale string `json:"locale"`
}

func decodeStartRequest(r *http.Request) (startRequest, error) {
	var req startRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if req.Method == "" {
		req.Method = vigil.MethodCode
	}
	switch {
	case !validUUID(req.IdentityID):
		return req, invalid(`Field "identity_id" must be a UUID.`)
	case !req.Method.Valid():
		return req, invalid(`Field "method" must be "code" or "link".`)
	case len(req.Locale) > maxLocaleLen:
		return req, invalid(`Field "locale" is longer than %d bytes.`, maxLocaleLen)
	}
	if err := checkAddress("address", req.Address); err != nil {
		return req, err
	}
	return req, checkChannel(req.Channel)
}

// forceVerifyRequest is the body of POST
// /admin/identities/{id}/addresses/verify.
type forceVerifyRequest struct {
	Address string        `json:"address"`
	Channel vigil.Channel `json:"channel"`
}

func decodeForceVerifyRequest(r *http.Request) (forceVerifyRequest, error) {
	var req forceVerifyRequest
	if err := decodeJSON(r, &req); err != nil {
		return req, err
	}
	if err := checkAddress("address", req.Address); err != nil {
		return req, err
	}
	return req, checkChannel(req.Channel)
}

// linkRequest is the JSON body of POST /self-service/verifications/link.
type linkRequest struct {
	Token string `json:"token"`
}

// decodeLinkRequest reads the token of a link confirmation, sent either as
// the form the confirm page posts or as JSON from an app.
func decodeLinkRequest(r *http.Request) (string, error) {
	var token string
	switch mediaType(r) {
	case mimeJSON:
		var req linkRequest
		if err := decodeJSON(r, &req); err != nil {
			return "", err
		}
		token = req.Token
	case "application/x-www-form-urlencoded":
		body, err := readBody(r)
		if err != nil {
			return "", err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return "", invalid("The form in the request body is malformed.")
		}
		if len(form["token"]) > 1 {
			return "", invalid(`Send field "token" once.`)
		}
		token = form.Get("token")
	default:
		return "", vigil.Errorf(codeUnsupportedMedia, "Content-Type must be application/x-www-form-urlencoded or application/json.")
	}
	switch {
	case token == "":
		return "", invalid(`Field "token" is required.`)
	case len(token) > maxTokenLen:
		return "", vigil.Errorf(vigil.ENOTFOUND, "This link is not valid.")
	}
	return token, nil
}
