# Vigil developer targets. Run `make help` for the list.

GO            ?= go
GOLANGCI_LINT ?= golangci-lint
BIN           ?= bin/vigil
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT        ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BENCHTIME     ?= 3000x
FUZZTIME      ?= 10s

# Store tests run against this PostgreSQL (one schema per test); the
# SQLite tests need nothing.
VIGIL_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export VIGIL_TEST_DATABASE_URL

.PHONY: help test bench lint build fuzz clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

test: ## run every test with the race detector
	$(GO) test -race -count=1 ./...

bench: ## run the benchmarks (no tests); BENCHTIME=10000x for steadier numbers
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# The login gate under fixed-rate HTTP load on loopback, against its floor,
# on 1,000,000 identities in a pgtest schema dropped at the end. A few
# minutes; one run of BenchmarkGate (it paces itself, so 1x).
.PHONY: bench-gate
bench-gate: ## load-test the login hook against its floor (minutes; docs/benchmarks.md)
	VIGIL_BENCH_GATE=1 $(GO) test -run '^$$' -bench '^BenchmarkGate$$' -benchtime 1x -count 1 -timeout 30m ./bench/

.PHONY: bench-gate-devices
bench-gate-devices: ## load-test the login hook with trusted devices against it without (minutes; docs/benchmarks.md)
	VIGIL_BENCH_GATE=1 $(GO) test -run '^$$' -bench '^BenchmarkGateDevices$$' -benchtime 1x -count 1 -timeout 30m ./bench/

# SMS deliveries from committed challenge to a fake Twilio's acceptance,
# through the PostgreSQL store's River queue and the real Twilio adapter,
# for several queue worker counts: peak rate and latency at 200/s. A few
# minutes; one run of BenchmarkDelivery (it paces itself, so 1x).
.PHONY: bench-delivery
bench-delivery: ## deliveries/s and latency at 200/s, PostgreSQL queue to fake Twilio (minutes; docs/benchmarks.md)
	VIGIL_BENCH_DELIVERY=1 $(GO) test -run '^$$' -bench '^BenchmarkDelivery$$' -benchtime 1x -count 1 -timeout 30m ./bench/

# A Kratos API login gated by Vigil against the same login with a no-op
# hook, beside a real Kratos (KRATOS_BIN, or kratos on PATH) and
# PostgreSQL. About ten minutes; KRATOS_LOGINS rounds after a warm-up.
KRATOS_LOGINS ?= 300
.PHONY: bench-kratos
bench-kratos: ## Kratos login p50 with the gate vs a no-op hook (minutes; needs KRATOS_BIN)
	VIGIL_BENCH_KRATOS=1 VIGIL_BENCH_KRATOS_LOGINS=$(KRATOS_LOGINS) $(GO) test -run '^TestKratosLoginBench$$' -count 1 -v -timeout 45m ./cmd/vigil/

lint: ## golangci-lint (v2) with .golangci.yml
	@command -v $(GOLANGCI_LINT) >/dev/null 2>&1 || { \
		echo "golangci-lint not found; install it with:"; \
		echo "  go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@latest"; \
		echo "and make sure \$$(go env GOPATH)/bin is on your PATH"; \
		exit 1; }
	$(GOLANGCI_LINT) run ./...

build: ## build the vigil binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vigil

# Every Fuzz* function in the module, FUZZTIME each. go test -fuzz takes one
# target and one package at a time, so each is run on its own.
fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	@set -e; found=0; \
	for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			found=1; \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "no fuzz targets found"; fi

clean: ## remove build output
	rm -rf bin
