// Package twiliotest runs an in-process fake of Twilio's HTTP APIs for
// tests: Programmable Messaging's message creation and Verify v2's
// verifications and checks, on one httptest server, in Twilio's wire
// format (form-encoded requests, basic auth, JSON answers and Twilio's
// error shape), so the production adapter runs unchanged against it:
//
//	tw := twiliotest.Start(t)
//	sender, err := twilio.New(twilio.Config{
//		Credentials: twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken},
//		From:        "+15005550006",
//		BaseURL:     tw.URL(),
//	})
//	...
//	msgs := tw.Messages() // To, From, Body, StatusCallback, SID
//
// # What it checks
//
// Basic auth with the account SID and Auth Token or the API key (401,
// error 20003, otherwise); the account and Verify Service SIDs in the path
// (404, 20404); and the parameters, with Twilio's codes: 21604 and 21211
// for a missing or invalid To, 21603 without From or MessagingServiceSid,
// 21212 for an invalid From, 21910 for a WhatsApp/SMS mismatch, 21602 for
// no body, 21617 over 1600 characters, 21609 for a bad StatusCallback.
// Created messages get SM SIDs and a 201 with Twilio's Message resource.
//
// Verify makes six-digit codes that tests read with Code or Verification.
// A second send to a pending recipient resends the same code under the
// same SID, up to 5 sends (then 429, 60203); a check answers 200 with
// "approved" or "pending", 404 (20404) once the verification is approved,
// expired (10 minutes, or Expire) or unknown, and 429 (60202) after 5
// checks. An unsupported Locale answers 404, as Twilio documents.
//
// # Faults
//
// Inject makes matching requests (by endpoint and recipient, for a number
// of times) answer an error with a Twilio code and Retry-After (503, 429,
// 400/21211) or a proxy's HTML, answer late, or hang until the client
// gives up. A fault without a status lets the request take effect and
// only holds the answer back: a message Twilio created although the client
// timed out. Requests counts what reached each endpoint.
//
// # Status callbacks
//
// Sign computes X-Twilio-Signature; Post sends a signed form the way
// Twilio does; SendStatus posts a message's status to its StatusCallback,
// so a handler can be tested end to end.
//
// The server is safe for concurrent use and cheap: one mutex around plain
// slices and maps, no goroutines of its own.
//
// # Imports
//
// Standard library only. It must not import the adapters (the Twilio
// adapter included: the fake is an independent implementation of the wire
// format), flows or api. It is test-only support: nothing outside _test.go
// files may import it.
package twiliotest
