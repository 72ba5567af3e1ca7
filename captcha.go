package vigil

import "context"

// Captcha checks a token a browser got from a CAPTCHA widget (Cloudflare
// Turnstile, hCaptcha) before Vigil sends a code for an anonymous caller.
type Captcha interface {
	// Verify reports whether token is valid, for the client at remoteIP
	// when it is known. An error means the service could not answer.
	Verify(ctx context.Context, token, remoteIP string) (bool, error)
}
