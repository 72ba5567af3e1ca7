package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
)

// Open returns a migrated, empty store that shares nothing with any other
// store it returned, and closes it in t.Cleanup.
type Open = func(t *testing.T) vigil.Store

// Run runs the store conformance suite. Subtests run in parallel, each on
// its own store from open.
func Run(t *testing.T, open Open) {
	t.Helper()
	for _, g := range []struct {
		name string
		run  func(*testing.T, Open)
	}{
		{"Address", testAddress},
		{"Verification", testVerification},
		{"Message", testMessage},
		{"InsertJob", testInsertJob},
		{"Lockout", testLockout},
		{"Hit", testHit},
		{"Audit", testAudit},
		{"HookResult", testHookResult},
		{"InTx", testInTx},
		{"RoundTrip", testRoundTrip},
		{"Device", testDevice},
		{"Enrollment", testEnrollment},
		{"Ceremony", testCeremony},
		{"Credential", testCredential},
	} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// both runs body twice, each time on a fresh store: once against the Store
// itself (every call on its own) and once inside a single InTx, since the
// core uses the Tx methods both ways.
func both(t *testing.T, name string, open Open, body func(t *testing.T, tx vigil.Tx)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		t.Run("Store", func(t *testing.T) {
			t.Parallel()
			body(t, open(t))
		})
		t.Run("InTx", func(t *testing.T) {
			t.Parallel()
			s := open(t)
			err := s.InTx(t.Context(), func(tx vigil.Tx) error {
				body(t, tx)
				return nil
			})
			require.NoError(t, err)
		})
	})
}

// concurrently runs fn n times at once, released together so that they
// contend, and returns each call's error by index.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// inTxOrNot runs fn in its own InTx for even i and against the Store for
// odd i, so concurrency tests cover both paths.
func inTxOrNot(ctx context.Context, s vigil.Store, i int, fn func(tx vigil.Tx) error) error {
	if i%2 == 0 {
		return s.InTx(ctx, fn)
	}
	return fn(s)
}

// now is the wall clock as the core sees it: UTC, microseconds.
func now() time.Time { return vigil.SystemClock{}.Now() }

func newID() string { return rand.Text() }

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand docs)
	return b
}

const (
	maskedEmail = "a***@example.com"
	outcomeSent = "sent"
)

func newAddress(identityID string, ch vigil.Channel) *vigil.Address {
	t := now()
	return &vigil.Address{
		ID:         newID(),
		IdentityID: identityID,
		Channel:    ch,
		Index:      randBytes(32),
		Sealed:     randBytes(45),
		Masked:     maskedEmail,
		CreatedAt:  t,
		UpdatedAt:  t,
	}
}

func newVerification(a *vigil.Address) *vigil.Verification {
	t := now()
	return &vigil.Verification{
		ID:          newID(),
		IdentityID:  a.IdentityID,
		AddressID:   a.ID,
		Channel:     a.Channel,
		Method:      vigil.MethodCode,
		Purpose:     vigil.PurposeVerifyAddress,
		State:       vigil.StatePending,
		SecretHash:  randBytes(32),
		Generation:  1,
		MaxAttempts: 3,
		ExpiresAt:   t.Add(15 * time.Minute),
		LastSentAt:  new(t),
		SendCount:   1,
		CreatedAt:   t,
		UpdatedAt:   t,
	}
}

func newMessage(v *vigil.Verification) *vigil.Message {
	t := now()
	return &vigil.Message{
		ID:              newID(),
		VerificationID:  v.ID,
		IdentityID:      v.IdentityID,
		Channel:         v.Channel,
		Generation:      v.Generation,
		RecipientIndex:  randBytes(32),
		RecipientSealed: randBytes(45),
		RecipientMasked: maskedEmail,
		SecretSealed:    randBytes(31),
		Status:          vigil.MessageQueued,
		NextAttemptAt:   t,
		ExpiresAt:       t.Add(15 * time.Minute),
		CreatedAt:       t,
		UpdatedAt:       t,
	}
}

// chain inserts an address, a verification of it and a message for it.
func chain(t *testing.T, tx vigil.Tx, identityID string) (*vigil.Verification, *vigil.Message) {
	t.Helper()
	a := newAddress(identityID, vigil.ChannelEmail)
	require.NoError(t, tx.InsertAddress(t.Context(), a))
	v := newVerification(a)
	require.NoError(t, tx.InsertVerification(t.Context(), v))
	m := newMessage(v)
	require.NoError(t, tx.InsertMessage(t.Context(), m))
	return v, m
}

// testSeal is a stand-in for the core's keyed chain hash. It covers every
// field, so a store that returns anything other than what it sealed breaks
// the chain in the test as it would in production.
func testSeal(prev []byte, e *vigil.AuditEvent) []byte {
	h := sha256.New()
	h.Write(prev)
	fmt.Fprintf(h, "|%d|%q|%d|%q|%q|%q|%q", e.Seq, e.ID, e.At.UnixNano(), e.Type, e.IdentityID, e.VerificationID, e.Actor)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "|%q=%q", k, e.Data[k])
	}
	return h.Sum(nil)
}

func newEvent(identityID string) *vigil.AuditEvent {
	return &vigil.AuditEvent{
		ID:         newID(),
		At:         now(),
		Type:       vigil.EventVerificationStarted,
		IdentityID: identityID,
		Actor:      "kratos",
		Data:       map[string]string{"channel": "email", "masked": maskedEmail},
	}
}

// soleWinner returns the one of n racers for which won holds, and fails
// the test unless exactly one does.
func soleWinner(t *testing.T, racers string, n int, won func(i int) bool) int {
	t.Helper()
	winner := -1
	for i := range n {
		if won(i) {
			require.Equal(t, -1, winner, "%s %d and %d both won", racers, winner, i)
			winner = i
		}
	}
	require.NotEqual(t, -1, winner, "none of the %s won", racers)
	return winner
}
