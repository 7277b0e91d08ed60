# Capstan: `make run` starts the console, `make test` runs every check. Both install what is
# missing first (the wasm target, a pinned wasm-bindgen-cli from crates.io, Debian packages,
# npm packages). Nothing is downloaded from anywhere else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

WASM_BINDGEN_VERSION := 0.2.130
# The browser bundle is always built optimised: a debug wasm is ~200 MB.
WASM_PROFILE := wasm-release
SITE := target/site
CARGO_FLAGS ?= --locked
# fonts-wqy-zenhei: a CJK font, so screenshots of the 简体中文 pages show text, not boxes.
APT_PACKAGES := zookeeper chromium chromium-driver fonts-wqy-zenhei
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test deps-build deps-npm deps-test site server build fmt-check clippy unit e2e bench clean

## Start the console on 127.0.0.1:3000 with its data in ./data (CAPSTAN_* variables apply).
run: deps-build deps-npm build
	./target/debug/capstan serve

## Every check CI runs.
test: deps-build deps-npm deps-test fmt-check clippy unit build e2e

deps-build:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown
	@if [ "$$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) from crates.io (about 3 minutes)"; \
	  cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

deps-test:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

## npm packages of end2end/: Playwright, and binaryen's wasm-opt (Debian's wasm-opt 108
## produces modules that do not hydrate, see TOOLCHAIN.md).
deps-npm:
	@if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ] \
	  || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then \
	  cd end2end && npm ci --no-audit --no-fund; \
	fi

## The browser bundle: wasm (hydrate), its JS glue, CSS and static files, in target/site.
site: deps-npm
	cargo build $(CARGO_FLAGS) -p capstan-frontend --target wasm32-unknown-unknown --profile $(WASM_PROFILE)
	mkdir -p $(SITE)/pkg
	wasm-bindgen --target web --no-typescript --out-dir $(SITE)/pkg --out-name capstan \
	  target/wasm32-unknown-unknown/$(WASM_PROFILE)/capstan_frontend.wasm
	end2end/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
	  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
	  -o $(SITE)/pkg/capstan_bg.wasm $(SITE)/pkg/capstan_bg.wasm
	cp style/capstan.css $(SITE)/pkg/capstan.css
	cp -r public/. $(SITE)/

server:
	cargo build $(CARGO_FLAGS) -p capstan

build: site server

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings
	cargo clippy $(CARGO_FLAGS) -p capstan-frontend --target wasm32-unknown-unknown -- -D warnings

## Unit and integration tests: real SQLite, and a real ZooKeeper the tests start themselves.
unit:
	cargo test $(CARGO_FLAGS)

## Browser tests: Playwright drives Debian's Chromium against the built console.
e2e: build
	cd end2end && CAPSTAN_BIN=$(CURDIR)/target/debug/capstan CAPSTAN_SITE_ROOT=$(CURDIR)/$(SITE) npx playwright test

## Benchmarks (release build). Figures go to the issue notes; see README. Their ZooKeeper
## runs as production runs it (C2 compiler, a 1 GiB heap), not with the tests' fast-start flags.
BENCH_ZK = CAPSTAN_ZK_HEAP=$${CAPSTAN_ZK_HEAP:-1g} CAPSTAN_ZK_PRODUCTION_JVM=1
bench: deps-test
	$(BENCH_ZK) cargo bench $(CARGO_FLAGS) -p capstan-registry --bench tree_cache
	$(BENCH_ZK) cargo bench $(CARGO_FLAGS) -p capstan-scheduler --bench fire_lag
	$(BENCH_ZK) cargo bench $(CARGO_FLAGS) -p capstan --bench console
	cargo bench $(CARGO_FLAGS) -p capstan-stream --bench replay
	cargo bench $(CARGO_FLAGS) -p capstan-stream --bench state_memory
	cargo bench $(CARGO_FLAGS) -p capstan-stream --bench nexmark
	@# Per core: the same queries on one vCPU (one partition, one worker), the other left
	@# idle. On the 2-vCPU test VM a pass-through, whose partitions share nothing, ran up
	@# to half as fast per CPU-second with both vCPUs busy; the notes give both figures.
	CAPSTAN_BENCH_NO_LATENCY=1 taskset -c 0 cargo bench $(CARGO_FLAGS) -p capstan-stream --bench nexmark

clean:
	cargo clean
	rm -rf end2end/node_modules end2end/test-results
