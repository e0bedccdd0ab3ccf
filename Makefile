# relay: the two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# The real signal-cli, when ../shared/tools/install-signal-cli.sh has installed it: the contract
# tests run against it and skip (saying so) without it.
RELAY_SIGNAL_CLI ?= $(wildcard /opt/signal-cli-real/bin/signal-cli)
export RELAY_SIGNAL_CLI
FUZZTIME ?= 10s
BENCHTIME ?= 1s
TESTTIMEOUT ?= 9m

.PHONY: all build test bench fuzz cross run lint deb test-deb test-arm64 test-gpio-vm clean

all: lint build test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/relayd ./cmd/relayctl

# Unit and integration tests, race detector on. Mosquitto (apt) is started by the MQTT tests on a
# free loopback port; the real signal-cli is used when RELAY_SIGNAL_CLI points at it.
test:
	$(GO) test -race -timeout $(TESTTIMEOUT) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# A short run of every fuzz target in the tree (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Static, CGO-free binaries for the box (linux/arm64) and for amd64. 32-bit targets are refused
# at build time: Badger loses data there.
cross:
	@set -e; for arch in arm64 amd64; do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
	    -o dist/linux-$$arch/ ./cmd/relayd ./cmd/relayctl; \
	  echo "dist/linux-$$arch: $$(ls dist/linux-$$arch | tr '\n' ' ')"; \
	done

# The outbox's tests built for arm64 and run under qemu-aarch64-static (Debian's qemu-user-static),
# so the target architecture is exercised.
test-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) test -c -o bin/buffer.arm64.test ./buffer
	cd buffer && qemu-aarch64-static ../bin/buffer.arm64.test -test.short -test.timeout 10m

# relayd on this machine with embedded defaults: a fake signal-cli and a simulated modem (no
# hardware, no Java), state in .run/. A broker on 127.0.0.1:1883 is used if one answers; with
# Debian's mosquitto installed and none running, one is started for the run.
run: build
	CGO_ENABLED=0 $(GO) build -o bin/ ./signalbridge/signaltest/cmd/fake-signal-cli ./modem/modemtest/cmd/modem-sim
	@mkdir -p .run/signal-cli/data
	@echo '{"accounts":[{"number":"+4915100000000"}]}' > .run/signal-cli/data/accounts.json
	@set -e; pids=""; trap 'kill $$pids 2>/dev/null || true' EXIT INT TERM; \
	  if command -v mosquitto >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then \
	    mosquitto -p 1883 >.run/mosquitto.log 2>&1 & pids="$$pids $$!"; \
	    echo "started mosquitto on 127.0.0.1:1883 (log: .run/mosquitto.log)"; \
	  fi; \
	  bin/modem-sim -link .run/modem </dev/null >.run/modem-sim.log 2>&1 & pids="$$pids $$!"; \
	  echo "simulated modem on .run/modem; publish a job with:"; \
	  echo "  mosquitto_pub -t relay/jobs -q 1 -m '{\"id\":\"demo-1\",\"to\":\"+4915112345678\",\"template\":\"order_shipped\",\"vars\":{\"order\":\"1042\",\"carrier\":\"DHL\",\"url\":\"https://t.example/1042\"},\"consent\":{\"at\":\"2026-11-20T12:00:00Z\",\"source\":\"checkout\"}}'"; \
	  echo "  mosquitto_sub -t 'relay/#' -v"; \
	  bin/relayd run --config docs/dev.toml

# Debian packages for the box (arm64) and for amd64, from the cross-built binaries in
# dist/linux-<arch>/ (see systemd/packaging; nfpm is pinned in build-deb.sh, not in go.mod).
deb: cross
	@set -e; for arch in arm64 amd64; do \
	  systemd/packaging/build-deb.sh $$arch $(VERSION) dist/linux-$$arch dist; \
	done

# Installs the amd64 .deb into a throwaway root and checks files, user, permissions, upgrade over
# an edited config, remove and purge (needs root, dpkg and overlayfs; skips visibly otherwise).
test-deb:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/linux-amd64/ ./cmd/relayd ./cmd/relayctl
	deb=$$(systemd/packaging/build-deb.sh amd64 $(VERSION) dist/linux-amd64 dist/test-deb | tail -n 1); \
	  RELAY_DEB=$$deb $(GO) test -count=1 -v -run '^TestDeb_' ./systemd/packaging/

# The GPIO adapter's tests on a real kernel with gpio-sim, in a small qemu VM (the kernel is
# built once, then cached).
GPIO_VM ?= ../shared/tools/gpio-vm
test-gpio-vm:
	CGO_ENABLED=0 $(GO) test -c -o bin/gpio.test ./relay/gpio
	bash $(GPIO_VM)/run.sh bin/gpio.test -test.v

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin dist .run
