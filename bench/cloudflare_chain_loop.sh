#!/usr/bin/env bash
# Where the Cloudflare Worker's CPU goes, without the network's noise: the
# petstore chain's worker.js (as bench/cloudflare_cpu.sh compiles it) runs
# in workerd with a harness added that, inside ONE request, builds N
# requests and answers each with the chain, upstream fetch() replaced by a
# Response made in JavaScript. The CPU of workerd over those N, per
# request, for three loops:
#
#   minimal   the minimal proxy Worker's body (URL parse + fetch)
#   chain     the chain, its Durable Object replaced by a stub lending at
#             once all the counts asked for
#   chain+DO  the chain with its real rate-limit Durable Object (one call
#             per loan of counts, see js/ratelimit.js)
#   chain+nop the chain calling the same object's `nop()` instead of
#             `lease()`, which lends one count: an RPC per request without
#             the object's own work, as every request called it before
#             loans (the RPC's own cost)
#
#   bench/cloudflare_chain_loop.sh   # N=5000 ROUNDS=3 by default
#   COUNT=instructions bench/cloudflare_chain_loop.sh
#
# COUNT=instructions runs workerd under valgrind's callgrind and reports
# instructions per request instead (N=1000 ROUNDS=1 by default): a figure
# that holds still on a noisy machine where the CPU times move by half
# from run to run (about 50 times slower; V8's compiled code is counted
# as it runs).
#
# The goal's figure is chain+DO less minimal (the chain on top of the
# minimal body); chain+DO less chain is what the object's loans cost.
# the HTTP server and client (the same for every Worker) are left out,
# so these are smaller than bench/cloudflare_cpu.sh's figures. Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh
COUNT=${COUNT:-cpu}
case $COUNT in
  cpu) N=${N:-5000} ROUNDS=${ROUNDS:-3} UNIT="workerd CPU us/request" ;;
  instructions) N=${N:-1000} ROUNDS=${ROUNDS:-1} UNIT="workerd instructions/request" ;;
  *) echo "COUNT is cpu or instructions, not $COUNT" >&2; exit 2 ;;
esac
PORT=19630
WORKERD=${GATEFOLD_WORKERD:-$ROOT/.tools/bin/workerd}
if [ -n "${GATEFOLD_BIN:-}" ]; then
  BIN="$GATEFOLD_BIN"
else
  cargo build --quiet --release -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gatefold"
fi
WORK=$(mktemp -d /tmp/gatefold-cfloop.XXXXXX)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true' EXIT

