// Package flows holds Vigil's use cases: starting and resending
// verifications, checking codes, consuming links, lockout, delivery of
// messages through the durable queue, and the audit trail. It is pure logic
// over the interfaces of the root package.
//
// # Rules it enforces
//
// Codes come from crypto/rand without modulo bias and are stored only as a
// keyed MAC bound to their verification and generation; links carry 256
// random bits and are stored as SHA-256. A code is compared only after the
// attempt counter was incremented atomically, so concurrent guesses can
// never exceed the maximum, and it is consumed with a conditional update,
// so concurrent correct submissions succeed exactly once. Failed checks
// count per identity across verifications and escalate into temporary locks
// and finally a hard lock only an admin lifts. Every state change appends a
// hash-chained audit event in the same transaction.
//
// # Imports
//
// The root package, the standard library, and small pure libraries
// (phonenumbers, uuid). Never net/http, database drivers or adapters.
package flows
