#!/usr/bin/env bash
# CPU per request of the Cloudflare target's Worker in workerd, side by side
# with a hand-written minimal proxy Worker in the same workerd. Not a test.
#
#   bench/cloudflare_cpu.sh   # DURATION=8s CONNECTIONS=20 THREADS=2 ROUNDS=3 by default
#
# The Worker is `gatefold up --target cloudflare` on the petstore chain
# (key-auth, a per-consumer rate limit counted by its Durable Object, a
# request and a response header), the limit set high enough never to
# refuse; the minimal Worker only forwards (`fetch(upstream + path)`).
# Both call the same upstream (nginx answering `200 ok`). For each, wrk
# runs ROUNDS times, alternating which goes first; the script reports the
# median req/s and the CPU time (user + system, from /proc) of the workerd
# process per request, and their difference: what the chain costs on top
# of forwarding. Everything listens on loopback and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-20}
THREADS=${THREADS:-2}
UP_PORT=19600
CHAIN_PORT=19610
MIN_PORT=19620
WORK=$(mktemp -d /tmp/gatefold-cfcpu.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/up/nginx.pid" ] && kill "$(cat "$WORK/up/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
scripts/install-runtimes.sh
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORKERD=${GATEFOLD_WORKERD:-$ROOT/.tools/bin/workerd}
if [ -n "${GATEFOLD_BIN:-}" ]; then
  BIN="$GATEFOLD_BIN"
else
  cargo build --quiet --release -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gatefold"
fi

mkdir -p "$WORK/up" "$WORK/chain" "$WORK/min"
cat >"$WORK/up/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/up/nginx.pid;
error_log $WORK/up/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT; location / { return 200 "ok\n"; } } }
NGX
"$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf"
wait_port $UP_PORT

# The petstore chain, one route.
cat >"$WORK/chain/gatefold.yaml" <<YAML
gatefold: 1
gateway: { name: cfcpu }
upstreams:
  pets: { targets: [{ url: http://127.0.0.1:$UP_PORT }] }
consumers:
  acme: { credentials: { key: { env: ACME_API_KEY } } }
apis:
  pets:
    base-path: /pets
    upstream: pets
    policies:
      - key-auth: { in: header, name: x-api-key }
      - rate-limit: { requests: 1000000000, per: 1m, key: consumer }
      - request-headers: { set: { x-gateway: gatefold } }
      - response-headers: { set: { x-served-by: gatefold } }
    routes:
      all: { path: /* }
YAML
export ACME_API_KEY=acme-key-0123456789
"$BIN" up "$WORK/chain" --target cloudflare --listen 127.0.0.1:$CHAIN_PORT \
  >"$WORK/chain.out" 2>"$WORK/chain.err" &
CHAIN_UP=$!
PIDS+=($CHAIN_UP)

# The minimal proxy Worker.
cat >"$WORK/min/worker.js" <<JS
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return fetch("http://127.0.0.1:$UP_PORT" + url.pathname + url.search, request);
  },
};
JS
cat >"$WORK/min/config.capnp" <<CAPNP
using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "min", worker = .min),
    (name = "upstreams", network = (allow = ["public", "local", "private"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:$MIN_PORT", http = (), service = "min") ],
);
const min :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2025-01-01",
  globalOutbound = "upstreams",
);
CAPNP
(cd "$WORK/min" && exec "$WORKERD" serve config.capnp >"$WORK/min.out" 2>&1) &
MIN_PID=$!
PIDS+=($MIN_PID)
wait_port $CHAIN_PORT
wait_port $MIN_PORT

# Both answer before anything is measured; the chain refuses a request
# without its key.
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CHAIN_PORT/pets/1")" = 401
test "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $ACME_API_KEY" "http://127.0.0.1:$CHAIN_PORT/pets/1")" = 200
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MIN_PORT/pets/1")" = 200

measure() { # URL PID [wrk args] -> "req/s cpu_us_per_request"
  local url=$1 pid=$2; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" "$url" >"$WORK/wrk.out"
  after=$(cpu_ticks "$pid")
  if grep -q "Non-2xx" "$WORK/wrk.out"; then echo "non-2xx answers: $(cat "$WORK/wrk.out")" >&2; exit 1; fi
  local rps n
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
  n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  echo "$rps $(awk -v t=$((after - before)) -v us="$TICK_US" -v n="$n" 'BEGIN {printf "%.1f", t * us / n}')"
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"
: >"$WORK/chain.runs"; : >"$WORK/min.runs"
for round in $(seq 1 "$ROUNDS"); do
  order="chain min"; [ $((round % 2)) = 0 ] && order="min chain"
  for w in $order; do
    if [ $w = chain ]; then
      m=$(measure "http://127.0.0.1:$CHAIN_PORT/pets/1" "$CHAIN_UP" -H "x-api-key: $ACME_API_KEY")
    else
      m=$(measure "http://127.0.0.1:$MIN_PORT/pets/1" "$MIN_PID")
    fi
    echo "   $w round $round: $m (req/s, workerd CPU us/request)"
    echo "$m" >>"$WORK/$w.runs"
  done
done
read -r crps ccpu <<<"$(awk '{print $1}' "$WORK/chain.runs" | median) $(awk '{print $2}' "$WORK/chain.runs" | median)"
read -r mrps mcpu <<<"$(awk '{print $1}' "$WORK/min.runs" | median) $(awk '{print $2}' "$WORK/min.runs" | median)"
printf '\n%-44s %12s %16s\n' "Worker (median of $ROUNDS)" "req/s" "CPU us/request"
printf '%-44s %12s %16s\n' "petstore chain (gatefold up cloudflare)" "$crps" "$ccpu"
printf '%-44s %12s %16s\n' "minimal proxy Worker" "$mrps" "$mcpu"
awk -v c="$ccpu" -v m="$mcpu" 'BEGIN { printf "%-44s %29.1f\n", "the chain on top of forwarding (us/request)", c - m }'
# This run's Worker: `gatefold up` works in $TMPDIR/gatefold-up-cloudflare-PID
# (older runs leave theirs behind).
echo "bundle: $(stat -c %s "${TMPDIR:-/tmp}/gatefold-up-cloudflare-$CHAIN_UP/worker.js" 2>/dev/null || echo '?') bytes of worker.js"
