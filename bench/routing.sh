#!/usr/bin/env bash
# What the generated dispatch costs on nginx and Envoy at 10,000 routes.
# Not a test.
#
#   bench/routing.sh      # DURATION=10s CONNECTIONS=50 THREADS=2 ROUNDS=3 by default
#   TARGETS=envoy bench/routing.sh   # one target only (default: "nginx envoy")
#
# For each of nginx and Envoy: compiles `bench/gen_spec.py 10000` and a
# one-route spec (a catch-all proxy route, the same gateway policy), times
# the compile, the runtime's own check (`nginx -t`; `envoy --mode validate`)
# and the start-up through `gatefold up` (until the port answers), then runs
# wrk against a plain route of the last api of the big spec and against the
# catch-all, alternating which goes first, and reports the median req/s of
# each and their ratio (the issue's goal: at least 0.9x). Everything listens
# on loopback and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
TARGETS=${TARGETS:-nginx envoy}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
UP_PORT=19400
BIG_PORT=19410
ONE_PORT=19420
WORK=$(mktemp -d /tmp/gatefold-routing.XXXXXX)
# nginx started as root serves from worker processes running as `nobody`:
# they must be able to read the work directories (mktemp makes them 0700).
chmod 755 "$WORK"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx-up/nginx.pid" ] && kill "$(cat "$WORK/nginx-up/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

export PATH="$ROOT/.tools/bin:$PATH"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ENVOY=${GATEFOLD_ENVOY:-$(command -v envoy)}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }

if [ -n "${GATEFOLD_BIN:-}" ]; then
  BIN="$GATEFOLD_BIN"
else
  echo "== building gatefold (release)"
  cargo build --quiet --release -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gatefold"
fi

# Seconds since the epoch, with milliseconds.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }


# Until an HTTP request on port $1 gets an answer (a listening socket alone
# is not enough: nginx's master binds before its workers serve).
wait_http() {
  for _ in $(seq 1 1200); do
    [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$PATH_BIG")" != 000 ] && return 0
    sleep 0.05
  done
  echo "port $1 never answered" >&2
  return 1
}

# --- the upstream ------------------------------------------------------------
mkdir -p "$WORK/nginx-up"
cat >"$WORK/nginx-up/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx-up/nginx.pid;
error_log $WORK/nginx-up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT reuseport; location / { return 200 "ok\n"; } }
}
NGX
"$NGINX" -p "$WORK/nginx-up" -c "$WORK/nginx-up/nginx.conf"
wait_port $UP_PORT 60

# --- the two specs -----------------------------------------------------------
export BENCH_KEY=bench-key-0123456789
python3 bench/gen_spec.py 10000 "http://127.0.0.1:$UP_PORT" >"$WORK/big.yaml"
cat >"$WORK/one.yaml" <<YAML
gatefold: 1
gateway:
  name: bench
  policies:
    - response-headers: { set: { x-served-by: gatefold } }
upstreams:
  up: { targets: [{ url: http://127.0.0.1:$UP_PORT }] }
apis:
  all:
    upstream: up
    routes:
      all: { path: /* }
YAML
# The last api of the big spec has no key-auth (every fifth has) and r46 is
# a templated route without policies of its own: the router has to get past
# everything before it.
PATH_BIG=/api199/r46/7

rps() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$1" >/dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$1" | awk '/^Requests\/sec:/ {print $2}'
}

for target in $TARGETS; do
  echo "== $target"
  t0=$(now)
  "$BIN" compile "$WORK/big.yaml" --target $target --out "$WORK/$target-big" >/dev/null
  echo "compile, 10,000 routes: $(since "$t0") s"
  t0=$(now)
  if [ $target = nginx ]; then
    "$NGINX" -t -q -p "$WORK/$target-big" -c conf/nginx.conf 2>"$WORK/$target-check.err" || true
    echo "nginx -t, 10,000 routes: $(since "$t0") s"
  else
    "$ENVOY" --mode validate -c "$WORK/$target-big/bootstrap.yaml" \
      >"$WORK/$target-check.log" 2>&1 || true
    echo "envoy --mode validate, 10,000 routes: $(since "$t0") s"
  fi
  for which in big one; do
    port=$BIG_PORT; [ $which = one ] && port=$ONE_PORT
    t0=$(now)
    "$BIN" up "$WORK/$which.yaml" --target $target --listen 127.0.0.1:$port \
      --work "$WORK/$target-up-$which" >"$WORK/$target-up-$which.log" 2>&1 &
    PIDS+=($!)
    wait_http $port
    echo "gatefold up ($which) until the port answers: $(since "$t0") s"
  done
  for port in $BIG_PORT $ONE_PORT; do
    code=$(curl -s -o "$WORK/check.out" -w '%{http_code}' "http://127.0.0.1:$port$PATH_BIG")
    [ "$code" = 200 ] || { echo "127.0.0.1:$port$PATH_BIG answered $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1; }
  done
  : >"$WORK/big.runs"; : >"$WORK/one.runs"
  for round in $(seq 1 "$ROUNDS"); do
    order="big one"; [ $((round % 2)) = 0 ] && order="one big"
    for which in $order; do
      port=$BIG_PORT; [ $which = one ] && port=$ONE_PORT
      r=$(rps "http://127.0.0.1:$port$PATH_BIG")
      echo "   round $round $which: $r req/s"
      echo "$r" >>"$WORK/$which.runs"
    done
  done
  big=$(median <"$WORK/big.runs"); one=$(median <"$WORK/one.runs")
  awk -v b="$big" -v o="$one" -v t=$target \
    'BEGIN { printf "%s: 10,000 routes %.0f req/s, catch-all %.0f req/s, ratio %.2fx\n", t, b, o, b / o }'
  # Stop this target's two gateways before the next target runs.
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
done
