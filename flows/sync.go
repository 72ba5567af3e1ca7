package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-auth/vigil"
)

// JobKratosSummary records the identity's summary alone at Kratos (soft
// mode: metadata_public.vigil.verified=false right after registration).
const JobKratosSummary = "kratos_summary"

// JobKratosSync marks a verified address verified at Kratos and records
// the identity's summary in metadata_public.vigil.
const JobKratosSync = "kratos_sync"

const syncTimeout = 10 * time.Second

type syncPayload struct {
	IdentityID string `json:"identity_id"`
	AddressID  string `json:"address_id"`
}

// queueSync queues the sync of a verified address in tx, when Vigil runs
// beside Kratos. Through the durable queue, an outage of Kratos' admin API
// delays the sync but never loses it.
func (s *Service) queueSync(ctx context.Context, tx vigil.Tx, identityID, addressID string, now time.Time) error {
	return s.insertSyncJob(ctx, tx, JobKratosSync, syncPayload{IdentityID: identityID, AddressID: addressID}, now)
}

// insertSyncJob queues a job for Kratos in tx; without Kratos there is
// nothing to tell.
func (s *Service) insertSyncJob(ctx context.Context, tx vigil.Tx, kind string, p syncPayload, now time.Time) error {
	if s.ids == nil {
		return nil
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", kind, err)
	}
	if err := tx.InsertJob(ctx, &vigil.Job{ID: newID(), Kind: kind, Payload: payload, RunAt: now}); err != nil {
		return fmt.Errorf("queue %s job: %w", kind, err)
	}
	return nil
}

// syncJob reads a Kratos job's payload; ok is false when the job is to be
// dropped (malformed) and err is set when no identity provider is there to
// run it (the queue keeps it for a process that has one).
func (s *Service) syncJob(ctx context.Context, job *vigil.Job) (p syncPayload, ok bool, err error) {
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		s.log.ErrorContext(ctx, "malformed job; dropped", "job_id", job.ID, "kind", job.Kind, "error", err)
		return p, false, nil
	}
	if s.ids == nil {
		return p, false, fmt.Errorf("%s job: no identity provider configured", job.Kind)
	}
	return p, true, nil
}

// RunJob is the vigil.JobFunc the queue runs.
func (s *Service) RunJob(ctx context.Context, job *vigil.Job) (time.Time, error) {
	switch job.Kind {
	case JobKratosSync:
		return time.Time{}, s.sync(ctx, job)
	case JobKratosSummary:
		return time.Time{}, s.syncSummary(ctx, job)
	case JobAddressNotice, JobDeviceNotice:
		return time.Time{}, s.notice(ctx, job)
	}
	s.log.ErrorContext(ctx, "unknown job kind; dropped", "job_id", job.ID, "kind", job.Kind)
	return time.Time{}, nil
}

func (s *Service) sync(ctx context.Context, job *vigil.Job) error {
	p, ok, err := s.syncJob(ctx, job)
	if !ok {
		return err
	}
	addr, err := s.store.GetAddress(ctx, p.AddressID)
	if errors.Is(err, vigil.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read address: %w", err)
	}
	value, err := s.keys.Open(addr.Sealed)
	if err != nil {
		s.log.ErrorContext(ctx, "address cannot be opened with the current keys; sync dropped", "address_id", addr.ID)
		return nil
	}
	summary, err := s.summary(ctx, p.IdentityID)
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	err = s.ids.MarkVerified(callCtx, p.IdentityID, addr.Channel, string(value), summary)
	switch {
	case errors.Is(err, vigil.ErrNotFound):
		// The identity or the address is gone from Kratos (deleted, or an
		// address an admin verified that Kratos never had): nothing to do.
		s.log.InfoContext(ctx, "sync skipped: identity or address not at Kratos", "identity_id", p.IdentityID, "address_id", addr.ID)
		return nil
	case vigil.IsPermanent(err):
		s.log.ErrorContext(ctx, "sync refused by Kratos; dropped", "identity_id", p.IdentityID, "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("sync identity %s: %w", p.IdentityID, err)
	}
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		return s.audit(ctx, tx, vigil.EventIdentitySynced, p.IdentityID, "", "system", map[string]string{"channel": string(addr.Channel)})
	})
}

// queueSummary queues the recording of the identity's summary at Kratos.
func (s *Service) queueSummary(ctx context.Context, identityID string) error {
	if s.ids == nil {
		return nil
	}
	return s.store.InTx(ctx, func(tx vigil.Tx) error {
		return s.insertSyncJob(ctx, tx, JobKratosSummary, syncPayload{IdentityID: identityID}, s.now())
	})
}

