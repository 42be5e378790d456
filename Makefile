# The two commands: `make dev` runs the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: setup lint lint-template test dev bench

setup:
	@scripts/setup.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: setup lint lint-template
	cargo nextest run --workspace --profile ci

# The SAM template, linted offline (cfn-lint runs the SAM transform locally).
lint-template: setup
	cfn-lint template.yaml

dev: setup
	@scripts/dev.sh

bench: setup
	cargo run --profile bench-release -p scoreboard-bench -- all
