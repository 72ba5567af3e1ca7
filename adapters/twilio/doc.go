// Package twilio delivers codes through Twilio, speaking its HTTP APIs
// directly (no SDK): *Sender implements vigil.Sender with Programmable
// Messaging (SMS or WhatsApp), *Verify implements vigil.OTPSender with
// Verify v2, and *Callbacks checks and reads the status callbacks Twilio
// posts about messages a Sender sent.
//
// # Credentials
//
// Every request uses HTTP basic authentication: the account SID and its
// Auth Token, or an API key's SID (SK…) and secret, with the account SID
// in the path. API keys can only authenticate requests to Twilio; status
// callbacks are signed with the account's Auth Token, so Callbacks needs
// the Auth Token even when a Sender uses an API key.
//
// # Programmable Messaging
//
// Send posts one form to {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json:
//
//	To=+4915123456780&From=+15017122661&Body=…&StatusCallback=https://…
//
// with MessagingServiceSid instead of (or beside) From when configured,
// and ValidityPeriod when set. With Config.WhatsApp, To and From carry
// Twilio's "whatsapp:" prefix and the provider is "twilio_whatsapp"
// instead of "twilio". A business-initiated WhatsApp message outside a
// 24-hour session must match an approved template, or Twilio fails it
// later (63016, reported through the status callback).
//
// Twilio answers 201 with the message as JSON; its "sid" (SM…) becomes
// SendResult.ProviderID and the status is always vigil.MessageSent:
// "queued" or "accepted" means Twilio took the message, never that it was
// delivered. Delivery arrives later through the status callback.
//
// Twilio's message creation takes no idempotency key: the OpenAPI
// description of the 2010-04-01 API has none for Messages.json (only for
// call payments and user-defined messages), and the header
// I-Twilio-Idempotency-Token is one Twilio sends on its webhooks, not one
// it reads. So Outbound.ID is not sent, and a request that timed out after Twilio took
// it can, on retry, deliver the code twice. Both messages carry the same
// code (the core seals the secret), so the duplicate is a nuisance, not a
// second valid code. Set ValidityPeriod so a message stuck in Twilio's
// queue is dropped rather than delivered late.
//
// # Verify
//
// SendOTP posts To, Channel and Locale to
// {BaseURL}/v2/Services/{ServiceSID}/Verifications (VerifyConfig.BaseURL,
// default https://verify.twilio.com); Twilio makes the code, and the answer's "sid" (VE…) is the ProviderID. vigil.ChannelSMS
// uses VerifyConfig.SMSChannel ("sms", "whatsapp" or "call"),
// vigil.ChannelEmail uses "email". Twilio answers an unsupported Locale with
// 404 and advises asking again without it; SendOTP does, once. Verify
// takes no idempotency key either (OTPRequest.ID is not sent), but while a
// verification to a recipient is pending Twilio resends the same code
// under the same SID, so a retried send never changes the code.
//
// CheckOTP posts VerificationSid (or To, without a SID) and Code to
// …/VerificationCheck. "approved" is a match; "pending" is a wrong code;
// 404 (error 20404: Twilio deletes a verification once it expired, was
// approved or ran out of checks) and 429 with error 60202 (too many checks)
// are (false, nil), as vigil.OTPSender asks.
//
// # Errors
//
// Errors are *APIError (HTTP status, Twilio's error code, Retry-After) or
// transport errors. Twilio's error "message" is dropped, since it quotes
// the phone number; errors never hold the number, the text or the
// credentials. Timeouts, transport failures, 408, 429 and 5xx are
// transient, as are these codes whatever their status: 20429 (too many
// requests), 21611 (the sender's queue is full), 60203 and 60212 (Verify's
// per-recipient send and concurrency limits). 60203 clears when Twilio's
// verification expires (10 minutes by default); Vigil's own resend limits
// should keep it from happening, and the message's expiry bounds the
// retries when it does. Every other answer is permanent (vigil.Permanent):
// 21211 invalid number, 21614 not a mobile number, 21610 unsubscribed
// recipient, 21608 unverified number on a trial account, 21408 region not
// enabled, 21212 and 21606 bad sender, 20003 and 401 bad credentials,
// 60200 invalid parameter, 60205 landline, 60410 and 60605 fraud and geo
// blocks, and unexpected redirects.
//
// Each request has a deadline (Timeout, default 10s; a shorter context
// deadline wins), and at most 64 KiB of an answer is read. The default
// HTTP client does not follow redirects.
//
// # Status callbacks
//
// Twilio posts application/x-www-form-urlencoded forms with MessageSid,
// MessageStatus, ErrorCode, AccountSid, From, To and more, and signs each
// with X-Twilio-Signature: base64(HMAC-SHA1(AuthToken, URL + every POST
// parameter's name and value, sorted by name)). Twilio documents that it
// drops credentials from the URL, and the port from https URLs, before
// signing; its own libraries accept the URL with and without the port.
// Callbacks.Parse caps the body, checks the signature in constant time
// against the URL as given and those variants, and maps the status: sent
// → MessageSent; delivered and read → MessageDelivered; undelivered and
// partially_delivered → MessageUndelivered; failed and canceled →
// MessageFailed. ErrorCode is kept for undelivered and failed reports.
// queued, accepted, scheduled, sending and inbound statuses are no news
// (ok false). Provider is "twilio_whatsapp" for WhatsApp messages, so it
// matches the SendResult. Only the Auth Token signs callbacks: a
// deployment that sends with an API key still configures the Auth Token
// for Callbacks, and SecondaryAuthToken covers a token rotation.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api; its tests use internal/twiliotest, a fake
// of Twilio's API.
package twilio
