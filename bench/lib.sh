# Shell helpers the benchmark scripts share (sourced, not run).

# Until something accepts on 127.0.0.1:$1, at most ${2:-30} seconds.
wait_port() {
  local deadline=$((SECONDS + ${2:-30}))
  while [ "$SECONDS" -le "$deadline" ]; do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  return 1
}

# Exits when any of the given ports already has a listener on loopback: a
# gateway left from another run, listening with SO_REUSEPORT as these do,
# would silently share the port and its requests (and not its CPU figures).
ports_free() {
  local p busy=""
  for p in "$@"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then busy="$busy $p"; fi
  done
  if [ -n "$busy" ]; then
    echo "ports already in use:$busy (a gateway from another run?); stop it first" >&2
    exit 1
  fi
}

# Every descendant of process $1 (nginx's workers are children of its
# master, which is a child of `gatefold up`).
descendants() {
  local p
  for p in $(pgrep -P "$1" 2>/dev/null); do echo "$p"; descendants "$p"; done
}

# CPU time (user + system, in clock ticks) of process $1 and its descendants.
cpu_ticks() {
  local total=0 pid
  for pid in "$1" $(descendants "$1"); do
    [ -r /proc/$pid/stat ] || continue
    total=$((total + $(awk '{print $14 + $15}' /proc/$pid/stat)))
  done
  echo "$total"
}

# Microseconds per clock tick.
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# The hand-written nginx gateway that bench/run.sh and bench/instructions.sh
# measure the reference against, in two parts to go inside `http { }`.
# Request id as the baseline defines it (keep a well-formed incoming one),
# x-forwarded-*, hop-by-hop headers dropped, no server tokens, a JSON access
# log buffered as the reference buffers its own (32 KiB, at least every
# 200 ms; unbuffered, nginx makes a write(2) per request, measured at about
# 4-5 us of system time per request, 12% of its CPU). Profile B: the key
# checked against the consumer's ($BENCH_KEY, not sent on), limit_req set
# far above the offered load, one header added.
#
#   nginx_gateway_http UPSTREAM_PORT ACCESS_LOG   # http-level settings
#   nginx_gateway_server LISTEN                   # the server with /a/ and /b/
nginx_gateway_http() {
  cat <<NGX
  server_tokens off;
  keepalive_requests 1000000;
  log_format json escape=json '{"time":"\$time_iso8601","request_id":"\$req_id","client":"\$remote_addr",'
    '"method":"\$request_method","host":"\$host","path":"\$uri","status":\$status,'
    '"upstream":"\$upstream_addr","latency_ms":\$request_time}';
  access_log $2 json buffer=32k flush=200ms;
  map \$http_x_request_id \$req_id {
    "~^[A-Za-z0-9._:-]{1,128}\$" \$http_x_request_id;
    default \$request_id;
  }
  map \$http_x_api_key \$consumer { "$BENCH_KEY" bench; default ""; }
  limit_req_zone \$consumer zone=perconsumer:10m rate=1000000000r/m;
  upstream up { server 127.0.0.1:$1; keepalive 256; }
NGX
}

nginx_gateway_server() {
  cat <<NGX
  server {
    listen $1;
$(nginx_proxy_headers)
    add_header X-Request-ID \$req_id always;
    location /a/ { proxy_pass http://up; }
    location /b/ {
      if (\$consumer = "") { return 401 '{"error":"unauthorized"}'; }
      limit_req zone=perconsumer burst=1000000 nodelay;
      proxy_set_header X-Api-Key "";
      proxy_set_header X-Bench "1";
      # proxy_set_header in a location replaces the server's: repeat them.
$(nginx_proxy_headers)
      proxy_pass http://up;
    }
  }
NGX
}

# What the reference sends upstream besides the client's headers.
nginx_proxy_headers() {
  cat <<'NGX'
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $proxy_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Request-ID $req_id;
NGX
}
