// Package api is Vigil's HTTP edge for people and apps.
//
// It serves two listeners, like Kratos:
//
//   - Public: the self-service API browsers and apps call (submit a code,
//     ask for a resend, open and confirm a link), health and the OpenAPI
//     document.
//   - Admin: the admin API (start a verification, look at identities,
//     unlock, force-verify, audit trail, outbound messages), health and
//     Prometheus metrics. Everything but health, metrics and the OpenAPI
//     document needs the admin bearer key. This listener belongs on a
//     private network; /metrics has no authentication so that ordinary
//     scrapers work.
//
// # Errors
//
// Handlers have the form func(w, r) error and are adapted to chi once, so
// an error is written and logged in exactly one place. One table maps the
// vigil error codes (and the few codes only the edge uses, such as
// request_too_large) to HTTP statuses. Every error body has the shape
//
//	{"error": {"code": "wrong_code", "message": "..."}, "attempts_left": 2}
//
// with attempts_left only for wrong_code and retry_after (seconds, plus a
// Retry-After header) whenever waiting helps. Internal errors are logged
// with the request id and shown only as a generic message.
//
// # Input
//
// Every request body goes through one decoder: at most 64 KiB,
// Content-Type application/json, one JSON object with known fields of the
// right types and nothing after it. Client mistakes get a 4xx with a
// stable code, never a 500.
//
// # Logs
//
// The access log records method, path, route, status, duration and
// request id. Never the query string: a link token travels there. Never
// bodies, codes, tokens or addresses.
//
// # Imports
//
// The root package, flows and the ui package; chi, Prometheus and uuid.
// Never adapters: cmd/vigil wires the store and providers into a
// flows.Service and hands it in.
package api
