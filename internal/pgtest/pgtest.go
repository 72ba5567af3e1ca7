package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the database used when VIGIL_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test database URL.
func URL() string {
	//nolint:forbidigo // a test helper, configured like River's tests: by the environment of go test
	if u := os.Getenv("VIGIL_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// DSN creates an empty schema with a random name (test_<hex>) in the test
// database and returns a DSN whose connections use it as their
// search_path. The schema is dropped, with everything in it, when the test
// ends; close anything using it in a cleanup registered after DSN.
func DSN(tb testing.TB) string {
	tb.Helper()
	base := URL()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: parse VIGIL_TEST_DATABASE_URL: %v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand docs)
	schema := "test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: connect to %s (set VIGIL_TEST_DATABASE_URL): %v", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: create schema %s: %v", schema, err)
	}

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("pgtest: connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	// Tests need no durability; commits that skip the WAL flush are faster.
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}
