#!/usr/bin/env bash
# Benchmark of the reference gateway against NGINX with the same routes and
# policies, measured in the same run on this machine. Not a test.
#
#   bench/run.sh        # DURATION=10s CONNECTIONS=50 THREADS=2 ROUNDS=3 by default
#   PROFILES="C D" bench/run.sh   # only these profiles
#   WORKERS=1 bench/run.sh        # one worker per gateway instead of one per core
#
# Installs wrk and nginx (Debian packages) when missing, builds gatefold in
# its `dist` profile (release + LTO), starts an upstream (nginx answering `200 ok`), the reference
# gateway and an nginx gateway on 127.0.0.1, and runs wrk against each:
#
#   A  plain proxy
#   B  key-auth + rate-limit (high enough never to refuse) + one request header
#   C  TLS handshake + request, resumed: profile A over HTTPS with
#      `connection: close`, so every request pays a handshake. wrk keeps the
#      TLS session of a connection slot (SSL_clear), so it resumes it: both
#      gateways allow resumption (nginx: shared session cache and tickets;
#      the reference: a session cache and one ticket per connection).
#      The reference puts the SHA-256 suites first for a client preferring
#      AES-GCM (as Go's crypto/tls does); nginx follows the client's order
#      (OpenSSL's: AES-256-GCM-SHA384 first), so C and D also run against a
#      second nginx server set to the reference's choice ("AES-128 first").
#      Both nginx servers offer TLS 1.3 as the reference does (`ssl_protocols
#      TLSv1.2 TLSv1.3`): nginx 1.22's default stops at 1.2, whose resumed
#      handshake skips the key exchange that TLS 1.3's (psk_dhe_ke) makes,
#      so until stop 14 profile C compared a 1.2 nginx with a 1.3 reference.
#   D  TLS full handshake + request: `openssl s_time -new` (THREADS clients
#      at once, HTTP/1.0 GET), which never resumes; connections per second
#      and the gateway's CPU per connection. Same ECDSA P-256 certificate.
#   E  a portable script: the tenant-routing script of
#      ../shared/design/scripts.md (request and response side) on one route,
#      the reference gateway evaluating it natively against nginx and Envoy
#      running the Lua gatefold emits for it (`gatefold up --target
#      nginx|envoy`).
#
# Profiles A and B also run on `gatefold up --target nginx` and `--target
# envoy` (the same spec without its TLS listener), beside the hand-written
# nginx: what the compiled configurations cost against both. Profile A also
# runs `bench/hyper-floor`: hyper's HTTP/1 server and client passing requests
# through with nothing else, shaped as the reference runs them (the floor
# under the reference's cost while it speaks HTTP through hyper).
#
# For each run it also reports the gateway's CPU time per request (user +
# system, from /proc), which the machine's other load disturbs much less than
# req/s. Then: RSS of `gatefold serve` with 1,000 routes loaded, and the time
# `PUT /config` takes for 10,000 routes (as a spec, and as a compiled IR).
# Everything it starts listens on loopback and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh

DURATION=${DURATION:-10s}
# Rounds per gateway and profile, alternating which goes first; the median
# is reported (a shared 2-core machine is noisy).
ROUNDS=${ROUNDS:-3}
# PROFILES="C D" runs only those (the memory and reload figures still run).
PROFILES=${PROFILES:-A B C D E}
CONNECTIONS=${CONNECTIONS:-50}
# Worker threads of the reference and the floor and worker processes of the
# hand-written nginx; one per core when unset. WORKERS=1 gives each gateway
# one worker, so a gateway can use one core's worth of CPU while wrk and the
# upstream use the rest (nothing is pinned to a core; `gatefold up`'s
# gateways keep their own defaults).
WORKERS=${WORKERS:-}
THREADS=${THREADS:-2}
UP_PORT=19000
REF_PORT=19100
REF_ADMIN=19101
NGX_PORT=19200
REF_TLS_PORT=19110
NGX_TLS_PORT=19210
NGX_TLS128_PORT=19211  # profiles C and D: nginx choosing the suites as the reference does
UPNGX_PORT=19400     # gatefold up --target nginx, profiles A and B
UPENV_PORT=19500     # gatefold up --target envoy, profiles A and B
REF_S_PORT=19120     # profile E: the reference gateway, scripted spec
UPNGX_S_PORT=19410   # profile E: nginx
UPENV_S_PORT=19510   # profile E: Envoy
FLOOR_PORT=19600     # profile A: bench/hyper-floor
ports_free $UP_PORT $REF_PORT $REF_ADMIN $NGX_PORT $REF_TLS_PORT $NGX_TLS_PORT $NGX_TLS128_PORT \
  $UPNGX_PORT $UPENV_PORT $REF_S_PORT $UPNGX_S_PORT $UPENV_S_PORT $FLOOR_PORT 19121 19300 19301
