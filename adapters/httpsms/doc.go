// Package httpsms delivers SMS through any HTTP endpoint that accepts the
// JSON body Ory Kratos' courier sends to an HTTP SMS channel; *Sender
// implements vigil.Sender.
//
// # Wire format
//
// One request per message, by default POST, Content-Type application/json:
//
//	{
//	   "body": "Your verification code is: 201346\n",
//	   "to": "+4915123456780"
//	}
//
// The body has the keys and the layout of what Kratos' Jsonnet renders for
// `function(ctx) { to: ctx.recipient, body: ctx.body }` (keys sorted,
// three-space indent, a final newline; for ordinary text the same bytes),
// so a gateway or relay written for the Kratos courier takes Vigil's
// messages unchanged. Each request also
// carries Idempotency-Key: the Outbound ID, the same on every retry of one
// message, so an endpoint that honours it does not send twice. Optional
// basic auth, a bearer token and extra headers come from Config.
//
// # Results and errors
//
// A 2xx answer is success; when its body is a JSON object with "id",
// "message_id" or "sid", that value becomes SendResult.ProviderID. 408, 429
// and 5xx answers, network failures and the deadline are transient; any
// other answer (other 4xx, unexpected 3xx or 1xx) is permanent. Errors are
// *StatusError and carry the status and Retry-After only: the response body
// is not included, since providers echo the number and the text back, and
// the text holds the code. At most 64 KiB of a response is read.
//
// # Imports
//
// The module root and the standard library only. It must not import other
// adapters, flows, hooks or api.
package httpsms
