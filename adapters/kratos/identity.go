package kratos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	client "github.com/ory/kratos-client-go"

	"github.com/vigil-auth/vigil"
)

// summaryKey is where the summary lives inside metadata_public.
const summaryKey = "vigil"

// statusCompleted is the verifiable address status Kratos' own
// verification flow sets together with verified=true.
const statusCompleted = "completed"

// MarkVerified reads the identity, finds its verifiable address with the
// channel and value, and sends one JSON Patch that marks it verified (unless
// it already is) and writes summary to metadata_public.vigil. Running it
// again is harmless: the second run patches the summary alone.
//
// The patch addresses the list by index, in the order of the read just
// before it. That order is not stable across writes: Kratos lists addresses
// by row id, a random UUID, and stores a changed address as a new row, so
// marking one verified can move it. Kratos accepts no "test" operation (only
// add, remove and replace), so the patch cannot guard the index; a write to
// the same identity between the read and the patch goes undetected. Both
// requests run within one Timeout, which keeps that window short.
func (c *Client) MarkVerified(ctx context.Context, identityID string, ch vigil.Channel, value string, summary vigil.VerificationSummary) error {
	via, err := viaOf(ch)
	if err != nil {
		return err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()

	id, err := c.identity(ctx, identityID)
	if err != nil {
		return err
	}
	var ops []client.JsonPatch
	found := false
	for i, a := range id.VerifiableAddresses {
		if a.Via != via || !sameAddress(ch, a.Value, value) {
			continue
		}
		found = true
		if a.Verified && a.Status == statusCompleted {
			continue
		}
		base := "/verifiable_addresses/" + strconv.Itoa(i)
		ops = append(ops,
			client.JsonPatch{Op: "replace", Path: base + "/verified", Value: true},
			client.JsonPatch{Op: "replace", Path: base + "/status", Value: statusCompleted},
		)
	}
	if !found {
		return fmt.Errorf("kratos: identity %s has no %s address with that value: %w", identityID, via, vigil.ErrNotFound)
	}
	meta, err := summaryPatch(identityID, id.MetadataPublic, summary)
	if err != nil {
		return err
	}
	return c.patch(ctx, identityID, append(ops, meta))
}

// SetSummary writes summary to the identity's metadata_public.vigil and
// leaves everything else as it is.
func (c *Client) SetSummary(ctx context.Context, identityID string, summary vigil.VerificationSummary) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()

	id, err := c.identity(ctx, identityID)
	if err != nil {
		return err
	}
	meta, err := summaryPatch(identityID, id.MetadataPublic, summary)
	if err != nil {
		return err
	}
	return c.patch(ctx, identityID, []client.JsonPatch{meta})
}

func (c *Client) identity(ctx context.Context, identityID string) (*client.Identity, error) {
	if identityID == "" {
		// GET /admin/identities/ would list identities instead.
		return nil, fmt.Errorf("kratos: get identity: empty id: %w", vigil.ErrNotFound)
	}
	//nolint:bodyclose // the generated client reads and closes the body before it returns
	id, resp, err := c.admin.IdentityAPI.GetIdentity(ctx, identityID).Execute()
	if err != nil {
		return nil, apiError("get identity "+identityID, resp, err)
	}
	if id == nil {
		// The generated client decodes an empty 200 body to nothing.
		return nil, fmt.Errorf("kratos: get identity %s: empty response", identityID)
	}
	return id, nil
}

func (c *Client) patch(ctx context.Context, identityID string, ops []client.JsonPatch) error {
	//nolint:bodyclose // the generated client reads and closes the body before it returns
	_, resp, err := c.admin.IdentityAPI.PatchIdentity(ctx, identityID).JsonPatch(ops).Execute()
	if err != nil {
		return apiError("patch identity "+identityID, resp, err)
	}
	return nil
}

// summaryPatch sets metadata_public.vigil. metadata_public is null until
// something writes it, and a JSON Patch cannot add a member to null, so
// then the whole object is added.
func summaryPatch(identityID string, metadata any, summary vigil.VerificationSummary) (client.JsonPatch, error) {
	switch m := metadata.(type) {
	case nil:
		return client.JsonPatch{Op: "add", Path: "/metadata_public", Value: map[string]any{summaryKey: summary}}, nil
	case map[string]any:
		op := "add"
		if _, ok := m[summaryKey]; ok {
			op = "replace"
		}
		return client.JsonPatch{Op: op, Path: "/metadata_public/" + summaryKey, Value: summary}, nil
	default:
		// Replacing it would destroy whatever another system keeps there.
		return client.JsonPatch{}, vigil.Permanent(fmt.Errorf("kratos: identity %s: metadata_public is a JSON %T, not an object", identityID, metadata))
	}
}

func viaOf(ch vigil.Channel) (string, error) {
	switch ch {
	case vigil.ChannelEmail:
		return "email", nil
	case vigil.ChannelSMS:
		return "sms", nil
	default:
		return "", vigil.Permanent(errors.New("kratos: mark verified: unknown channel " + strconv.Quote(string(ch))))
	}
}

// sameAddress compares an address Kratos holds with the normalized value
// Vigil holds. Kratos lower-cases emails and only trims phone numbers, so
// a phone entered as "+49 151 2345678" is stored with its spaces while
// Vigil holds E.164; visual separators are ignored for that reason.
func sameAddress(ch vigil.Channel, stored, value string) bool {
	stored, value = strings.TrimSpace(stored), strings.TrimSpace(value)
	if value == "" {
		return false
	}
	if ch == vigil.ChannelEmail {
		return strings.EqualFold(stored, value)
	}
	return stored == value || stripPhone(stored) == stripPhone(value)
}

func stripPhone(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\u00a0':
			return -1
		}
		return r
	}, s)
}
