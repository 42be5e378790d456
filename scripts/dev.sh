#!/usr/bin/env bash
# Runs the whole stack locally (`make dev`): redis-server, the MongoDB-protocol server (nx-27017), both
# Lambda functions under `cargo lambda watch` (function URLs), the worker and the SSE server with the demo
# page. The stack is started by the same code as the end-to-end tests (e2e/src/stack.rs), through the
# `scoreboard-dev` binary, which prints the URLs, a ready-to-use token and curl examples. Ctrl-C stops
# everything it started.
#
# State lives under .dev/ (gitignored): logs, the Redis dir, the MongoDB-protocol database, the dev JWT secret.
# Ports can be moved with DEV_REDIS_PORT, DEV_MONGO_PORT, DEV_LAMBDA_PORT, DEV_SSE_PORT, DEV_SSE_METRICS_PORT,
# DEV_WORKER_PORT. DEV_OBSERVABILITY=1 also starts Prometheus (127.0.0.1:9090) with the alert rules and a Redis exporter.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/venv/bin:$PATH"

for tool in redis-server nx-27017 cargo-lambda; do
  command -v "$tool" >/dev/null || { echo "dev: $tool not found; run \`make setup\` first" >&2; exit 1; }
done

cargo build -q -p scoreboard-e2e --bin scoreboard-dev
exec target/debug/scoreboard-dev
