// Package authz is net/http middleware for Go applications behind Ory
// Kratos and Vigil: it lets a request through only when it carries the
// Kratos session of a verified identity, like Vigil's forward-auth
// endpoint does for nginx, Traefik or Oathkeeper.
//
// For each request the middleware asks Vigil's public listener
// (GET {VigilURL}/authz), forwarding the request's Cookie, X-Session-Token
// and Authorization headers, and acts on the answer:
//
//   - 200 with X-Vigil-Identity: the identity id goes into the request
//     context (see IdentityID) and into the request's X-Vigil-Identity
//     header, replacing whatever the client sent there, and the request
//     goes on to the next handler;
//   - 401 (no session) or 403 (verification_required): Vigil's status and
//     JSON body go back to the client unchanged;
//   - anything else (Vigil down, slow, answering 5xx or nonsense): 503 with
//     a JSON error. The middleware fails closed; it never lets a request
//     through that Vigil did not allow.
//
// With Config.CacheTTL set, allowed answers are kept that long per set of
// credentials, so a burst of requests costs one call to Vigil; refusals are
// never cached, so a person who just verified gets in at once. A revoked
// session keeps access until its cached answer expires.
//
// # Imports
//
// Standard library only, and no other package of this module, so that
// applications can use it without pulling in Vigil's dependencies.
package authz
