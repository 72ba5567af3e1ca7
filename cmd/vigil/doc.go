// Command vigil runs the Vigil service and its admin commands.
//
// # What lives here
//
// This is the only package that knows about configuration and wiring:
// config.go reads vigil.yml, then VIGIL_* environment variables, fills
// defaults and validates everything at once; main.go holds Main, which
// opens the store named by the DSN, builds the key ring, the delivery
// providers, the verification service and the HTTP servers, and takes
// them down again in order; cli.go is the command line (serve, migrate,
// version, verifications).
//
// # Imports
//
// Anything in the module may be imported here; nothing imports this
// package. Library packages never read the environment or flags: what
// they need is passed in from here.
package main
