#!/usr/bin/env bash
# Prints the table of the `frontend` benchmark from criterion's estimates:
# median time per size and function, compile_str / serde_yaml, and time per
# route. Run `cargo bench -p gatefold-compiler --bench frontend` first.
# Usage: compiler/benches/ratios.sh [CRITERION_DIR]
#   (default: $CARGO_TARGET_DIR/criterion, else target/criterion)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-${CARGO_TARGET_DIR:-target}/criterion}"
python3 - "$dir" <<'PY'
import json, os, sys

root = sys.argv[1]
funcs = ["serde_yaml", "saphyr_events", "yaml_loader", "compile_str"]
sizes = [("1k", 1000), ("10k", 10000), ("100k", 100000)]

def median_ns(label, func, n):
    path = os.path.join(root, f"frontend_{label}", func, str(n), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return json.load(open(path))["median"]["point_estimate"]

def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    return f"{ns / 1e6:.1f} ms"

print("| routes | " + " | ".join(funcs) + " | compile_str / serde_yaml | µs per route (compile_str) |")
print("|---" * (len(funcs) + 3) + "|")
per_route = []
for label, n in sizes:
    t = {f: median_ns(label, f, n) for f in funcs}
    if t["compile_str"] is None:
        continue
    ratio = t["compile_str"] / t["serde_yaml"] if t["serde_yaml"] else None
    us = t["compile_str"] / n / 1e3
    per_route.append((label, us))
    cells = " | ".join(fmt(t[f]) for f in funcs)
    print(f"| {n:,} | {cells} | {ratio:.2f}x | {us:.1f} |")
if per_route:
    base = per_route[0][1]
    print()
    print("per-route cost relative to 1k: " + ", ".join(f"{l} {us / base:.2f}x" for l, us in per_route))
PY