func (s *Service) syncSummary(ctx context.Context, job *vigil.Job) error {
	p, ok, err := s.syncJob(ctx, job)
	if !ok {
		return err
	}
	summary, err := s.summary(ctx, p.IdentityID)
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	err = s.ids.SetSummary(callCtx, p.IdentityID, summary)
	switch {
	case errors.Is(err, vigil.ErrNotFound), vigil.IsPermanent(err):
		s.log.InfoContext(ctx, "summary not recorded at Kratos; dropped", "identity_id", p.IdentityID, "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("record summary of %s: %w", p.IdentityID, err)
	}
	return nil
}

// summary is what Kratos records of an identity's verification.
func (s *Service) summary(ctx context.Context, identityID string) (vigil.VerificationSummary, error) {
	addrs, err := s.store.ListAddresses(ctx, identityID)
	if err != nil {
		return vigil.VerificationSummary{}, fmt.Errorf("list addresses: %w", err)
	}
	sum := vigil.VerificationSummary{Verified: s.cfg.Require.Satisfied(addrs), Channels: []vigil.Channel{}}
	seen := map[vigil.Channel]bool{}
	for _, a := range addrs {
		if a.VerifiedAt == nil {
			continue
		}
		if !seen[a.Channel] {
			seen[a.Channel] = true
			sum.Channels = append(sum.Channels, a.Channel)
		}
		if sum.VerifiedAt == nil || a.VerifiedAt.After(*sum.VerifiedAt) {
			t := *a.VerifiedAt
			sum.VerifiedAt = &t
		}
	}
	return sum, nil
}

// SessionStatus is the verification state of whoever the credentials name.
func (s *Service) SessionStatus(ctx context.Context, creds vigil.SessionCredentials) (*IdentityStatus, error) {
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return nil, err
	}
	if sess.Identity != nil {
		if err := s.adoptVerified(ctx, sess.IdentityID, s.verifiable(*sess.Identity)); err != nil {
			return nil, err
		}
	}
	return s.IdentityStatus(ctx, sess.IdentityID)
}

// SessionResend sends new codes for the open verifications of whoever the
// credentials name, optionally only on one channel.
func (s *Service) SessionResend(ctx context.Context, creds vigil.SessionCredentials, ch vigil.Channel, clientIP string) error {
	if ch != "" && !ch.Valid() {
		return vigil.Errorf(vigil.EINVALID, "channel must be email or sms.")
	}
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return err
	}
	vs, err := s.store.ListVerifications(ctx, sess.IdentityID)
	if err != nil {
		return fmt.Errorf("list verifications: %w", err)
	}
	addrs, err := s.store.ListAddresses(ctx, sess.IdentityID)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if a.VerifiedAt != nil || (ch != "" && a.Channel != ch) {
			continue
		}
		if v := newestFor(vs, a.ID); v != nil && v.State != vigil.StateVerified {
			if err := s.Resend(ctx, ResendRequest{ID: v.ID, ClientIP: clientIP}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Authorization is the forward-auth answer for a session.
type Authorization struct {
	IdentityID string
	Verified   bool
}

// Authorize tells whether the credentials name a session of a verified
// identity (forward-auth: "no access to other endpoints until verified").
func (s *Service) Authorize(ctx context.Context, creds vigil.SessionCredentials) (*Authorization, error) {
	sess, err := s.whoami(ctx, creds)
	if err != nil {
		return nil, err
	}
	if sess.Identity == nil {
		known, err := s.store.ListAddresses(ctx, sess.IdentityID)
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		return &Authorization{IdentityID: sess.IdentityID, Verified: s.cfg.Require.Satisfied(known)}, nil
	}
	_, ok, err := s.satisfied(ctx, *sess.Identity)
	if err != nil {
		return nil, err
	}
	return &Authorization{IdentityID: sess.IdentityID, Verified: ok}, nil
}

func (s *Service) whoami(ctx context.Context, creds vigil.SessionCredentials) (*vigil.Session, error) {
	if s.ids == nil {
		return nil, vigil.Errorf(vigil.EUNAUTHORIZED, "Sessions are not available: Vigil is not connected to Kratos.")
	}
	if creds.Empty() {
		return nil, vigil.Errorf(vigil.EUNAUTHORIZED, "No session.")
	}
	callCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	sess, err := s.ids.Whoami(callCtx, creds)
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// Once runs compute at most once per Kratos hook trigger id: Kratos sends
// the same Ory-Webhook-Trigger-Id on every retry of one hook execution, so a
// retry gets the stored answer and starts nothing twice. Only answers that
// compute wants kept (keep true) are stored. Without a trigger id compute
// always runs.
func (s *Service) Once(ctx context.Context, triggerID, hook string, compute func() (status int, body []byte, keep bool, err error)) (int, []byte, error) {
	if triggerID == "" || len(triggerID) > 128 {
		st, b, _, err := compute()
		return st, b, err
	}
	prev, err := s.store.GetHookResult(ctx, triggerID)
	if err == nil {
		return prev.Status, prev.Body, nil
	}
	if !errors.Is(err, vigil.ErrNotFound) {
		return 0, nil, fmt.Errorf("read hook result: %w", err)
	}
	st, b, keep, err := compute()
	if err != nil || !keep {
		return st, b, err
	}
	err = s.store.PutHookResult(ctx, &vigil.HookResult{TriggerID: triggerID, Hook: hook, Status: st, Body: b, CreatedAt: s.now()})
	if errors.Is(err, vigil.ErrConflict) {
		// A concurrent retry answered first: answer as it did.
		if prev, err := s.store.GetHookResult(ctx, triggerID); err == nil {
			return prev.Status, prev.Body, nil
		}
	}
	if err != nil {
		return 0, nil, fmt.Errorf("store hook result: %w", err)
	}
	return st, b, nil
}
