#!/usr/bin/env bash
# User-space instructions per request of the reference gateway, counted by
# valgrind's callgrind: unlike req/s, the count does not move with the
# machine's other load, so it compares two versions of the code on a shared
# machine. Not a test.
#
#   bench/instructions.sh            # REQUESTS=2000 WARMUP=200 CONNECTIONS=500
#
# Builds gatefold with its `dist` profile (release + LTO) and starts, on 127.0.0.1, an upstream (a
# small Python server answering `200 ok` on keep-alive connections, with
# `server` and `connection: keep-alive` as nginx and most HTTP/1.1 servers
# send them) and
# `gatefold serve` under callgrind with the two profiles of bench/run.sh
# (A: plain proxy, B: key-auth + rate-limit + one header; access log on,
# to /dev/null). For each profile one keep-alive client connection sends
# WARMUP requests, the counters are zeroed, REQUESTS more are sent, and the
# instructions counted in between are divided by REQUESTS; then, for A,
# CONNECTIONS new connections of one request each (`connection: close`),
# divided by CONNECTIONS. Then the same
# for profile A through `bench/hyper-floor` (hyper's HTTP/1 server and client
# passing requests through, nothing else): what the reference adds to
# hyper's own cost is the difference. Then nginx (one worker process) with
# bench/run.sh's hand-written configuration for A and B (request id,
# x-forwarded-*, a JSON access log, to /dev/null as the reference's), the
# same way: its user-space instructions per request beside the reference's.
#
# Last, the system calls each makes per request (strace -c, the same
# client, no valgrind): callgrind counts user space only, and a proxy's
# kernel time goes with its system calls, so the two counts together are
# what its CPU per request is made of, measured without a clock.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source bench/lib.sh
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
CONNECTIONS=${CONNECTIONS:-500}
UP_PORT=${UP_PORT:-19300}
GW_PORT=${GW_PORT:-19310}
ADMIN_PORT=${ADMIN_PORT:-19311}
ports_free $UP_PORT $GW_PORT $ADMIN_PORT
WORK=$(mktemp -d /tmp/gatefold-instr.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
command -v strace >/dev/null || { echo "needs strace" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "needs nginx (scripts/install-runtimes.sh installs it)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --profile dist -p gatefold
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/dist/gatefold"
fi


cat >"$WORK/upstream.py" <<'PY'
import asyncio, sys
RESP = b"HTTP/1.1 200 OK\r\nserver: upstream\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nok\n"
async def serve(r, w):
    buf = b""
    while True:
        data = await r.read(65536)
        if not data:
            break
        buf += data
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            w.write(RESP)
        await w.drain()
    w.close()
async def main():
    s = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    async with s:
        await s.serve_forever()
asyncio.run(main())
PY

cat >"$WORK/client.py" <<'PY'
import socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
extra = sys.argv[4] if len(sys.argv) > 4 else ""
req = f"GET {path} HTTP/1.1\r\nhost: bench\r\n{extra}\r\n".encode()
if len(sys.argv) > 5 and sys.argv[5] == "close":
    # A new connection for each request, closed after its response.
    req = req.replace(b"host: bench\r\n", b"host: bench\r\nconnection: close\r\n")
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
        if not buf.startswith(b"HTTP/1.1 200"):
            sys.exit("unexpected answer: " + buf[:80].decode("latin-1"))
        s.close()
    sys.exit(0)
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                sys.exit("unexpected answer: " + head)
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            if len(buf) >= head_end + 4 + length:
                buf = buf[head_end + 4 + length:]
                break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
PY

cat >"$WORK/bench.yaml" <<YAML
gatefold: 1
gateway: { name: bench, listen: $GW_PORT }
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

python3 "$WORK/upstream.py" $UP_PORT &
PIDS+=($!)
wait_port $UP_PORT 60

# Starts a gateway (the command line given, stderr to $WORK/NAME.err) and
# waits for it to listen; stop_gateway ends it.
start_gateway() {
  local name=$1
  shift
  "$@" >/dev/null 2>"$WORK/$name.err" &
  GW_PID=$!
  PIDS+=($GW_PID)
  wait_port $GW_PORT 60
}
stop_gateway() { kill $GW_PID; wait $GW_PID 2>/dev/null || true; }
CALLGRIND=(valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p")
GATEFOLD=("$BIN" serve "$WORK/bench.yaml" --listen 127.0.0.1:$GW_PORT --admin 127.0.0.1:$ADMIN_PORT)
FLOOR=("$ROOT/target/hyper-floor/release/hyper-floor" 127.0.0.1:$GW_PORT 127.0.0.1:$UP_PORT)
# bench/run.sh's nginx, one worker, in the foreground so that valgrind and
# strace see the process that serves.
mkdir -p "$WORK/nginx"
{
  echo "worker_processes 1; master_process off; daemon off;"
  echo "pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;"
  echo "events { worker_connections 1024; }"
  echo "http {"
  nginx_gateway_http $UP_PORT /dev/null
  nginx_gateway_server 127.0.0.1:$GW_PORT
  echo "}"
} >"$WORK/nginx/nginx.conf"
NGINX_GW=("$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf")
KEY_HEADER="x-api-key: $BENCH_KEY"$'\r\n'

measure() {
  local name=$1 path=$2 extra=${3:-}
  python3 "$WORK/client.py" $GW_PORT "$path" "$WARMUP" "$extra"
  callgrind_control -z $GW_PID >/dev/null 2>&1
  python3 "$WORK/client.py" $GW_PORT "$path" "$REQUESTS" "$extra"
  report "$name" "$REQUESTS" request
}
# Dumps the counters since they were zeroed as NAME and prints them per
# UNIT (N of them).
report() {
  local name=$1 n=$2 unit=$3 f total
  callgrind_control -d "$name" $GW_PID >/dev/null 2>&1
  f=$(ls -t "$WORK"/cg.$GW_PID.* | head -1)
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  echo "$name: $((total / n)) instructions per $unit ($total for $n)"
}
# The same for a new connection per request (`connection: close`): what
# accepting, serving one request and closing cost together.
measure_connections() {
  local name=$1 path=$2
  python3 "$WORK/client.py" $GW_PORT "$path" "$((WARMUP / 4))" "" close
  callgrind_control -z $GW_PID >/dev/null 2>&1
  python3 "$WORK/client.py" $GW_PORT "$path" "$CONNECTIONS" "" close
  report "$name" "$CONNECTIONS" connection
}
start_gateway gw "${CALLGRIND[@]}" "${GATEFOLD[@]}"
measure "A-plain-proxy" /a/x
measure "B-key-auth-rate-limit-header" /b/x "$KEY_HEADER"
measure_connections "A-plain-proxy-new-connections" /a/x
stop_gateway

CARGO_TARGET_DIR="$ROOT/target/hyper-floor" cargo build --quiet --release \
  --manifest-path bench/hyper-floor/Cargo.toml
start_gateway floor "${CALLGRIND[@]}" "${FLOOR[@]}"
measure "A-hyper-floor" /a/x
stop_gateway

start_gateway nginx "${CALLGRIND[@]}" "${NGINX_GW[@]}"
measure "A-nginx" /a/x
measure "B-nginx" /b/x "$KEY_HEADER"
measure_connections "A-nginx-new-connections" /a/x
stop_gateway

# --- system calls per request, each gateway running natively ---------------
syscalls() {
  local name=$1 path=$2 extra=${3:-}
  python3 "$WORK/client.py" $GW_PORT "$path" "$WARMUP" "$extra"
  strace -f -c -o "$WORK/strace.$name" -p $GW_PID 2>/dev/null &
  local tracer=$!
  sleep 1 # attached to every thread before the first request
  python3 "$WORK/client.py" $GW_PORT "$path" "$REQUESTS" "$extra"
  kill -INT $tracer; wait $tracer 2>/dev/null || true
  # The summary's last line: `100.00 seconds usecs/call calls [errors] total`.
  awk -v n="$REQUESTS" -v name="$name" '$NF == "total" { printf "%s: %.2f system calls per request\n", name, $4 / n }' "$WORK/strace.$name"
}
start_gateway gw-native "${GATEFOLD[@]}"
syscalls "A-plain-proxy" /a/x
syscalls "B-key-auth-rate-limit-header" /b/x "$KEY_HEADER"
stop_gateway
start_gateway floor-native "${FLOOR[@]}"
syscalls "A-hyper-floor" /a/x
stop_gateway
start_gateway nginx-native "${NGINX_GW[@]}"
syscalls "A-nginx" /a/x
syscalls "B-nginx" /b/x "$KEY_HEADER"
