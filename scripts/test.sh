#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently: the gateway
# runtimes through scripts/install-runtimes.sh, Debian packages with apt
# when missing, which needs root, Envoy inside the project's .tools/), then
# runs every test. CI (.ci/run) calls exactly this; so can anyone on a
# fresh machine with the Rust toolchain.
#
# Each step's full output goes to target/test-logs/STEP.log; the terminal
# gets one line per step and, at the end, a summary. A failing step prints
# the tail of its log.
#
# Environment: FUZZ_SECONDS (per fuzz target, default 20), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
logs="$target_dir/test-logs"
mkdir -p "$logs"
summary=()
started=$SECONDS

# A fresh run writes about 4 GB (debug build 2.7, fuzz build 0.7,
# runtimes 0.5); a full disk shows up as the linker dying of a "Bus error".
free_kb=$(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((5 * 1024 * 1024)) ]; then
  echo "!! only $((free_kb / 1024)) MB free for $target_dir; a fresh run needs about 4 GB"
fi

# step NAME COMMAND...: runs COMMAND with its output in $logs/NAME.log.
step() {
  local name="$1"
  shift
  local log="$logs/$name.log"
  local t0=$SECONDS
  printf '== %-18s ' "$name"
  if "$@" >"$log" 2>&1; then
    local took=$((SECONDS - t0))
    echo "ok (${took}s)"
    summary+=("$(printf '%-18s ok    %4ss' "$name" "$took")")
  else
    local took=$((SECONDS - t0))
    echo "FAILED (${took}s), last lines of $log:"
    tail -n 60 "$log" | sed 's/^/   | /'
    summary+=("$(printf '%-18s FAIL  %4ss' "$name" "$took")")
    print_summary
    exit 1
  fi
}

print_summary() {
  echo
  echo "== summary (logs in $logs/)"
  printf '   %s\n' "${summary[@]}"
  echo "   total $((SECONDS - started))s"
}

validate_examples() {
  # The binary the workspace build just made: `cargo run -p` would rebuild
  # dependencies with a different feature set.
  local gatefold="$target_dir/debug/gatefold"
  for example in examples/*/; do
    if [ -f "$example/fleet.yaml" ]; then
      # A fleet example: its spec is a folder of its own beside the fleet file.
      "$gatefold" validate "$example/spec"
    else
      "$gatefold" validate "$example"
    fi
  done
}

step formatting cargo fmt --all -- --check
step runtimes ./scripts/install-runtimes.sh
# examples/tls names a certificate and key that are never committed: made here
# (openssl, self-signed) before anything compiles the examples.
step test-certs ./examples/tls/make-test-cert.sh
step build cargo build --locked --workspace --all-targets
# Both steps select from the whole workspace, as the build step does, so
# they reuse its artifacts: `-p gatefold-conformance` alone resolves the
# dependencies' features for that package only and compiled the compiler
# and every target a second time (about 35 s after each change).
step tests cargo test --locked --workspace -- --skip every_scenario_on_every_target
# Every scenario on every target built in (docs/conformance.md);
# `cargo test -p gatefold-conformance` runs it locally too.
step conformance cargo test --locked --workspace --test conformance every_scenario_on_every_target
step examples validate_examples
step fuzz ./fuzz/run.sh "${FUZZ_SECONDS:-20}"

# The counts of every test binary, added up: one closing line for the run.
passed=$(grep -hoE '^test result: .* ([0-9]+) passed' "$logs/tests.log" "$logs/conformance.log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -hoE '; ([0-9]+) failed' "$logs/tests.log" "$logs/conformance.log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
print_summary
echo
echo "tests: $passed passed, $failed failed"
