// Package ui renders Vigil's self-service pages: the confirm page a
// verification link opens and the pages that tell the outcome, and the
// two trusted-device pages that run a WebAuthn ceremony (enrolling a
// device from an admin's link, and a trusted device proving itself).
//
// Pages are html/template files embedded in the binary. They load nothing
// from elsewhere: no fonts, no images, no external scripts; one small
// inline style sheet and, on the device pages only, one inline script,
// each allowed by its hash in the Content-Security-Policy and by nothing
// else. The script talks only to its own origin, on paths relative to the
// page, so the pages work under a path prefix. That keeps the pages
// working on a locked-down network and keeps a link token from leaking to
// a third party through a Referer header or a sub-resource request.
//
// # Imports
//
// The standard library only, nothing from this module: the HTTP edge (api)
// decides what to show and passes plain values in, so the templates can be
// restyled without touching the core.
package ui
