#!/usr/bin/env bash
# Runs every fuzz target for a while: `fuzz/run.sh [SECONDS] [TARGET...]`.
#
# SECONDS (default 30) is per target; TARGETs default to all of them. Works
# from a clean clone with only the stable toolchain: cargo-fuzz is installed
# if missing, and RUSTC_BOOTSTRAP=1 lets stable rustc take the nightly-only
# flags cargo-fuzz passes (sanitizer coverage). Each target starts from the
# committed seeds (fuzz/seeds/) plus whatever fuzz/corpus/TARGET/ already
# holds, and adds new interesting inputs there. A crash leaves its input in
# fuzz/artifacts/TARGET/ and makes this script exit non-zero; reproduce it
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...`.
#
# Environment: FUZZ_TARGET_DIR (build directory, default fuzz/target),
# FUZZ_JOBS (parallel fuzzing processes per target, default 1),
# FUZZ_SANITIZER (default none: the compiler forbids unsafe code, and
# without ASan the runs are several times faster).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

seconds="${1:-30}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(compile_bytes compile_mutated)
fi
case "$seconds" in
  '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
target_dir="${FUZZ_TARGET_DIR:-$here/target}"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"

# Project-local tools first on PATH, so `cargo fuzz` finds the one we install.
tools="$(cd "$here/.." && pwd)/.tools"
export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz into $tools"
  cargo install cargo-fuzz --locked --root "$tools"
fi

echo "== building fuzz targets"
cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir"

status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzzing $t for ${seconds}s"
  # -timeout: an input that takes 10 s (an alias bomb not refused, a
  # quadratic blow-up) counts as a failure; -rss_limit_mb likewise for memory.
  parallel=()
  if [ "$jobs" -gt 1 ]; then
    parallel=(--jobs "$jobs")
  fi
  if ! cargo fuzz run "$t" --sanitizer "$sanitizer" --target-dir "$target_dir" \
    "${parallel[@]}" "corpus/$t" seeds -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -dict=gatefold.dict -print_final_stats=1; then
    echo "!! $t failed: see fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit "$status"
