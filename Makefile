# openwop-pg: the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help deps run test unit regress bench lint fmt clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

deps: ## Install build and test prerequisites (apt packages, cargo-pgrx); skips what is present
	@.ci/deps.sh

run: deps ## Build, install, start a local cluster + the edge on 127.0.0.1:8080 (Ctrl-C stops both)
	@tests/support/dev.sh

test: deps ## Run every test: unit, #[pg_test], SQL regression, end-to-end (fresh throwaway cluster)
	@tests/support/test.sh

unit: ## Only the pure Rust unit tests (no database)
	cargo test -p openwop --lib -- engine properties protocol definition_check
	cargo test -p edge --lib

bench: deps ## Throughput and latency of runs over HTTP (see README: Benchmark)
	@tests/support/bench.sh

lint: ## rustfmt check and clippy
	cargo fmt --all -- --check
	cargo clippy -p edge -p openwop-e2e --all-targets -- -D warnings
	cargo clippy -p openwop --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

clean: ## Remove build output and local test clusters (not the make-run data in .data)
	cargo clean
