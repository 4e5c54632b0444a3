#!/usr/bin/env bash
# Fleet sync at scale: GATEWAYS reference gateways (`gatefold serve`, 50 by
# default) on loopback, one fleet file naming them all. Not a test.
#
#   bench/fleet.sh          # GATEWAYS=50 ROUNDS=3 ROUTES=5000 by default
#
# For a small spec (one api, two routes) and a ROUTES-route spec
# (bench/gen_spec.py), it measures, each the median of ROUNDS runs:
#
#   plan      `gatefold plan` when every gateway is in sync (goal: < 1 s)
#   apply     `gatefold apply --yes` changing every gateway (the spec
#             alternates between two versions, so every round changes all)
#   single    the same apply on a fleet of one gateway
#   ratio     apply / single (goal: < 3x for 50 gateways); with nginx
#             and Envoy in the fleet also apply / the slowest single
#             apply of any kind, since a fleet waits for its slowest
#
# plus the CPU time (user + system) of the gatefold process itself for the
# fleet apply and for the single apply, and that of the 50 gateways during
# the fleet apply (from /proc), which tells gatefold's own cost from the
# gateways' (they run on the same machine, so their loading of the config
# shares its cores).
# GATEFOLD_BIN picks the binary (to compare two builds in one session).
# RUNTIMES="nginx envoy" (the default; "" for none) adds one nginx and one
# Envoy (`gatefold up --work DIR`, the config directories the nginx and
# envoy providers change) to the fleet, beside the reference gateways;
# each is also applied alone (`single nginx`, `single envoy`), so the
# table shows what one of them costs. Everything listens on 127.0.0.1 and
# is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

GATEWAYS=${GATEWAYS:-50}
ROUNDS=${ROUNDS:-3}
ROUTES=${ROUTES:-5000}
RUNTIMES=${RUNTIMES-nginx envoy}
BIN=${GATEFOLD_BIN:-$ROOT/target/release/gatefold}
TOKEN=bench-fleet-token
WORK=$(mktemp -d /tmp/gatefold-fleet-bench.XXXXXX)
# nginx started as root serves from workers running as `nobody`: they
# read the work directories (mktemp makes them 0700).
chmod 755 "$WORK"
PIDS=()

UPS=()

cleanup() {
  for p in "${UPS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$BIN" ]; then
  echo "== building gatefold (release)"
  cargo build --release -p gatefold
fi

cat > "$WORK/boot.yaml" <<'EOF'
gatefold: 1
apis:
  boot:
    routes:
      up: { path: /up, policies: [ { mock: { status: 204 } } ] }
EOF

# Starts gateway $1; its admin address goes to $WORK/gw$1.admin.
start() {
  local i=$1
  GATEFOLD_ADMIN_TOKEN=$TOKEN BENCH_KEY=bench-key "$BIN" serve "$WORK/boot.yaml" \
    --listen 127.0.0.1:0 --admin 127.0.0.1:0 --workers 1 --no-access-log \
    > /dev/null 2> "$WORK/gw$i.log" &
  PIDS+=($!)
}

admin_of() {
  local i=$1 n=0
  until grep -q '^gatefold: admin API on ' "$WORK/gw$i.log" 2>/dev/null; do
    n=$((n + 1))
    [ $n -gt 600 ] && { echo "gateway $i never started:"; cat "$WORK/gw$i.log"; exit 1; }
    sleep 0.1
  done
  sed -n 's/^gatefold: admin API on //p' "$WORK/gw$i.log" | head -1
}

echo "== starting $GATEWAYS reference gateways (+1 for the single-gateway fleet)"
for i in $(seq 0 "$GATEWAYS"); do start "$i"; done

