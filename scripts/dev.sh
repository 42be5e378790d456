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
#
# DEV_REDIS_CLUSTER=1 runs the same stack on a local Redis Cluster instead of the standalone redis-server:
# 3 masters (`redis-server --cluster-enabled yes`, joined with `redis-cli --cluster create`) on free loopback
# ports, each durable with AOF `appendfsync always`; both functions, the worker and the SSE server get
# REDIS_CLUSTER=true and every node's URL as the REDIS_URL seeds (comma-separated). The banner names the
# nodes (`redis-cli -c -p <port>` reaches the cluster). The cluster's data lives in a temp dir and is gone
# when `make dev` stops; the scores are not: at the next start each partition that had updates finds its new,
# empty stream behind the store's high-water mark, logs that as an ERROR in .dev/worker.log (the "Redis lost
# entries" path of docs/design.md §5.4: the stream id is moved past it) and is rebuilt from .dev/'s
# MongoDB-protocol database.
#
#   DEV_REDIS_CLUSTER=1 make dev
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/venv/bin:$PATH"

tools=(redis-server nx-27017 cargo-lambda)
case "${DEV_REDIS_CLUSTER:-0}" in
  1 | true) tools+=(redis-cli) ;;
esac
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "dev: $tool not found; run \`make setup\` first" >&2; exit 1; }
done

cargo build -q -p scoreboard-e2e --bin scoreboard-dev
exec target/debug/scoreboard-dev
