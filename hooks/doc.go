// Package hooks is the HTTP edge for Ory Kratos' web hooks: it
// authenticates the call with the shared secret (Kratos does not sign its
// calls), decodes the Jsonnet-rendered payload, asks flows for a decision
// and answers in the contract Kratos v26.2.0 really implements (KRATOS.md):
// 204 to continue; 403 with a "messages" body to interrupt a login with a
// message the user sees; never 5xx or 429 for a decision, since Kratos
// retries those and then shows only a generic error.
//
// Every answer is produced under a deadline far below Kratos' 30 s timeout,
// and the Ory-Webhook-Trigger-Id header makes each hook idempotent across
// Kratos' retries.
//
// # Imports
//
// The root package, flows and the standard library; never adapters.
package hooks
