# The two commands: `make dev` runs the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: setup lint lint-template test dev bench release bench-coldstart

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

# The Lambda deploy artifacts: target/lambda/{update,leaderboard}/bootstrap for arm64 (cargo-lambda + zig).
# Only the two function packages, so the containers' store adapters are not compiled into them.
release: setup
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 -p update -p leaderboard
	@ls -l target/lambda/update/bootstrap target/lambda/leaderboard/bootstrap

# Lambda cold start (init and first invocation) of the host release build against a local Runtime API.
bench-coldstart: setup
	cargo build --release -p update -p leaderboard
	cargo run --profile bench-release -p scoreboard-bench -- coldstart
