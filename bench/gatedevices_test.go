package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
	"github.com/vigil-auth/vigil/hooks"
	"github.com/vigil-auth/vigil/internal/vigiltest"
)

// BenchmarkGateDevices load-tests the login hook with step-up on new
// devices, every login from its identity's trusted device, against the
// same hook without device checks, on 1,000,000 identities with a
// verified email and a trusted device each. Like BenchmarkGate it takes
// minutes and runs only with VIGIL_BENCH_GATE=1 (`make
// bench-gate-devices`); docs/benchmarks.md records its figures.
func BenchmarkGateDevices(b *testing.B) {
	if os.Getenv("VIGIL_BENCH_GATE") != "1" {
		b.Skip("minutes long and 2,000,000 rows: run with VIGIL_BENCH_GATE=1 (make bench-gate-devices)")
	}
	ctx := context.Background()
	dsn, keys, store := gateStore(b)
	began := time.Now()
	ids := seedGate(ctx, b, dsn, keys)
	seedDevices(ctx, b, dsn, ids)
	fmt.Printf("seeded %d identities, each with one verified email address and one trusted device, in %v\n", len(ids), time.Since(began).Round(time.Second))

	plain := gateService(b, store, keys)
	cfg := flows.Defaults()
	cfg.Devices.StepUp = true
	devices, err := flows.New(cfg, flows.Deps{Store: store, Keys: keys, Logger: jsonDiscard(),
		Senders: map[vigil.Channel]vigil.Sender{vigil.ChannelEmail: &vigiltest.Sender{}}})
	if err != nil {
		b.Fatal(err)
	}
	targets := []loadPlan{
		{Name: "gate", Addr: serveLoopback(b, adminMux(hooks.New(hooks.Config{APIKey: gateKey, Logger: jsonDiscard()}, plain))),
			Path: "/hooks/kratos/login", Kratos: true},
		{Name: "device", Addr: serveLoopback(b, adminMux(hooks.New(hooks.Config{APIKey: gateKey, Logger: jsonDiscard()}, devices))),
			Path: "/hooks/kratos/login", Kratos: true, Devices: true},
	}
	floorDB := floorConns(ctx, b, dsn)
	writtenBefore := rowsWritten(ctx, b, floorDB)
	fixed, peak := measureRounds(ctx, b, pgMeter(ctx, b, gateApp), targets, targets, len(ids))
	written := rowsWritten(ctx, b, floorDB) - writtenBefore
	if written != 0 {
		b.Errorf("the load wrote %d rows; a trusted device seen within the hour must write none", written)
	}
	gateP99, deviceP99 := medianP99(fixed[0]), medianP99(fixed[1])
	gatePeak, devicePeak := peakOf(peak[0]), peakOf(peak[1])
	costRatio := float64(serverCost(devicePeak)) / float64(serverCost(gatePeak))
	fmt.Print(loadTable(targets, fixed, targets, peak))
	fmt.Printf("p99 at %d req/s, median of rounds: device %s = %.2f × the gate's %s (target <= 1.2)\n",
		gateRate, fmtMS(deviceP99), float64(deviceP99)/float64(gateP99), fmtMS(gateP99))
	fmt.Printf("peak: device %.0f req/s, gate %.0f req/s: the gate's is %.2f × the device's (target <= 1.2); server+PostgreSQL CPU per request at peak: device %.2f × the gate's\n",
		devicePeak.rate(), gatePeak.rate(), gatePeak.rate()/devicePeak.rate(), costRatio)
	fmt.Printf("rows inserted, updated or deleted in the schema during the load: %d\n", written)
	b.ReportMetric(ms(gateP99), "gate-p99-ms")
	b.ReportMetric(ms(deviceP99), "device-p99-ms")
	b.ReportMetric(gatePeak.rate(), "gate-peak-req/s")
	b.ReportMetric(devicePeak.rate(), "device-peak-req/s")
	b.ReportMetric(costRatio, "cost-ratio")
}

// deviceToken is the device token of an identity's seeded device: derived
// from its id, so that the load generator needs no list of a million.
func deviceToken(id uuid.UUID) string {
	h := sha256.Sum256(append([]byte("vigil-bench-device:"), id[:]...))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// appendDeviceCookie adds the identity's device cookie to a login body,
// where Kratos puts a browser's cookies.
func appendDeviceCookie(body []byte, id uuid.UUID) []byte {
	body = bytes.TrimRight(body, " \n\r\t")
	body = body[:len(body)-1] // the closing brace
	body = append(body, `,"request_cookies":{"vigil_device":"`...)
	body = append(body, deviceToken(id)...)
	return append(body, `"}}`...)
}

// seedDevices copies in one trusted device per identity, seen just now, so
// that no login during the run is due to record a use.
func seedDevices(ctx context.Context, b *testing.B, dsn string, ids identities) {
	b.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	i := 0
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"devices"},
		[]string{"id", "identity_id", "name", "kind", "token_hash", "user_agent", "ip", "created_by", "created_at", "last_seen_at", "trusted_until"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(ids) {
				return nil, nil
			}
			id := ids[i]
			i++
			h := sha256.Sum256([]byte(deviceToken(id)))
			return []any{uuid.Must(uuid.NewV7()).String(), id.String(), "Firefox on Linux", string(vigil.DeviceBrowser), h[:],
				"", "", "user", now, now, now.Add(30 * 24 * time.Hour)}, nil
		}))
	if err != nil {
		b.Fatal(err)
	}
	if int(n) != len(ids) {
		b.Fatalf("copied %d devices, want %d", n, len(ids))
	}
	for _, stmt := range []string{"VACUUM (ANALYZE) devices", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
}
