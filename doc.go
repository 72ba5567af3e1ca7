// Package vigil is the domain vocabulary of Vigil, a verification and
// trusted-device service that sits beside Ory Kratos.
//
// It holds the values the rest of the module speaks in (Address,
// Verification, Message, AuditEvent, Lockout), the single error type with its
// stable codes, and the interfaces the core needs from the outside world
// (Store, Tx, Queue, Channel, Clock).
//
// # Imports
//
// Standard library only. Everything that knows about HTTP, SQL or a provider
// lives in api/, hooks/ or adapters/ and depends on this package, never the
// other way round.
package vigil
