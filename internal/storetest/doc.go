// Package storetest is the conformance suite every vigil.Store must pass,
// in the manner of River's riverdrivertest: one set of behaviours, written
// only against the root interfaces, run against each real store.
//
// # Use
//
// A store package runs the suite from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) vigil.Store {
//			return openFreshStore(t) // migrated, empty, closed in t.Cleanup
//		})
//	}
//
// and, for the queue (deliveries and jobs), RunQueue. Every call of open must return a
// store that shares nothing with any other call (a fresh schema, a fresh
// file), because subtests run in parallel and count audit rows, rate
// counters and jobs.
//
// # What the suite pins down beyond the doc comments of vigil.Tx
//
//   - A conflict (ErrConflict) does not spoil the transaction: the caller may
//     go on using the Tx, and commit.
//   - A panic in the InTx function rolls back and re-panics; the store
//     stays usable.
//   - Times come back in UTC, exactly at microsecond precision.
//   - Byte slices come back byte for byte; nil stays nil.
//   - Hit's expire is a cutoff: counters whose window starts before expire
//     may be deleted; those that start at or after it must keep counting.
//   - AppendAudit seals exactly what a later read returns, so re-sealing
//     the rows read back reproduces every Hash.
//   - Consume and SetVerificationState report false, not an error, for a
//     missing row; UpdateVerification, UpdateMessage and SetAddressVerified
//     return ErrNotFound for one.
//   - ListMessages is newest first, ListAudit and ListMessageAttempts
//     oldest first.
//   - A job's payload comes back equal as JSON, not necessarily byte for
//     byte. A Run given a nil JobFunc (or DeliverFunc) leaves those jobs
//     for a Run that has one.
//   - PutHookResult's ErrConflict, like every conflict, leaves the first
//     row as it was; of concurrent Puts of one trigger id exactly one wins.
//   - RotateDeviceToken, TouchDevice, RevokeDevice and UseEnrollment
//     report false, not an error, for a missing row; UpdateCredential
//     returns ErrNotFound for one. Of concurrent rotations from one token,
//     uses of one enrollment, or takes of one ceremony, exactly one wins.
//   - An empty device token hash is no token: stored, it comes back nil,
//     it is found by nothing, and an empty from in RotateDeviceToken means
//     the same as nil.
//   - FindPassedForFlow with an empty flow id finds nothing: a
//     verification made outside a login flow passes none. Of several
//     passes, the one verified last wins.
//   - ListDevices is newest first, ListCredentials oldest first. A
//     credential's device must exist.
//
// # Imports
//
// The root package, the standard library and testify only; never a store
// package, so that no store's specifics leak into what all must do.
package storetest
