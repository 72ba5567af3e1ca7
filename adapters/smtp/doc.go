// Package smtp delivers email verification messages through an SMTP
// submission server; *Sender implements vigil.Sender.
//
// # Server URL
//
//	smtp://[user[:password]@]host[:port][/?tls=starttls|none|implicit]
//	smtps://[user[:password]@]host[:port]
//
// smtp:// uses STARTTLS by default and fails (transiently) when the server
// does not offer it: a downgrade to plaintext is never silent. tls=none
// sends in the clear and must be asked for, e.g. for a local Mailpit;
// credentials are then refused unless the host is localhost, 127.0.0.1 or
// ::1. smtps:// (or tls=implicit) speaks TLS from the first byte. The port
// defaults to 587 for STARTTLS, 465 for implicit TLS and 25 for none. User
// and password are percent-encoded as in any URL; AUTH uses PLAIN, or LOGIN
// when the server offers only that. Kratos' courier parameter
// disable_starttls=true is accepted as tls=none, so a courier URL can be
// reused. Other parameters are rejected, so a typo fails at start-up.
//
// # Messages
//
// Each Send opens one connection (verification mail is low volume and a
// fresh session keeps failures independent). The message is MIME
// multipart/alternative with a text/plain and a text/html part, or
// text/plain alone when Outbound.HTML is empty; bodies are UTF-8,
// quoted-printable, so the message is 7-bit clean. The Message-ID is
// derived from Outbound.ID, so a retry carries the same Message-ID and the
// recipient's mail system can see a duplicate for what it is. It is also
// the SendResult.ProviderID.
//
// # Errors
//
// A 5xx reply is permanent (vigil.Permanent), whatever command drew it; a
// 4xx reply, a network or TLS failure, a missing STARTTLS and the deadline
// are transient. Replies come back as *ReplyError, with the recipient's
// address cut out of the server's text; neither errors nor anything else
// here carry the message text, which holds the code.
//
// The package is named after the protocol like every adapter; it imports
// net/smtp as netsmtp.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api.
package smtp
