#!/usr/bin/env bash
# Cognate benchmark: start-up time, idle RSS, server CPU per operation.
# Usage: bench/run.sh [--quick] [-n REQUESTS]   (COGNATE_BIN=path skips the build)
# Prints a Markdown table; writes bench/out/results.json. See docs/BENCHMARKS.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${COGNATE_BIN:-}" ]]; then
  (cd "$root" && cargo build --release -p cognate-server) >&2
  COGNATE_BIN="${CARGO_TARGET_DIR:-$root/target}/release/cognate"
fi
exec python3 "$here/bench.py" --bin "$COGNATE_BIN" "$@"
