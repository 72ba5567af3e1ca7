// Package kratos is Vigil's client of Ory Kratos: *Client implements
// vigil.Identities over Kratos' admin API (read an identity, mark one of
// its verifiable addresses verified, record Vigil's summary in
// metadata_public.vigil) and its public API (/sessions/whoami).
//
// # What it sends
//
// MarkVerified and SetSummary read the identity (GET
// /admin/identities/{id}) and send one JSON Patch (PATCH
// /admin/identities/{id}). Addresses are patched by index, as Kratos
// requires, in the order of that read: Kratos lists addresses by row id (a
// random UUID) and stores a changed address as a new row, so the order is
// arbitrary and can change with every write. Emails are matched
// case-insensitively; phone numbers as E.164, ignoring the spaces, dashes,
// dots and parentheses Kratos keeps when a phone trait was entered with
// them (it only trims phone traits). metadata_public is null until written,
// so the first summary adds the whole object; later ones add or replace
// the "vigil" member and leave other members alone.
//
// Whoami forwards the caller's Cookie header, X-Session-Token and
// Authorization unchanged; Kratos decides which is valid.
//
// # Errors
//
// A missing identity or address wraps vigil.ErrNotFound. Network errors,
// deadlines, 408, 429 and 5xx are plain errors: the caller retries. Any
// other answer is vigil.Permanent, since the same request cannot succeed
// later. Whoami answers EUNAUTHORIZED for Kratos' 401 and 403 and for empty
// credentials (without calling Kratos). Errors carry the HTTP status and
// Kratos' error id, never its message or reason: those can quote trait
// values. Each call is bounded by
// Config.Timeout (default 5 s) and by its context; at most 1 MiB of an
// answer is read.
//
// # Client version
//
// It uses github.com/ory/kratos-client-go v1.3.8, the newest version the
// module proxy serves (the v25 and v26 tags of the client are not
// published there). Its tests run it against a real Kratos v26.2.0
// (internal/kratostest, with KRATOS_BIN set): the identity, session and
// error answers of v26.2.0 decode with the v1.3.8 models, the JSON Patch
// is applied, whoami works with a session token and with Authorization:
// Bearer. Gaps of the generated client, covered here: it reads answers
// whole (capped by the transport), turns an empty 200 answer into a nil
// result (checked), and its whoami request has no Authorization parameter
// (the transport adds the header from the context).
//
// # Imports
//
// The module root, kratos-client-go and the standard library. It must not
// import other adapters, flows, hooks or api.
package kratos