WORK=$(mktemp -d /tmp/gatefold-bench.XXXXXX)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx-up/nginx.pid" ] && kill "$(cat "$WORK/nginx-up/nginx.pid")" 2>/dev/null || true
  [ -f "$WORK/nginx-gw/nginx.pid" ] && kill "$(cat "$WORK/nginx-gw/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "== installing wrk"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq wrk >/dev/null
fi
# nginx with its Lua module and Envoy, as `gatefold up` runs them.
scripts/install-runtimes.sh
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# GATEFOLD_BIN measures another build (e.g. the code before a change, for a
# before/after run on the same machine) instead of building this tree.
if [ -n "${GATEFOLD_BIN:-}" ]; then
  BIN="$GATEFOLD_BIN"
else
  echo "== building gatefold (dist: release + LTO)"
  cargo build --quiet --profile dist -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/dist/gatefold"
fi
# Which gateways each profile runs, first the one the others are compared to
# (GATEWAYS_A="ref ngx floor" bench/run.sh runs fewer).
GATEWAYS_A=${GATEWAYS_A:-"ref ngx upngx upenv floor"}
GATEWAYS_B=${GATEWAYS_B:-"ref ngx upngx upenv"}
GATEWAYS_C=${GATEWAYS_C:-"ref ngx ngx128"}
GATEWAYS_D=${GATEWAYS_D:-"ref ngx ngx128"}
GATEWAYS_E=${GATEWAYS_E:-"ref upngx upenv"}
for profile in $PROFILES; do
  var=GATEWAYS_$profile
  case " ${!var} " in
    " ref "*) ;;
    *) echo "GATEWAYS_$profile must list ref first: the others are compared to it" >&2; exit 2 ;;
  esac
done
# The hyper floor runs only where profile A lists it.
FLOOR=no
case " $PROFILES " in *" A "*) case " $GATEWAYS_A " in *" floor "*) FLOOR=yes ;; esac ;; esac
if [ $FLOOR = yes ]; then
  # Not a workspace member: its own lock file and target folder.
  echo "== building bench/hyper-floor (release)"
  CARGO_TARGET_DIR="$ROOT/target/hyper-floor" cargo build --quiet --release \
    --manifest-path bench/hyper-floor/Cargo.toml
  FLOOR_BIN="$ROOT/target/hyper-floor/release/hyper-floor"
fi


# --- the upstream: nginx answering 200 with a small body ---------------------
mkdir -p "$WORK/nginx-up" "$WORK/nginx-gw"
cat >"$WORK/nginx-up/nginx.conf" <<NGX
worker_processes 1;
pid $WORK/nginx-up/nginx.pid;
error_log $WORK/nginx-up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP_PORT reuseport;
    location / { return 200 "ok\n"; }
  }
}
NGX
"$NGINX" -p "$WORK/nginx-up" -c "$WORK/nginx-up/nginx.conf"
wait_port $UP_PORT

# --- one certificate for both gateways' TLS listeners (profile C) ------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$WORK/tls.key" -out "$WORK/tls.pem" -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" 2>/dev/null

# --- the reference gateway: all profiles in one spec -------------------------
cat >"$WORK/bench.yaml" <<YAML
gatefold: 1
gateway:
  name: bench
  listen: $REF_PORT
  tls:
    listen: $REF_TLS_PORT
    certificates:
      - { cert: { file: tls.pem }, key: { file: tls.key } }