# One nginx and one Envoy on the boot spec for the fleet, and another of
# each for its single-gateway fleet, each in a work directory of its own
# (`gatefold up --work`), as examples/fleet/README.md starts them.
port=19700
RUNTIME_LINES=()
# up NAME TARGET: starts it; prints its fleet entry.
up() {
  local name=$1 rt=$2 n=0
  port=$((port + 1))
  BENCH_KEY=bench-key "$BIN" up "$WORK/boot.yaml" --target "$rt" --listen "127.0.0.1:$port" \
    --work "$WORK/$name" > /dev/null 2> "$WORK/$name.log" &
  UPS+=($!)
  until curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/up"; do
    n=$((n + 1))
    [ $n -gt 600 ] && { echo "$name never answered:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  ENTRY="    $name: { provider: $rt, config-dir: $WORK/$name, listen: \"127.0.0.1:$port\" }"
}
for rt in $RUNTIMES; do
  echo "== starting $rt (gatefold up) for the fleet and for its single-gateway fleet"
  up "$rt-1" "$rt"
  RUNTIME_LINES+=("$ENTRY")
  up "$rt-0" "$rt"
  printf 'gatefold: 1\nfleet:\n  spec: spec.yaml\n  gateways:\n%s\n' "$ENTRY" > "$WORK/single-$rt.yaml"
done

# fleet.yaml: gateways 1..N and the runtimes; single.yaml: gateway 0.
{
  printf 'gatefold: 1\nfleet:\n  spec: spec.yaml\n  gateways:\n'
  for i in $(seq 1 "$GATEWAYS"); do
    printf '    gw%s: { provider: reference, admin: "%s", token: { env: FLEET_TOKEN } }\n' "$i" "$(admin_of "$i")"
  done
  for l in "${RUNTIME_LINES[@]}"; do printf '%s\n' "$l"; done
} > "$WORK/fleet.yaml"
printf 'gatefold: 1\nfleet:\n  spec: spec.yaml\n  gateways:\n    gw0: { provider: reference, admin: "%s", token: { env: FLEET_TOKEN } }\n' \
  "$(admin_of 0)" > "$WORK/single.yaml"
export FLEET_TOKEN=$TOKEN

# Milliseconds `gatefold ARGS` takes; fails the run when the exit code is
# not $EXPECT. The CPU time (user + system, ms) is left in $WORK/cpu.
run_ms() {
  local start end rc=0
  start=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$WORK/time" "$BIN" "$@" > "$WORK/out" 2>&1 || rc=$?
  end=$(date +%s%N)
  if [ "$rc" != "$EXPECT" ]; then
    echo "gatefold $* exited $rc (wanted $EXPECT):" >&2
    tail -20 "$WORK/out" >&2
    exit 1
  fi
  awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$WORK/time" > "$WORK/cpu"
  echo $(((end - start) / 1000000))
}

# CPU time (user + system, ms) the fleet's gateways (not gateway 0) have
# used so far, from /proc/PID/stat (fields 14 and 15, in clock ticks).
gateways_cpu() {
  local hz
  hz=$(getconf CLK_TCK)
  for p in "${PIDS[@]:1}"; do cat "/proc/$p/stat"; done |
    awk -v hz="$hz" '{ t += $14 + $15 } END { printf "%d\n", t * 1000 / hz }'
}

median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# One spec, both versions ($1 and $2 are files): prints a table row.
measure() {
  local label=$1 v1=$2 v2=$3 plans=() applies=() singles=() cpus=() gws=() scpus=() r g0
  # Start from version 1 everywhere.
  cp "$v1" "$WORK/spec.yaml"
  EXPECT=0 run_ms apply "$WORK/fleet.yaml" --yes > /dev/null
  EXPECT=0 run_ms apply "$WORK/single.yaml" --yes > /dev/null
  for rt in $RUNTIMES; do
    EXPECT=0 run_ms apply "$WORK/single-$rt.yaml" --yes > /dev/null
    rm -f "$WORK/single-$rt.ms"
  done
  for r in $(seq 1 "$ROUNDS"); do
    plans+=("$(EXPECT=0 run_ms plan "$WORK/fleet.yaml")")
    if [ $((r % 2)) = 1 ]; then cp "$v2" "$WORK/spec.yaml"; else cp "$v1" "$WORK/spec.yaml"; fi
    g0=$(gateways_cpu)
    applies+=("$(EXPECT=0 run_ms apply "$WORK/fleet.yaml" --yes)")
    cpus+=("$(cat "$WORK/cpu")")
    gws+=("$(($(gateways_cpu) - g0))")
    grep -q "apply: ok" "$WORK/out" || { cat "$WORK/out"; exit 1; }
    singles+=("$(EXPECT=0 run_ms apply "$WORK/single.yaml" --yes)")
    scpus+=("$(cat "$WORK/cpu")")
    for rt in $RUNTIMES; do
      echo "$(EXPECT=0 run_ms apply "$WORK/single-$rt.yaml" --yes)" >> "$WORK/single-$rt.ms"
    done
  done
  local p a s c gw sc
  p=$(echo "${plans[*]}" | median)
  a=$(echo "${applies[*]}" | median)
  s=$(echo "${singles[*]}" | median)
  c=$(echo "${cpus[*]}" | median)
  gw=$(echo "${gws[*]}" | median)
  sc=$(echo "${scpus[*]}" | median)
  local singles_rt="" rt m slowest=$s
  for rt in $RUNTIMES; do
    m=$(median < "$WORK/single-$rt.ms")
    singles_rt="$singles_rt $m ms |"
    [ "$m" -gt "$slowest" ] && slowest=$m
  done
  printf '| %s | %s ms | %s ms | %s ms | %s ms | %s ms | %s ms |%s %s | %s |\n' "$label" "$p" "$a" "$c" "$gw" "$s" "$sc" "$singles_rt" \
    "$(awk -v a="$a" -v s="$s" 'BEGIN { printf "%.1fx", a / s }')" \
    "$(awk -v a="$a" -v s="$slowest" 'BEGIN { printf "%.1fx", a / s }')"
}

cat > "$WORK/small1.yaml" <<'EOF'
gatefold: 1
apis:
  hello:
    routes:
      hello: { path: /hello, methods: [GET], policies: [ { mock: { json: { message: one } } } ] }
      pets: { path: /pets, methods: [GET], policies: [ { mock: { json: { pets: [rex] } } } ] }
EOF
sed 's/message: one/message: two/' "$WORK/small1.yaml" > "$WORK/small2.yaml"
python3 bench/gen_spec.py "$ROUTES" > "$WORK/big1.yaml"
sed 's/x-served-by: gatefold/x-served-by: gatefold-2/' "$WORK/big1.yaml" > "$WORK/big2.yaml"

echo "== $GATEWAYS gateways, medians of $ROUNDS rounds ($(nproc) cores)"
heads="" rules=""
for rt in $RUNTIMES; do heads="$heads single $rt apply |"; rules="$rules---|"; done
echo "== the fleet: $GATEWAYS reference gateways${RUNTIMES:+ and one each of: $RUNTIMES}"
echo "| spec | no-change plan | apply, all changed | gatefold CPU of that apply | reference gateways' CPU of that apply | single-gateway apply (reference) | gatefold CPU of that apply |$heads ratio (fleet / single reference) | ratio (fleet / slowest single) |"
echo "|---|---|---|---|---|---|---|$rules---|---|"
measure "2 routes" "$WORK/small1.yaml" "$WORK/small2.yaml"
measure "$ROUTES routes" "$WORK/big1.yaml" "$WORK/big2.yaml"
