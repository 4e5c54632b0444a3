#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs
# every test. CI (.ci/run) calls exactly this; so can anyone on a fresh
# machine with the Rust toolchain, Python 3, Node.js and apt.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting"
cargo fmt --all -- --check

echo "== build"
cargo build --locked --workspace --all-targets

echo "== tests"
cargo test --locked --workspace

echo "== examples validate"
# The binary the workspace build just made: `cargo run -p` would rebuild
# dependencies with a different feature set.
gatefold="${CARGO_TARGET_DIR:-target}/debug/gatefold"
for example in examples/*/; do
  "$gatefold" validate "$example"
done

echo "== fuzz (a short run of each target; fuzz/run.sh SECONDS for longer)"
./fuzz/run.sh "${FUZZ_SECONDS:-20}"