upstreams:
  up: { targets: [{ url: http://127.0.0.1:$UP_PORT }] }
consumers:
  bench: { credentials: { key: { env: BENCH_KEY } } }
apis:
  plain:
    base-path: /a
    upstream: up
    routes:
      all: { path: /* }
  policed:
    base-path: /b
    upstream: up
    policies:
      - key-auth: {}
      - rate-limit: { requests: 1000000000, per: 1m, key: consumer }
      - request-headers: { set: { x-bench: "1" } }
    routes:
      all: { path: /* }
YAML
export BENCH_KEY=bench-key-0123456789
"$BIN" serve "$WORK/bench.yaml" --listen 127.0.0.1:$REF_PORT --admin 127.0.0.1:$REF_ADMIN ${WORKERS:+--workers $WORKERS} \
  >"$WORK/ref-access.log" 2>"$WORK/ref.err" &
REF_PID=$!
PIDS+=($REF_PID)
wait_port $REF_PORT
wait_port $REF_TLS_PORT

# --- profile A's floor: hyper passing requests through ---------------------
FLOOR_PID=
if [ $FLOOR = yes ]; then
  "$FLOOR_BIN" 127.0.0.1:$FLOOR_PORT 127.0.0.1:$UP_PORT $WORKERS >/dev/null 2>"$WORK/floor.err" &
  FLOOR_PID=$!
  PIDS+=($FLOOR_PID)
fi

# --- profile E's spec: one route with the tenant-routing script --------------
cat >"$WORK/script.yaml" <<YAML
gatefold: 1
gateway: { name: bench-script }
upstreams:
  up: { targets: [{ url: http://127.0.0.1:$UP_PORT }] }
apis:
  scripted:
    base-path: /s
    upstream: up
    routes:
      all:
        path: /*
        policies:
          - script:
              request: |
                const v = req.header("x-version");
                if (v === "2") { req.setHeader("x-upstream-version", "2"); }
                const tenant = req.query("tenant");
                if (!tenant) { return respond(400, { error: "tenant required" }); }
                ctx.tenant = tenant.toLowerCase();
              response: |
                res.setHeader("x-tenant", ctx.tenant ?? "none");
                if (res.status >= 500) { res.setHeader("cache-control", "no-store"); }
YAML
"$BIN" serve "$WORK/script.yaml" --listen 127.0.0.1:$REF_S_PORT --admin 127.0.0.1:19121 \
  >"$WORK/ref-s-access.log" 2>"$WORK/ref-s.err" &
REF_S_PID=$!
PIDS+=($REF_S_PID)

# --- the compiled targets: gatefold up --target nginx|envoy ------------------
# Profiles A and B from bench.yaml without its TLS listener (C and D stay
# between the reference and the hand-written nginx).
sed '/^  tls:/,/^      - { cert/d' "$WORK/bench.yaml" >"$WORK/bench-plain.yaml"
grep -q tls "$WORK/bench-plain.yaml" && { echo "bench-plain.yaml kept its tls" >&2; exit 1; }
up() { # up TARGET SPEC PORT LOG -> pid
  "$BIN" up "$2" --target "$1" --listen 127.0.0.1:"$3" >"$WORK/$4.out" 2>"$WORK/$4.err" &
  echo $!
}
UPNGX_PID=$(up nginx "$WORK/bench-plain.yaml" $UPNGX_PORT upngx); PIDS+=($UPNGX_PID)
UPENV_PID=$(up envoy "$WORK/bench-plain.yaml" $UPENV_PORT upenv); PIDS+=($UPENV_PID)
UPNGX_S_PID=$(up nginx "$WORK/script.yaml" $UPNGX_S_PORT upngx-s); PIDS+=($UPNGX_S_PID)
UPENV_S_PID=$(up envoy "$WORK/script.yaml" $UPENV_S_PORT upenv-s); PIDS+=($UPENV_S_PID)

# --- nginx with the same routes and policies ---------------------------------
# (bench/lib.sh: nginx_gateway_http and nginx_gateway_server.)
cat >"$WORK/nginx-gw/nginx.conf" <<NGX
worker_processes ${WORKERS:-auto};
pid $WORK/nginx-gw/nginx.pid;
error_log $WORK/nginx-gw/error.log warn;
events { worker_connections 4096; }
http {
$(nginx_gateway_http $UP_PORT "$WORK/nginx-access.log")
$(nginx_gateway_server "127.0.0.1:$NGX_PORT reuseport")
  # Profiles C and D: resumption allowed as the reference allows it.
  # nginx follows the client's suite order (wrk's and s_time's OpenSSL:
  # AES-256-GCM-SHA384 first), as Debian's default config does.
  server {
    listen 127.0.0.1:$NGX_TLS_PORT ssl reuseport;
    ssl_certificate $WORK/tls.pem;
    ssl_certificate_key $WORK/tls.key;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_proxy_headers)
    add_header X-Request-ID \$req_id always;
    location /a/ { proxy_pass http://up; }
  }
  # The same, choosing suites as the reference does for an AES client:
  # a SHA-256 key schedule (TLS_AES_128_GCM_SHA256) first.
  server {
    listen 127.0.0.1:$NGX_TLS128_PORT ssl reuseport;
    ssl_certificate $WORK/tls.pem;
    ssl_certificate_key $WORK/tls.key;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384;
$(nginx_proxy_headers)
    add_header X-Request-ID \$req_id always;
    location /a/ { proxy_pass http://up; }
  }
}
NGX
"$NGINX" -p "$WORK/nginx-gw" -c "$WORK/nginx-gw/nginx.conf"
wait_port $NGX_PORT
wait_port $NGX_TLS_PORT
wait_port $NGX_TLS128_PORT
NGX_PID=$(cat "$WORK/nginx-gw/nginx.pid")

# Both answer the same before anything is measured.
if [ $FLOOR = yes ]; then
  wait_port $FLOOR_PORT
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FLOOR_PORT/a/x")" = 200
fi
for url in "http://127.0.0.1:$REF_PORT/a/x" "http://127.0.0.1:$NGX_PORT/a/x"; do
  test "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200
  test "$(curl -s -o /dev/null -w '%{http_code}' "${url/\/a\//\/b\/}")" = 401
  test "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $BENCH_KEY" "${url/\/a\//\/b\/}")" = 200
done
for port in $REF_TLS_PORT $NGX_TLS_PORT $NGX_TLS128_PORT; do
  test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/tls.pem" "https://localhost:$port/a/x")" = 200
done
# `gatefold up` starts its runtime after compiling: wait for each port (a
# slow start, not a failure).
for port in $UPNGX_PORT $UPENV_PORT $REF_S_PORT $UPNGX_S_PORT $UPENV_S_PORT; do
  wait_port "$port" 60 || { tail -n 20 "$WORK"/up*.err >&2; exit 1; }
done
for port in $UPNGX_PORT $UPENV_PORT; do
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/a/x")" = 200
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/b/x")" = 401
  test "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $BENCH_KEY" "http://127.0.0.1:$port/b/x")" = 200
done
# Profile E: the script ran (its header) alike on the three, and refuses
# a request without a tenant.
for port in $REF_S_PORT $UPNGX_S_PORT $UPENV_S_PORT; do
  got=$(curl -s -D - -o /dev/null -H "x-version: 2" "http://127.0.0.1:$port/s/x?tenant=Acme" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-tenant" {print $2}')
  test "$got" = acme || { echo "profile E on port $port: x-tenant '$got'" >&2; exit 1; }
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/s/x")" = 400
done

# wrk's summary -> "req/s p99_ms cpu_us_per_request"
measure() {
  local url=$1 pid=$2; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null   # warm-up
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk.out"
  after=$(cpu_ticks "$pid")
  local rps p99 n errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$WORK/wrk.out")
  n=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out")
  if [ -n "$errors" ]; then echo "   wrk reported: $errors" >&2; fi
  echo "$rps $p99 $(awk -v t=$((after - before)) -v us="$TICK_US" -v n="$n" 'BEGIN {printf "%.1f", t * us / n}')"
}

# `openssl s_time -new` from THREADS clients at once -> "conn/s - cpu_us_per_connection"
# (no latency percentiles from s_time). Each client reads the whole answer.
measure_full_handshake() {
  local port=$1 pid=$2 secs=${DURATION%s}
  local before after i n=0 c
  before=$(cpu_ticks "$pid")
  for i in $(seq 1 "$THREADS"); do
    openssl s_time -connect "localhost:$port" -new -time "$secs" -www /a/bench >"$WORK/stime.$i" 2>&1 &
  done
  wait $(jobs -p | tail -n "$THREADS")
  after=$(cpu_ticks "$pid")
  for i in $(seq 1 "$THREADS"); do
    c=$(awk '/connections in .* real seconds/ {print $1}' "$WORK/stime.$i")
    n=$((n + ${c:-0}))
  done
  [ "$n" -gt 0 ] || { echo "s_time made no connection: $(cat "$WORK/stime.1")" >&2; return 1; }
  awk -v n="$n" -v s="$secs" -v t=$((after - before)) -v us="$TICK_US" \
    'BEGIN { printf "%.2f - %.1f\n", n / s, t * us / n }'
}

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds (each run after a 2s warm-up), ${WORKERS:-one per core} worker(s) per gateway"
declare -A RESULT PORT PID
declare -A LABEL=([ref]=reference [ngx]="nginx (hand-written)" [ngx128]="nginx, AES-128 first" [upngx]="gatefold up nginx" [upenv]="gatefold up envoy" [floor]="hyper floor (bench/hyper-floor)")
for profile in $PROFILES; do
  path=/a/bench; hdr=(); scheme=http
  PORT=([ref]=$REF_PORT [ngx]=$NGX_PORT [upngx]=$UPNGX_PORT [upenv]=$UPENV_PORT [floor]=$FLOOR_PORT)
  PID=([ref]=$REF_PID [ngx]=$NGX_PID [upngx]=$UPNGX_PID [upenv]=$UPENV_PID [floor]=$FLOOR_PID)
  if [ $profile = B ]; then path=/b/bench; hdr=(-H "x-api-key: $BENCH_KEY"); fi
  if [ $profile = C ] || [ $profile = D ]; then
    hdr=(-H "connection: close"); scheme=https
    PORT=([ref]=$REF_TLS_PORT [ngx]=$NGX_TLS_PORT [ngx128]=$NGX_TLS128_PORT)
    PID[ngx128]=$NGX_PID
  fi
  if [ $profile = E ]; then
    path="/s/bench?tenant=Acme"; hdr=(-H "x-version: 2")
    PORT=([ref]=$REF_S_PORT [upngx]=$UPNGX_S_PORT [upenv]=$UPENV_S_PORT)
    PID=([ref]=$REF_S_PID [upngx]=$UPNGX_S_PID [upenv]=$UPENV_S_PID)
  fi
  var=GATEWAYS_$profile
  read -r -a gws <<<"${!var}"
  for gw in "${gws[@]}"; do : >"$WORK/$gw$profile.runs"; done
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate the order each round: no gateway always runs first.
    order=("${gws[@]}")
    [ $((round % 2)) = 0 ] && order=($(printf '%s\n' "${gws[@]}" | tac))
    for gw in "${order[@]}"; do
      port=${PORT[$gw]}; pid=${PID[$gw]}
      # localhost: the name the certificate covers (profile C); /etc/hosts maps it to 127.0.0.1.
      if [ $profile = D ]; then
        m=$(measure_full_handshake "$port" "$pid")
      else
        m=$(measure "$scheme://localhost:$port$path" "$pid" "${hdr[@]}")
      fi
      echo "   $profile $gw round $round: $m (req/s, p99 ms, gateway CPU us/request)"
      echo "$m" >>"$WORK/$gw$profile.runs"
    done
  done
  for gw in "${gws[@]}"; do
    runs="$WORK/$gw$profile.runs"
    RESULT[$gw$profile]="$(awk '{print $1}' "$runs" | median) $(awk '{print $2}' "$runs" | median) $(awk '{print $3}' "$runs" | median)"
  done
done

printf '\n%-48s %12s %10s %14s\n' "profile / gateway (median of $ROUNDS)" "req/s" "p99 ms" "CPU us/req"
for profile in $PROFILES; do
  name="A plain proxy"; [ $profile = B ] && name="B key-auth+rate-limit+header"
  [ $profile = C ] && name="C TLS resumed handshake+request"
  [ $profile = D ] && name="D TLS full handshake+request"
  [ $profile = E ] && name="E tenant-routing script"
  var=GATEWAYS_$profile
  read -r -a gws <<<"${!var}"
  for gw in "${gws[@]}"; do
    read -r rps p99 cpu <<<"${RESULT[$gw$profile]}"
    printf '%-48s %12s %10s %14s\n' "$name: ${LABEL[$gw]}" "$rps" "$p99" "$cpu"
  done
  # Ratios against the reference (A-D: also the hand-written nginx's row).
  read -r rrps rp99 rcpu <<<"${RESULT[ref$profile]}"
  for gw in "${gws[@]:1}"; do
    read -r nrps np99 ncpu <<<"${RESULT[$gw$profile]}"
    awk -v r="$rrps" -v n="$nrps" -v rp="$rp99" -v np="$np99" -v rc="$rcpu" -v nc="$ncpu" -v l="  reference / ${LABEL[$gw]}" \
      'BEGIN { p = (np + 0 > 0) ? sprintf("%9.2fx", rp / np) : sprintf("%10s", "-");
               printf "%-48s %11.2fx %s %13.2fx\n", l, r/n, p, rc/nc }'
  done
done

# --- RSS with 1,000 routes ----------------------------------------------------
echo
echo "== memory and reload"
python3 bench/gen_spec.py 1000 "http://127.0.0.1:$UP_PORT" >"$WORK/r1000.yaml"
python3 bench/gen_spec.py 10000 "http://127.0.0.1:$UP_PORT" >"$WORK/r10000.yaml"
"$BIN" serve "$WORK/r1000.yaml" --listen 127.0.0.1:19300 --admin 127.0.0.1:19301 --no-access-log \
  >/dev/null 2>"$WORK/r1000.err" &
R1000=$!
PIDS+=($R1000)
wait_port 19300
# Touch a few routes so the numbers include a warm process.
for i in 0 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:19300/api$i/r1"; done
rss_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$R1000/status)
echo "RSS of gatefold serve with 1,000 routes: $((rss_kb / 1024)) MiB ($rss_kb kB)"

# --- PUT /config with 10,000 routes ---------------------------------------------
"$BIN" compile "$WORK/r10000.yaml" --target reference --out "$WORK/ir10000" >/dev/null 2>&1
put_time() {
  curl -s -o "$WORK/put.out" -w '%{http_code} %{time_total}' -X PUT --data-binary @"$1" \
    "http://127.0.0.1:19301/config"
}
read -r code t_spec <<<"$(put_time "$WORK/r10000.yaml")"
[ "$code" = 200 ] || { echo "PUT (spec) answered $code: $(head -c 400 "$WORK/put.out")"; exit 1; }
# Back to 1,000 routes, so the IR push is a real swap too.
put_time "$WORK/r1000.yaml" >/dev/null
read -r code t_ir <<<"$(put_time "$WORK/ir10000/gatefold.ir.json")"
[ "$code" = 200 ] || { echo "PUT (IR) answered $code: $(head -c 400 "$WORK/put.out")"; exit 1; }
rss10_kb=$(awk '/^VmRSS:/ {print $2}' /proc/$R1000/status)
printf 'PUT /config, 10,000 routes as a spec (%s KiB): %.0f ms\n' "$(( $(stat -c %s "$WORK/r10000.yaml") / 1024 ))" "$(awk -v t="$t_spec" 'BEGIN{print t*1000}')"
printf 'PUT /config, 10,000 routes as a compiled IR (%s KiB): %.0f ms\n' "$(( $(stat -c %s "$WORK/ir10000/gatefold.ir.json") / 1024 ))" "$(awk -v t="$t_ir" 'BEGIN{print t*1000}')"
echo "RSS after serving 10,000 routes: $((rss10_kb / 1024)) MiB"
