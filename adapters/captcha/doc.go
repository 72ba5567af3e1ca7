// Package captcha checks CAPTCHA tokens with Cloudflare Turnstile or
// hCaptcha; *Verifier implements vigil.Captcha.
//
// # Wire format
//
// Both providers have a siteverify endpoint (Turnstile:
// https://challenges.cloudflare.com/turnstile/v0/siteverify, hCaptcha:
// https://api.hcaptcha.com/siteverify; Config.URL overrides). Verify
// POSTs one application/x-www-form-urlencoded body, which both accept:
//
//	secret=<Config.Secret>&response=<token>&remoteip=203.0.113.7
//
// remoteip is sent only when the caller's remoteIP parses as an IP address
// (an "ip:port" is reduced to the IP). For hCaptcha, Config.SiteKey is sent
// as sitekey, so a token solved on another site is refused; Turnstile's
// siteverify has no such parameter. Turnstile's idempotency_key is not
// sent: Verify makes one attempt, and a key derived from the token would
// let a replayed token pass again.
//
// Both answer JSON such as
//
//	{"success": true, "challenge_ts": "2022-02-28T15:14:30.096Z",
//	 "hostname": "example.com", "error-codes": [], "action": "login"}
//	{"success": false, "error-codes": ["invalid-input-response"]}
//
// hCaptcha adds fields such as credit and, for Enterprise, score; they
// are ignored. Check returns the answer as a Result.
//
// # Results and errors
//
// An empty token is false without a call, and so is a token longer than
// the provider takes (Turnstile documents 2048 characters; hCaptcha tokens
// are capped at 32 KiB). success true is (true, nil). success false is
// (false, nil) with the error codes logged through Config.Logger, except
// for codes that blame the check rather than the token
// (missing-input-secret, invalid-input-secret, sitekey-secret-mismatch,
// internal-error): those are errors, so a wrong secret shows up as an
// outage, not as every visitor failing. Network failures, the deadline
// (Config.Timeout, default 5 s, or a shorter context deadline), 429, 5xx,
// redirects (never followed) and bodies that are not siteverify JSON are
// errors too; a 4xx that carries a siteverify answer refusing the token is
// judged by it. Errors are *Error or wrap the transport's error; none
// carries the token or the secret, and error codes, in errors and in logs,
// are filtered to code-like strings. At most 16 KiB of an answer is read.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api; internal/captchatest, its fake, is for its
// tests only.
package captcha
