# Entry points: `make run` starts Vigil, `make demo` starts it scraping demo services, `make test`
# runs every check CI runs.
# Each installs what it needs on a fresh Debian machine and skips what is already present.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

CARGO_LEPTOS_VERSION := 0.3.10
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock, or the bundle won't load.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
CHROMIUM ?= /usr/bin/chromium
# Prometheus, VictoriaMetrics and exporters from Debian, for the side-by-side tests.
PEERS := $(CURDIR)/../shared/peers
# wasm-opt (binaryen 132, from npm) and other node tools come before anything on PATH: Debian's
# binaryen 108 produces a bundle that fails to hydrate.
export PATH := $(CURDIR)/end2end/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

# Extra flags for `make run` and `make demo`, e.g. make run ARGS='--config.file=prometheus.yml'.
ARGS ?=

.PHONY: run demo test bench bench-smoke .rust-tools .node-tools .chromium .peers .dnsmasq

run: .rust-tools .node-tools
	cargo leptos build --release --split --precompress
	@echo "Vigil: http://127.0.0.1:9090 (Ctrl-C stops it)"
	target/release/vigil $(ARGS)

# The demo: three instrumented services with generated traffic, scraped by Vigil, and the
# "Image gallery" dashboard (make demo ARGS=--open opens it in the browser).
demo: .rust-tools .node-tools
	cargo leptos build --release --split --precompress
	target/release/vigil demo $(ARGS)

test: .rust-tools .node-tools .chromium .peers .dnsmasq
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p vigil-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings
	cargo test --workspace
	# = make bench-smoke, with the debug binary cargo test has just built
	bench/run.sh smoke target/debug/vigil
	cargo leptos build --split
	cd end2end && node --test --test-concurrency=1 tests/

# Vigil side by side with Prometheus and VictoriaMetrics (../shared/peers), about 10 minutes:
# scrape + ingest, query timings, answers compared. Writes bench/results/<date>-<commit>.md and the
# "make bench" part of BENCHMARKS.md. Not part of `make test`.
bench: .peers
	cargo build --release -p vigil
	bench/run.sh full target/release/vigil

# The same harness, small (under 2 minutes); `make test` runs it. Fails when the harness breaks,
# never on performance.
bench-smoke: .peers
	cargo build -p vigil
	bench/run.sh smoke target/debug/vigil

.rust-tools:
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs) and run make again"; exit 1; }
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@cargo leptos --version 2>/dev/null | grep -q " $(CARGO_LEPTOS_VERSION)$$" || { \
		echo "Installing cargo-leptos $(CARGO_LEPTOS_VERSION) (once; about 18 minutes on 2 cores)"; \
		cargo install cargo-leptos --version $(CARGO_LEPTOS_VERSION) --locked --features no_downloads; }
	@[ -n "$(WASM_BINDGEN_VERSION)" ] || { echo "Cargo.lock names no wasm-bindgen version"; exit 1; }
	@wasm-bindgen --version 2>/dev/null | grep -q " $(WASM_BINDGEN_VERSION)$$" || { \
		echo "Installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (once; about 4 minutes)"; \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force; }

.node-tools:
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or newer (Debian: apt-get install nodejs npm) and run make again"; exit 1; }
	@if [ ! -f end2end/node_modules/.package-lock.json ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then \
		npm ci --prefix end2end --no-audit --no-fund; fi

.chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "The browser tests need Chromium at $(CHROMIUM). Install it by hand: sudo apt-get install chromium"; exit 1; \
		fi; \
	fi

# The DNS discovery test runs a private dnsmasq on a high port; dnsmasq-base is the binary
# without the system service that would take port 53.
.dnsmasq:
	@if [ ! -x /usr/sbin/dnsmasq ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null; \
		else \
			echo "The DNS discovery test needs dnsmasq. Install it by hand: sudo apt-get install dnsmasq-base"; exit 1; \
		fi; \
	fi

.peers:
	@if ! command -v prometheus >/dev/null; then \
		if [ -x "$(PEERS)/install.sh" ]; then "$(PEERS)/install.sh"; \
		else echo "$(PEERS) is missing: the comparison against Prometheus cannot run (it fails under CI=true)"; fi; \
	fi
