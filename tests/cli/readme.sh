#!/usr/bin/env bash
# Run README.md's examples as written: every ```sh block, verbatim, in order, in one bash with
# `set -euo pipefail`, against a Cognate started the way the README starts it. How blocks are
# marked (server, skip, expect) and the only substitutions made are in tests/cli/readme.py.
#
#   tests/cli/readme.sh [FILE]  # README.md unless FILE; $COGNATE_BIN or target/debug/cognate
#                               # (tests/cli/run.sh runs it); KEEP_WORK=1 keeps the directory
#
# The blocks run as a new user would run them: in an empty directory, with an empty HOME and an
# environment holding only PATH. On PATH are `cognate` (the binary under test), then the venv of
# tests/clients/py (python3 with pycognito and boto3, and the AWS CLI v1), then the caller's PATH
# (curl, node); the directory's node_modules is tests/clients/js's (aws-jwt-verify). Both client
# trees are installed as crates/cognate-e2e/src/clients.rs installs them, under its lock; without
# them the examples are skipped loudly, and with CI set that fails.
#
# Prints "ok   - ..." / "FAIL - ..." / "skip - ..." per block; exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${COGNATE_BIN:-$ROOT/target/debug/cognate}"
README="${1:-$ROOT/README.md}"
CLIENTS="$ROOT/tests/clients"
VENV="$CLIENTS/py/.venv"
JS="$CLIENTS/js"
TIMEOUT_SECONDS=600

if [[ ! -x "$BIN" ]]; then
    echo "cognate binary not found at $BIN (build it with: cargo build -p cognate-server)" >&2
    exit 2
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

unavailable() {
    if [[ -n "${CI:-}" ]]; then
        echo "FAIL - README examples: $1 (CI is set)"
        exit 1
    fi
    echo
    echo "!!! SKIPPING the README examples: $1. With CI set this fails. !!!"
    echo "skip - README examples: $1"
    exit 0
}

# --- the clients the examples use -------------------------------------------
# Same stamps as clients.rs: a copy of the pin file in the installed tree marks a finished install.
install_py() {
    if [[ -x "$VENV/bin/python" ]] && cmp -s "$VENV/.cognate-installed" "$CLIENTS/py/requirements.txt"; then
        return 0
    fi
    echo "installing the Python clients (venv in tests/clients/py/.venv)..."
    if [[ ! -x "$VENV/bin/python" ]]; then python3 -m venv "$VENV" || return 1; fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$CLIENTS/py/requirements.txt" \
        && cp "$CLIENTS/py/requirements.txt" "$VENV/.cognate-installed"
}
install_js() {
    local major
    major="$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')"
    if [[ -z "$major" || "$major" -lt 18 ]]; then
        echo "node 18 or newer is needed (found: $(node --version 2>&1))" >&2
        return 1
    fi
    if cmp -s "$JS/node_modules/.cognate-installed" "$JS/package-lock.json"; then return 0; fi
    echo "installing the JavaScript clients (npm ci in tests/clients/js)..."
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error) \
        && cp "$JS/package-lock.json" "$JS/node_modules/.cognate-installed"
}
{
    # The lock the e2e suites take (flock(2) on the same file), so that they install once.
    flock 9
    install_py || { flock -u 9; unavailable "cannot install tests/clients/py/requirements.txt"; }
    install_js || { flock -u 9; unavailable "cannot install tests/clients/js (npm ci)"; }
} 9>"$CLIENTS/.install.lock"
PY="$VENV/bin/python"

# --- a directory like a new user's ------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cognate-readme.XXXXXX")"
cleanup() {
    # The generated script stops its servers itself; this is for a run cut short.
    if [[ -s "$WORK/out/server.pid" ]]; then
        kill "$(cat "$WORK/out/server.pid")" 2>/dev/null
    fi
    if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/run" "$WORK/out" "$WORK/bin" "$WORK/home"
ln -s "$BIN" "$WORK/bin/cognate"
ln -s "$JS/node_modules" "$WORK/run/node_modules"

# A free port, so that a Cognate already on 9229 does not answer in its place.
PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PY" "$ROOT/tests/cli/readme.py" script "$README" "$WORK/out" "$PORT" || exit 1

started=$SECONDS
(cd "$WORK/run" && env -i HOME="$WORK/home" PATH="$WORK/bin:$VENV/bin:$PATH" LANG=C.UTF-8 \
    TMPDIR="${TMPDIR:-/tmp}" README_OUT="$WORK/out" README_LISTEN="127.0.0.1:$PORT" \
    timeout "$TIMEOUT_SECONDS" bash "$WORK/out/readme.sh")
RC=$?
"$PY" "$ROOT/tests/cli/readme.py" check "$WORK/out"
CHECK_RC=$?
if [[ $RC -eq 124 ]]; then echo "FAIL - README examples: timed out after ${TIMEOUT_SECONDS}s"; exit 1; fi
if [[ $RC -ne 0 && $CHECK_RC -eq 0 ]]; then echo "FAIL - README examples: the script exited $RC"; exit 1; fi
echo "README examples ran in $((SECONDS - started))s"
exit $CHECK_RC
