#!/usr/bin/env bash
# Runs the whole stack locally (`make dev`): redis-server, the MongoDB-protocol server (nx-27017), both
# Lambda functions under `cargo lambda watch` (function URLs), the worker and the SSE server with the demo
# page. Prints the URLs, a ready-to-use token and curl examples. Ctrl-C stops everything it started.
#
# State lives under .dev/ (gitignored): logs, the Redis dir, the MongoDB-protocol database, the dev JWT secret.
# Ports can be moved with DEV_REDIS_PORT, DEV_MONGO_PORT, DEV_LAMBDA_PORT, DEV_SSE_PORT, DEV_WORKER_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.tools/venv/bin:$PATH"

REDIS_PORT=${DEV_REDIS_PORT:-6379}
MONGO_PORT=${DEV_MONGO_PORT:-27017}
LAMBDA_PORT=${DEV_LAMBDA_PORT:-9000}
SSE_PORT=${DEV_SSE_PORT:-8080}
WORKER_PORT=${DEV_WORKER_PORT:-9091}
HOST=127.0.0.1

DEV=$ROOT/.dev
LOGS=$DEV/logs
mkdir -p "$LOGS" "$DEV/redis" "$DEV/mongo"

say() { printf '\033[1;34mdev:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mdev:\033[0m %s\n' "$*" >&2; exit 1; }

for tool in redis-server nx-27017 cargo-lambda curl; do
  command -v "$tool" >/dev/null || die "$tool not found; run \`make setup\` first"
done

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
for port in "$REDIS_PORT" "$MONGO_PORT" "$LAMBDA_PORT" "$SSE_PORT" "$WORKER_PORT"; do
  port_busy "$port" && die "port $port is in use (another \`make dev\`?); stop it or set DEV_*_PORT"
done

