// Package ui renders Vigil's self-service pages: the confirm page a
// verification link opens and the pages that tell the outcome.
//
// Pages are html/template files embedded in the binary. They load nothing
// from elsewhere: no scripts, no fonts, no images, one small inline style
// sheet whose hash is the only thing the Content-Security-Policy allows.
// That keeps the pages working on a locked-down network and keeps a link
// token from leaking to a third party through a Referer header or a
// sub-resource request.
//
// # Imports
//
// The standard library only, nothing from this module: the HTTP edge (api)
// decides what to show and passes plain values in, so the templates can be
// restyled without touching the core.
package ui
