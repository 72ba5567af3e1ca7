// Package captchatest runs a fake CAPTCHA siteverify endpoint for tests.
//
// The fake is an httptest.Server that answers like Cloudflare Turnstile's
// or hCaptcha's siteverify (WithFlavor), so the production client in
// adapters/captcha runs unchanged against it:
//
//	srv := captchatest.Start(t)
//	srv.AddToken("XXXX.DUMMY.TOKEN")
//	v, err := captcha.New(captcha.Config{Provider: captcha.Turnstile, Secret: captchatest.Secret, URL: srv.URL()})
//	ok, err := v.Verify(ctx, "XXXX.DUMMY.TOKEN", "203.0.113.7") // true, once
//	call := srv.Calls()[0] // call.Secret, call.Response, call.RemoteIP
//
// # What it does
//
// POST /siteverify takes a form body (secret, response, remoteip, and
// sitekey for hCaptcha or idempotency_key for Turnstile; Turnstile also
// takes the same fields as JSON) and answers 200 with {"success": bool,
// "error-codes": [...]} plus challenge_ts, hostname and action when the
// token is good. Tokens registered with AddToken pass once; a second check
// fails with timeout-or-duplicate (Turnstile, unless it repeats the
// idempotency_key of the check that spent the token) or
// invalid-or-already-seen-response (hCaptcha). A missing or wrong secret,
// a missing or unknown token and a mismatched sitekey get the providers'
// codes (missing-input-secret, invalid-input-secret, missing-input-response,
// invalid-input-response, sitekey-secret-mismatch); a malformed body gets
// bad-request.
//
// Fail queues answers for the next requests: a status, a raw body, or a
// delay. Calls records every request, whatever the answer.
//
// # Imports
//
// Standard library only. It is test support: nothing outside _test.go
// files may import it, and it must not import the adapters, flows or api.
package captchatest
