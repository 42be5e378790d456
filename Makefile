# The two commands: `make dev` runs the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/venv/bin:$(PATH)

.PHONY: setup lint lint-template lint-ops test dev bench release bench-coldstart bench-peers bench-worker bench-cluster

setup:
	@scripts/setup.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: setup lint lint-template lint-ops
	cargo nextest run --workspace --profile ci

# The SAM template, linted offline (cfn-lint runs the SAM transform locally), then the production checks
# cfn-lint does not make (least privilege, secrets, HTTPS only, private metrics), and their self-test.
lint-template: setup
	cfn-lint template.yaml
	python3 scripts/check_template.py template.yaml
	python3 scripts/check_template.py --self-test template.yaml

# The operations kit (docs/operations.md): alert rules valid and unit-tested, every alert's runbook anchor
# present, the CloudWatch alarms snippet merged into a copy of the template and linted.
lint-ops: setup
	promtool check rules ops/prometheus/alerts.yml
	promtool test rules ops/prometheus/alerts_test.yml
	ops/check-runbooks.sh

# The whole stack on loopback (scripts/dev.sh). `DEV_REDIS_CLUSTER=1 make dev`: on a local 3-master Redis Cluster
# (REDIS_CLUSTER=true for every component) instead of one redis-server.
dev: setup
	@scripts/dev.sh

bench: setup
	cargo run --profile bench-release -p scoreboard-bench -- all

# The peers `bench -- sse` compares the SSE server with (Debian nginx + libnginx-mod-nchan); not in `setup`.
bench-peers:
	@scripts/bench-peers.sh

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

# The worker drain benchmark (issue 9): batched vs naive on the MongoDB-protocol server, and the in-memory
# ceiling. BENCH_WORKER_EVENTS / BENCH_WORKER_MONGO_EVENTS / BENCH_WORKER_BATCHES shrink a run.
bench-worker: setup
	cargo run --profile bench-release -p scoreboard-bench -- worker

# `bench -- cluster`: the pipeline on standalone Redis and a local 3-master cluster (figures on stderr; the
# in-process update handler's EMF lines on stdout are discarded).
bench-cluster: setup
	cargo run --profile bench-release -p scoreboard-bench -- cluster >/dev/null