# A per-checkout HS256 secret, created once, readable only by you.
if [ ! -s "$DEV/jwt_secret" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$DEV/jwt_secret")
fi
JWT_SECRET=$(cat "$DEV/jwt_secret")

REDIS_URL="redis://$HOST:$REDIS_PORT"
MONGODB_URI="mongodb://$HOST:$MONGO_PORT"
MONGODB_DATABASE=scoreboard
FUNCTIONS="http://$HOST:$LAMBDA_PORT/lambda-url"
UPDATE_URL="$FUNCTIONS/update/api/v1/scores/update"
LEADERBOARD_URL="$FUNCTIONS/leaderboard/api/v1/scores/leaderboard"
PAGE_URL="http://$HOST:$SSE_PORT/"

# ---- process bookkeeping: every child runs in its own session so Ctrl-C reaches only this script ----
PIDS=()
NAMES=()
cleanup() {
  trap - EXIT INT TERM
  echo
  say "stopping…"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM -- "-${PIDS[i]}" 2>/dev/null || kill -TERM "${PIDS[i]}" 2>/dev/null || true
  done
  for ((i = 0; i < 50; i++)); do
    local alive=0 pid
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD… — logs to .dev/logs/NAME.log
  local name=$1
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  PIDS+=("$!")
  NAMES+=("$name")
}

wait_port() { # wait_port NAME PORT SECONDS
  local name=$1 port=$2 secs=$3 i pid_index=$((${#PIDS[@]} - 1))
  for ((i = 0; i < secs * 10; i++)); do
    port_busy "$port" && return 0
    kill -0 "${PIDS[pid_index]}" 2>/dev/null || { tail -20 "$LOGS/$name.log" >&2; die "$name exited; log: $LOGS/$name.log"; }
    sleep 0.1
  done
  tail -20 "$LOGS/$name.log" >&2
  die "$name did not listen on $port within ${secs}s; log: $LOGS/$name.log"
}

say "building the binaries (first run takes a few minutes)…"
cargo build -q -p scoreboard-worker -p scoreboard-sse -p update -p leaderboard

say "starting redis-server on $REDIS_PORT"
start redis redis-server --port "$REDIS_PORT" --bind "$HOST" --dir "$DEV/redis" \
  --save "" --appendonly no --daemonize no
wait_port redis "$REDIS_PORT" 10

say "starting the MongoDB-protocol server (nx-27017) on $MONGO_PORT"
start mongo nx-27017 --host "$HOST" -p "$MONGO_PORT" --db "$DEV/mongo/scoreboard.db" \
  --pid-file "$DEV/mongo/nx-27017.pid" --log-file "$LOGS/mongo-server.log"
wait_port mongo "$MONGO_PORT" 30

cat >"$DEV/functions.env" <<EOF
REDIS_URL=$REDIS_URL
JWT_SECRET=$JWT_SECRET
RUST_LOG=info
EOF
chmod 600 "$DEV/functions.env"
say "starting both functions under cargo lambda watch on $LAMBDA_PORT"
start functions cargo lambda watch --invoke-address "$HOST" --invoke-port "$LAMBDA_PORT" \
  --env-file "$DEV/functions.env"
wait_port functions "$LAMBDA_PORT" 120

say "starting the worker"
start worker env REDIS_URL="$REDIS_URL" STORE=mongodb MONGODB_URI="$MONGODB_URI" \
  MONGODB_DATABASE="$MONGODB_DATABASE" METRICS_ADDR="$HOST:$WORKER_PORT" RUST_LOG=info \
  "$ROOT/target/debug/scoreboard-worker"

say "starting the SSE server and demo page on $SSE_PORT"
start sse env BIND_ADDR="$HOST:$SSE_PORT" REDIS_URL="$REDIS_URL" JWT_SECRET="$JWT_SECRET" \
  DEV_MODE=true DEV_UPDATE_URL="$UPDATE_URL" CORS_ALLOWED_ORIGINS="http://$HOST:$SSE_PORT" \
  RUST_LOG=info "$ROOT/target/debug/scoreboard-sse"
wait_port sse "$SSE_PORT" 30

TOKEN=$(curl -fsS -X POST "http://$HOST:$SSE_PORT/dev/token" -H 'content-type: application/json' \
  -d '{"name":"Ada"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
[ -n "$TOKEN" ] || die "could not mint a dev token"

# The emulator compiles a function on its first call: warm both up now, not on the first click.
say "warming up the functions (compiles them on first use)…"
for url in "$LEADERBOARD_URL" "$UPDATE_URL"; do
  curl -sS -o /dev/null --max-time 600 -X GET "$url" -H "Authorization: Bearer $TOKEN" || true
done

cat <<EOF

  ┌─ Scoreboard is running ──────────────────────────────────────────────────────
  │ Demo page        $PAGE_URL
  │ Update function  POST $UPDATE_URL
  │ Leaderboard fn   GET  $LEADERBOARD_URL
  │ SSE stream       GET  http://$HOST:$SSE_PORT/api/v1/scores/events
  │ Metrics          http://$HOST:$SSE_PORT/metrics   http://$HOST:$WORKER_PORT/metrics
  │ Logs             $LOGS/
  └──────────────────────────────────────────────────────────────────────────────

  Token for demo user "Ada" (valid 1 h; mint more: POST http://$HOST:$SSE_PORT/dev/token {"name":"…"}):

    export TOKEN=$TOKEN

  Try it:

    curl -i -X POST $UPDATE_URL \\
      -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"scoreIncrement": 10}'
    curl -s $LEADERBOARD_URL -H "Authorization: Bearer \$TOKEN"
    curl -N "http://$HOST:$SSE_PORT/api/v1/scores/events" -H "Authorization: Bearer \$TOKEN"

  Ctrl-C stops everything.
EOF

# Stay up until Ctrl-C, or until a component dies (then say which and stop the rest).
while true; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
      tail -20 "$LOGS/${NAMES[i]}.log" >&2 || true
      die "${NAMES[i]} exited; log: $LOGS/${NAMES[i]}.log"
    fi
  done
  sleep 1
done