# The chain of bench/cloudflare_cpu.sh (its upstream is never reached).
mkdir -p "$WORK/spec"
cat >"$WORK/spec/gatefold.yaml" <<YAML
gatefold: 1
gateway: { name: cfloop }
upstreams:
  pets: { targets: [{ url: http://127.0.0.1:9 }] }
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
"$BIN" compile "$WORK/spec" --target cloudflare --out "$WORK/out" >/dev/null
sed -i "s/address = \"[^\"]*\"/address = \"127.0.0.1:$PORT\"/" "$WORK/out/config.capnp"

# The Worker's own default export goes; the harness's replaces it.
python3 - "$WORK/out/worker.js" <<'PY'
import sys
path = sys.argv[1]
src = open(path).read()
start = src.index("export default {")
end = src.index("\n};\n", start) + 4
harness = r'''
// ---- bench harness (bench/cloudflare_chain_loop.sh) ----
globalThis.fetch = async () =>
  new Response("ok\n", { status: 200, headers: { "content-type": "text/plain", "content-length": "3" } });
const STUB_DO = {
  idFromName: (n) => n,
  get: () => ({ lease: async (key, perMs, limit, want) => want + " " + want + " 60000 1" }),
};
// The real object, its `lease` answered by an empty method over the same
// RPC, lending one count: a call per request.
GatefoldRateLimit.prototype.nop = function () { return "1 1 60000 1"; };
const nopDo = (ns) => ({
  idFromName: (n) => ns.idFromName(n),
  get: (id) => {
    const stub = ns.get(id);
    return { lease: () => stub.nop() };
  },
});
export default {
  async fetch(req, env, ctx) {
    const q = new URL(req.url).searchParams;
    const n = Number(q.get("n"));
    const mode = q.get("mode");
    const e =
      mode === "chain"
        ? Object.assign({}, env, { GATEFOLD_RATE_LIMIT: STUB_DO })
        : mode === "nop"
          ? Object.assign({}, env, { GATEFOLD_RATE_LIMIT: nopDo(env.GATEFOLD_RATE_LIMIT) })
          : env;
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const r = new Request("http://127.0.0.1/pets/1", {
        headers: { host: "127.0.0.1", "x-api-key": env.ACME_API_KEY, "user-agent": "bench", accept: "*/*" },
      });
      let resp;
      if (mode === "minimal") {
        const url = new URL(r.url);
        resp = await fetch("http://127.0.0.1:9" + url.pathname + url.search, r);
      } else {
        resp = await handle(r, e, ctx);
      }
      if (resp.status === 200) ok++;
      await resp.arrayBuffer();
    }
    return new Response(String(ok));
  },
};
'''
open(path, "w").write(src[:start] + src[end:] + harness)
PY

export ACME_API_KEY=acme-key-0123456789
# What a loop is measured with: workerd's CPU ticks, or (COUNT=instructions)
# its instructions under callgrind, zeroed before the loop and dumped after
# it to a new file whose `totals:` line has the count.
if [ "$COUNT" = instructions ]; then
  UNDER=(valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$WORK/callgrind.out")
  STARTING=300 SCALE=1 FORMAT=%.0f
  count_from() { callgrind_control -z "$PID" >/dev/null; echo 0; }
  count_now() {
    rm -f "$WORK"/callgrind.out.*
    callgrind_control -d "$PID" >/dev/null
    awk '/^totals:/ {print $2}' "$WORK"/callgrind.out.*
  }
else
  UNDER=()
  STARTING=30 SCALE=$TICK_US FORMAT=%.1f
  count_from() { cpu_ticks "$PID"; }
  count_now() { cpu_ticks "$PID"; }
fi
(cd "$WORK/out" && exec "${UNDER[@]}" "$WORKERD" serve config.capnp >"$WORK/workerd.log" 2>&1) &
PID=$!
wait_port $PORT $STARTING

loop() { # MODE -> CPU us (or instructions) per request
  curl -s "http://127.0.0.1:$PORT/?n=500&mode=$1" >/dev/null
  local before after got
  before=$(count_from)
  got=$(curl -s "http://127.0.0.1:$PORT/?n=$N&mode=$1")
  after=$(count_now)
  [ "$got" = "$N" ] || { echo "$1: $got of $N answered 200" >&2; tail -5 "$WORK/workerd.log" >&2; exit 1; }
  awk -v t=$((after - before)) -v s="$SCALE" -v n="$N" -v f="$FORMAT" 'BEGIN {printf f, t * s / n}'
}

echo "== $N requests per loop, $ROUNDS rounds ($UNIT)"
for mode in minimal chain chain+nop chain+DO; do : >"$WORK/$mode.runs"; done
for round in $(seq 1 "$ROUNDS"); do
  line="   round $round:"
  for mode in minimal chain chain+nop chain+DO; do
    m=$(loop "$(case $mode in chain+DO) echo do ;; chain+nop) echo nop ;; *) echo $mode ;; esac)")
    echo "$m" >>"$WORK/$mode.runs"
    line="$line $mode $m"
  done
  echo "$line"
done
med() { median <"$WORK/$1.runs"; }
printf '\n%-44s %10s\n' "loop (median of $ROUNDS)" "$UNIT"
printf '%-44s %10s\n' "minimal proxy" "$(med minimal)" "chain, Durable Object stubbed" "$(med chain)" \
  "chain, an empty call per request" "$(med chain+nop)" "chain with its Durable Object" "$(med chain+DO)"
awk -v m="$(med minimal)" -v c="$(med chain)" -v o="$(med chain+nop)" -v d="$(med chain+DO)" 'BEGIN {
  printf "%-44s %10.1f\n%-44s %10.1f\n", "the chain on top of the minimal body", d - m, "  of which the object'"'"'s loans", d - c
  printf "%-44s %10.1f\n", "an RPC per request instead (empty method)", o - c }'
