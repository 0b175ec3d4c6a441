# lwsgate: every entry point is a one-liner or a script under scripts/.
# The Dockerfile runs these same targets, so it cannot drift from CI.

GO      ?= $(shell command -v go || echo /usr/local/go/bin/go)
BIN     := bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
ARGS    ?=
CFLAGS_NATIVE := -Wall -Wextra -Werror -O2

.PHONY: all deps test-deps build run native test vet fmt-check race allocs cgocheck asan fuzz check-imports parity parity-evidence reasons-doc soak conformance interop console-shots clean docker docker-check bench bench-smoke bench-test bench-cluster cluster-test

all: build

deps:                      ## install missing system packages (apt-get, as root)
	@scripts/deps.sh

build: deps                ## build bin/lwsgate
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/lwsgate ./cmd/lwsgate

run: build                 ## run lwsgate on its default config (:8090); ARGS="-listen :9000"
	$(BIN)/lwsgate $(ARGS)

native: deps               ## build the native C reference server (testdata/native)
	@mkdir -p $(BIN)
	gcc $(CFLAGS_NATIVE) $$(pkg-config --cflags libwebsockets) testdata/native/lwsnative.c \
		$$(pkg-config --libs libwebsockets) -lev -o $(BIN)/lwsnative

test: deps test-deps fmt-check vet check-imports native race allocs cgocheck asan fuzz parity bench-test interop   ## everything CI runs

test-deps:                 ## what only the tests need: chromium, python3-websockets, node and Node's ws for the interop matrix
	@scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd cmd/interop && $(GO) vet ./...

check-imports:             ## callbacks <- cgo <- lws <- cmd, nothing else
	@scripts/check-imports.sh

# The cluster tests run leases of a fraction of a second on three NATS
# servers at once: they run after the other packages, one package at a
# time, rather than beside them on a machine's few cores.
CLUSTER_PKGS := ./lws/gateway/cluster/ ./cmd/clustertest/

race:
	LWSGATE_REQUIRE_CHROMIUM=1 $(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v -e /lws/gateway/cluster -e /cmd/clustertest)
	$(GO) test -race -count=1 -timeout 10m -p 1 $(CLUSTER_PKGS)

# The allocation bounds (tests named *Allocs) once more without -race:
# the race detector's sync.Pool drops a share of what is put back, on
# purpose, so that what they count under it is not the program's.
allocs:                    ## the allocation bounds of an HTTP request, without the race detector
	$(GO) test -count=1 -run 'Allocs$$' ./lws/ ./lws/gateway/

cluster-test: build        ## cluster mode's process tier: three bin/lwsgate, partitions (TCP proxies), SIGSTOP, kill -9, restarts, the history checker (about two minutes; make race runs it too)
	LWSGATE_BIN=$(CURDIR)/$(BIN)/lwsgate $(GO) test -count=1 -timeout 5m -v ./cmd/clustertest/

cgocheck:                  ## full cgo pointer checks on the packages that cross into C
	GOEXPERIMENT=cgocheck2 $(GO) test -count=1 -short -timeout 10m ./cgo/ ./lws/ ./cmd/...

SOAK       ?= 5m
SOAK_KINDS ?=

soak: deps                 ## churn links for SOAK (5m), of SOAK_KINDS (all): RSS, cgo handles, goroutines over time (not in test)
	$(GO) test -count=1 -run '^TestSoak$$' -timeout 0 -v ./cmd/internal/churn -soak $(SOAK) -soak.kinds "$(SOAK_KINDS)"

# bin/lwsgate at its default config against Chromium, Node's ws, Python's
# websockets, gorilla and coder/websocket (cmd/interop, a module of its own:
# its client libraries stay out of what a user of package lws downloads).
# -v prints the matrix.
interop: build test-deps   ## the interop matrix: real WebSocket clients against bin/lwsgate (a minute)
	cd cmd/interop && LWSGATE_BIN=$(CURDIR)/$(BIN)/lwsgate LWSGATE_REQUIRE_INTEROP=1 $(GO) test -count=1 -timeout 5m ./...

# The console in headless Chromium, each page at 1280x800 and 390x844 over a
# gateway with generated traffic (about a minute): PNGs for a reviewer to look at.
console-shots: deps test-deps ## screenshots of every page of the admin console into bin/console-shots/ (a minute)
	@mkdir -p $(BIN)/console-shots
	LWSGATE_CONSOLE_SHOTS=$(CURDIR)/$(BIN)/console-shots LWSGATE_REQUIRE_CHROMIUM=1 \
		$(GO) test -count=1 -run '^TestConsoleShots$$' -timeout 5m -v ./lws/gateway/

conformance: deps          ## the conformance report of every case, server and client, then 12.x/13.x with compression (make test runs a subset as a test)
	$(GO) run ./cmd/conformance -v
	$(GO) run ./cmd/conformance -v -compression -cases 12,13

