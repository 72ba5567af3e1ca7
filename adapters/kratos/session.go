package kratos

import (
	"context"
	"fmt"
	"net/http"

	"github.com/vigil-auth/vigil"
)

// Whoami asks Kratos' public API which session the credentials name
// (GET /sessions/whoami), forwarding the Cookie header, the session token
// and the Authorization header as they were presented. Kratos' 401 (no or
// an expired session) and 403 (a session below the required assurance
// level) are EUNAUTHORIZED; anything else that is not 200 is an internal
// error.
func (c *Client) Whoami(ctx context.Context, creds vigil.SessionCredentials) (*vigil.Session, error) {
	if creds.Empty() {
		return nil, errNoSession()
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if creds.Authorization != "" {
		ctx = context.WithValue(ctx, authorizationKey{}, creds.Authorization)
	}

	req := c.public.FrontendAPI.ToSession(ctx)
	if creds.Cookie != "" {
		req = req.Cookie(creds.Cookie)
	}
	if creds.SessionToken != "" {
		req = req.XSessionToken(creds.SessionToken)
	}
	s, resp, err := req.Execute() //nolint:bodyclose // the generated client reads and closes the body before it returns
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, errNoSession()
		}
		return nil, apiErrorPlain("whoami", resp, err)
	}
	if s == nil || s.Id == "" || s.Identity == nil || s.Identity.Id == "" {
		return nil, fmt.Errorf("kratos: whoami: answer without session or identity id")
	}
	// Kratos answers 401 for an inactive session; this is a second line.
	if s.Active != nil && !*s.Active {
		return nil, errNoSession()
	}
	id := &vigil.Identity{ID: s.Identity.Id, Active: s.Identity.State == nil || *s.Identity.State != "inactive"}
	for _, a := range s.Identity.VerifiableAddresses {
		ch := vigil.Channel(a.Via)
		if !ch.Valid() || a.Value == "" {
			continue
		}
		id.Addresses = append(id.Addresses, vigil.IdentityAddress{Channel: ch, Value: a.Value, Verified: a.Verified})
	}
	return &vigil.Session{ID: s.Id, IdentityID: s.Identity.Id, Identity: id}, nil
}

// errNoSession is a new value each time: callers may set fields on it.
func errNoSession() error {
	return &vigil.Error{Code: vigil.EUNAUTHORIZED, Message: "No valid session."}
}

// apiErrorPlain is apiError without the permanent/not-found distinction:
// a whoami answer other than 200, 401 or 403 is Vigil's internal error
// either way, and the request is the user's, not a job's.
func apiErrorPlain(op string, resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode < 300 {
		return fmt.Errorf("kratos: %s: %w", op, err)
	}
	return fmt.Errorf("kratos: %s: HTTP %d", op, resp.StatusCode)
}
