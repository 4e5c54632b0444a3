#!/usr/bin/env bash
# User-space instructions one reference gateway spends on a fleet apply of
# a large spec (make and check the new IR from the changes `gatefold apply`
# sends, or parse and check a whole pushed IR with gatefold before stop 16;
# build the runtime; answer the plan's GET /config and the verify's
# GET /status), counted by valgrind's callgrind, so two versions compare on
# a shared, noisy machine. This is the per-gateway cost that
# bench/fleet.sh's 50 gateways pay on two cores (all but one of them
# without the GET /config, which the plan asks of one gateway per running
# config). Not a test.
#
#   bench/gateway_load.sh                  # ROUTES=5000 ROUNDS=4
#   GATEFOLD_BIN=/path/to/gatefold bench/gateway_load.sh
#
# Starts `gatefold serve` (one worker) under callgrind with counting off,
# applies the spec once untimed, turns counting on, runs ROUNDS applies of
# a single-gateway fleet (the spec alternating between two versions, so
# each apply changes the gateway) and prints the instructions per apply.
# Note: under valgrind, sha2 runs its portable code, not the SHA-NI one a
# real CPU uses, so the IR's hash check weighs more here than in `perf`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUTES=${ROUTES:-5000}
ROUNDS=${ROUNDS:-4}
if [ -n "${GATEFOLD_BIN:-}" ]; then
  BIN="$GATEFOLD_BIN"
else
  cargo build --quiet --profile dist -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/dist/gatefold"
fi
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
WORK=$(mktemp -d /tmp/gatefold-gwload.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true' EXIT
export GATEFOLD_ADMIN_TOKEN=bench-token FLEET_TOKEN=bench-token BENCH_KEY=bench-key

printf 'gatefold: 1\napis:\n  boot:\n    routes:\n      up: { path: /up, policies: [ { mock: { status: 204 } } ] }\n' >"$WORK/boot.yaml"
python3 bench/gen_spec.py "$ROUTES" >"$WORK/spec1.yaml"
sed 's/x-served-by: gatefold/x-served-by: gatefold-2/' "$WORK/spec1.yaml" >"$WORK/spec2.yaml"

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
  "$BIN" serve "$WORK/boot.yaml" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 \
  --no-access-log >/dev/null 2>"$WORK/gateway.log" &
PID=$!
n=0
until grep -q '^gatefold: admin API on ' "$WORK/gateway.log" 2>/dev/null; do
  n=$((n + 1))
  [ $n -gt 600 ] && { echo "the gateway never started:"; cat "$WORK/gateway.log"; exit 1; }
  sleep 0.1
done
admin=$(sed -n 's/^gatefold: admin API on //p' "$WORK/gateway.log" | head -1)
printf 'gatefold: 1\nfleet:\n  spec: spec.yaml\n  gateways:\n    gw: { provider: reference, admin: "%s", token: { env: FLEET_TOKEN } }\n' \
  "$admin" >"$WORK/fleet.yaml"

apply() {
  cp "$WORK/spec$1.yaml" "$WORK/spec.yaml"
  "$BIN" apply "$WORK/fleet.yaml" --yes >"$WORK/apply.log" 2>&1 || { cat "$WORK/apply.log"; exit 1; }
}
apply 1
callgrind_control -i on "$PID" >/dev/null
for i in $(seq 1 "$ROUNDS"); do apply $((i % 2 + 1)); done
callgrind_control -i off "$PID" >/dev/null
kill -INT "$PID"
wait "$PID" 2>/dev/null || true
PID=
# callgrind writes `totals:` (what was counted) and a `summary:` that
# stays 0 when counting starts off.
total=$(awk '/^totals:/ {t += $2} /^summary:/ {s += $2} END {print (t > 0 ? t : s)}' "$WORK"/callgrind.out*)
echo "$ROUTES routes, $ROUNDS applies: $((total / ROUNDS)) instructions per apply ($BIN)"
rm -rf "$WORK"