# go test -asan builds the C layer (and the Go code) with AddressSanitizer;
# libwebsockets and OpenSSL are not rebuilt, but ASan's malloc covers what
# they allocate, so the C layer reading freed lws memory is caught (see
# TestHostileUnknownUpgradeKeepAlive). Leaks are checked at exit, except
# those scripts/lsan.supp names (OpenSSL, lws vhost creation).
asan:                      ## the C layer under AddressSanitizer: cgo, callbacks and lws tests
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
		$(GO) test -asan -count=1 -timeout 10m ./cgo/ ./callbacks/ ./lws/

# make fuzz runs each target 10 s; make test 5 s, which keeps the suite well
# under CI's 20 minutes (17 targets). FUZZTIME=... on the command line wins.
FUZZTIME ?= 10s
test: FUZZTIME = 5s
fuzz:                      ## every go test -fuzz target for FUZZTIME each (10s; 5s in make test)
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench-test:                ## the load tool against in-process servers (seconds)
	cd bench && $(GO) test -count=1 ./...

# The performance harness (not part of test: minutes, and it wants a quiet
# machine). BENCH_ARGS passes flags to bench/cmd/benchrun, e.g.
# BENCH_ARGS="-rounds 3 -d 3s" or "-servers lws,lwsgate -scenarios big-64k".
BENCH_ARGS ?=

bench: deps                ## every scenario against every server, interleaved; writes BENCHMARKS.md
	LWSGATE_LDFLAGS="$(LDFLAGS)" scripts/bench.sh -out BENCHMARKS.md -raw $(BIN)/bench/samples.jsonl -notes bench/NOTES.md $(BENCH_ARGS)

bench-smoke: deps          ## the harness end to end in seconds (two servers, every scenario, short runs)
	LWSGATE_LDFLAGS="$(LDFLAGS)" scripts/bench.sh -quick -servers lws,lwsgate $(BENCH_ARGS) >/dev/null

# Channel fan-out on the memory engine and across three nodes (embedded
# NATS) on this machine, in one run (bench/cmd/clusterbench; not part of
# test: a minute). BENCH_CLUSTER_ARGS passes flags, e.g. "-rounds 3",
# "-subs 3000", "-workers 1".
BENCH_CLUSTER_ARGS ?=

bench-cluster: build       ## 1,000 subscribers over 1 node (memory), 3 nodes (nats) and 3 unrelated memory nodes (memory3, the control): latency, rate, server CPU per delivery; 30 subscribers: latency between nodes; then history channels: acknowledged publishes/s, resume of 100 missed
	cd bench && $(GO) run ./cmd/clusterbench -lwsgate $(CURDIR)/$(BIN)/lwsgate $(BENCH_CLUSTER_ARGS)

# EVENT_LOOP: the libwebsockets loops both programs run on, one after the
# other: libev (lwsgate's default) and poll, or one of them
# (EVENT_LOOP=poll make parity).
EVENT_LOOP ?= libev poll
PARITY := $(GO) run ./cmd/parity -lwsgate $(BIN)/lwsgate -native $(BIN)/lwsnative

parity: build native       ## every reason-log scenario against lwsgate and the native program, on each EVENT_LOOP (libev poll); fails on a difference
	@set -e; for l in $(EVENT_LOOP); do echo "== event loop $$l"; $(PARITY) -event-loop $$l; done

parity-evidence: build native   ## each scenario 20 times per program on each EVENT_LOOP: the evidence for the timing rules
	@set -e; for l in $(EVENT_LOOP); do echo "== event loop $$l"; $(PARITY) -event-loop $$l -runs 20; done

reasons-doc: build native  ## regenerate README's "Reading the reason log" sequences from native runs (poll loop)
	$(PARITY) -event-loop poll -readme README.md

# Docker image: SUITE=bookworm (libwebsockets 4.1.6, what CI tests) or trixie (4.3.5).
SUITE       ?= bookworm
IMAGE       ?= lwsgate
DOCKERCHECK ?= ../shared/tools/dockercheck/build-and-run.sh

docker:                    ## build the container image (needs a Docker engine); SUITE=trixie for lws 4.3.5
	docker build --build-arg SUITE=$(SUITE) --build-arg VERSION=$(VERSION) \
		-t $(IMAGE):$(VERSION)-$(SUITE) $(if $(filter bookworm,$(SUITE)),-t $(IMAGE):$(VERSION)) .

docker-check:              ## build + smoke-test the image for bookworm and trixie without a Docker engine (root; minutes; not in test)
	DOCKERCHECK=$(DOCKERCHECK) IMAGE=$(IMAGE) VERSION=$(VERSION) scripts/docker-check.sh

clean:
	rm -rf $(BIN)
