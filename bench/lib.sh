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
