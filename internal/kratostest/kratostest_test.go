package kratostest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/adapters/kratos"
	"github.com/vigil-auth/vigil/internal/kratostest"
)

const password = "correct horse battery staple 9"

// TestKratos runs the harness against a real Kratos and the kratos adapter
// against what it started.
func TestKratos(t *testing.T) {
	t.Parallel()
	k := kratostest.Start(t, kratostest.Options{
		ConfigDir: "testdata",
		Replace:   map[string]string{"__COOKIE_SECRET__": "a-cookie-secret-for-this-test-only"},
	})

	// Kratos stores a phone trait only trimmed, spaces and all.
	id, resp := k.Register(t, map[string]any{"email": "Alice@Example.com", "phone": "+49 151 23456789"}, password, nil)
	require.NotEmpty(t, id, "registration: HTTP %d\n%s", resp.Status, resp.Body)

	// One flow, submitted twice: a wrong password, then the right one.
	flow := k.LoginFlow(t)
	status, body := k.SubmitLogin(t, flow, "alice@example.com", "wrong password, wrong", nil)
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	status, body = k.SubmitLogin(t, flow, "alice@example.com", password, map[string]any{"vigil_device": "d1"})
	require.Equal(t, http.StatusOK, status, "%s", body)
	token := kratostest.SessionToken(t, body)

	c, err := kratos.New(kratos.Config{AdminURL: k.AdminURL, PublicURL: k.PublicURL})
	require.NoError(t, err)
	ctx := t.Context()

	at := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	summary := vigil.VerificationSummary{Verified: true, VerifiedAt: &at, Channels: []vigil.Channel{vigil.ChannelSMS}}
	require.NoError(t, c.MarkVerified(ctx, id, vigil.ChannelSMS, "+4915123456789", summary))

	ident := k.Identity(t, id)
	sms := address(t, ident, "sms")
	require.Equal(t, true, sms["verified"])
	require.Equal(t, "completed", sms["status"])
	require.NotEmpty(t, sms["verified_at"], "Kratos sets verified_at")
	email := address(t, ident, "email")
	require.Equal(t, false, email["verified"])
	require.Equal(t, map[string]any{"vigil": map[string]any{
		"verified": true, "verified_at": "2026-11-22T04:00:00Z", "verified_channels": []any{"sms"},
	}}, ident["metadata_public"])

	// Again: harmless, and the address stays verified.
	require.NoError(t, c.MarkVerified(ctx, id, vigil.ChannelSMS, "+4915123456789", summary))
	require.Equal(t, true, address(t, k.Identity(t, id), "sms")["verified"])

	// SetSummary replaces the summary and leaves the addresses alone.
	require.NoError(t, c.SetSummary(ctx, id, vigil.VerificationSummary{Verified: false}))
	ident = k.Identity(t, id)
	require.Equal(t, map[string]any{"vigil": map[string]any{"verified": false, "verified_channels": nil}}, ident["metadata_public"])
	require.Equal(t, true, address(t, ident, "sms")["verified"])

	// Email, compared case-insensitively.
	require.NoError(t, c.MarkVerified(ctx, id, vigil.ChannelEmail, "ALICE@example.com", summary))
	require.Equal(t, true, address(t, k.Identity(t, id), "email")["verified"])

	err = c.MarkVerified(ctx, id, vigil.ChannelSMS, "+4915100000000", summary)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	err = c.MarkVerified(ctx, "8e5c2ee4-1111-4a7c-9c40-000000000000", vigil.ChannelSMS, "+4915123456789", summary)
	require.ErrorIs(t, err, vigil.ErrNotFound)
	err = c.MarkVerified(ctx, "not-a-uuid", vigil.ChannelSMS, "+4915123456789", summary)
	require.ErrorIs(t, err, vigil.ErrNotFound)

	for name, creds := range map[string]vigil.SessionCredentials{
		"session token": {SessionToken: token},
		"bearer":        {Authorization: "Bearer " + token},
	} {
		s, err := c.Whoami(ctx, creds)
		require.NoError(t, err, name)
		require.Equal(t, id, s.IdentityID, name)
		require.NotEmpty(t, s.ID, name)
	}
	_, err = c.Whoami(ctx, vigil.SessionCredentials{SessionToken: "ory_st_nonsense"})
	require.Equal(t, vigil.EUNAUTHORIZED, vigil.ErrorCode(err), "%v", err)
	_, err = c.Whoami(ctx, vigil.SessionCredentials{Cookie: "ory_kratos_session=nonsense"})
	require.Equal(t, vigil.EUNAUTHORIZED, vigil.ErrorCode(err), "%v", err)
}

// TestDefaultConfigSQLiteFile starts the built-in configuration on a
// migrated SQLite file; it issues a session at registration.
func TestDefaultConfigSQLiteFile(t *testing.T) {
	t.Parallel()
	k := kratostest.Start(t, kratostest.Options{DSN: kratostest.DSNFile})

	id, resp := k.Register(t, map[string]any{"email": "bob@example.com"}, password, map[string]any{"vigil": "x"})
	require.NotEmpty(t, id, "registration: HTTP %d\n%s", resp.Status, resp.Body)
	token := kratostest.SessionToken(t, resp.Body)

	who := k.Do(t, http.MethodGet, k.PublicURL+"/sessions/whoami", nil, http.Header{"X-Session-Token": {token}})
	require.Equal(t, http.StatusOK, who.Status, "%s", who.Body)
	identity, ok := who.JSON(t)["identity"].(map[string]any)
	require.True(t, ok, "%s", who.Body)
	require.Equal(t, id, identity["id"])

	status, body := k.Login(t, "bob@example.com", password, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
}

func address(t *testing.T, identity map[string]any, via string) map[string]any {
	t.Helper()
	list, _ := identity["verifiable_addresses"].([]any)
	for _, a := range list {
		if m, _ := a.(map[string]any); m != nil && m["via"] == via {
			return m
		}
	}
	t.Fatalf("no %s address in %v", via, identity)
	return nil
}
