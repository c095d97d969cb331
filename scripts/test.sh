#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint gates, codegen drift, unit and store
# conformance tests (SQLite and PostgreSQL), the real-client suites (Rust AWS SDK,
# AWS CLI). Needs PostgreSQL at COGNATE_TEST_DATABASE_URL (default
# postgres://root@127.0.0.1:5432/test); everything else it installs itself.
set -euo pipefail
cd "$(dirname "$0")/.."

export COGNATE_TEST_DATABASE_URL="${COGNATE_TEST_DATABASE_URL:-postgres://root@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
suite_started=$SECONDS
step() { printf '\n==> %s (at %ss)\n' "$*" "$((SECONDS - suite_started))"; }

step "PostgreSQL reachable"
if ! python3 - "$COGNATE_TEST_DATABASE_URL" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=3).close()
PY
then
  # A machine of this kind has a local cluster that may simply be stopped.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  fi
fi

step "codegen is current"
python3 codegen/generate.py
if git rev-parse --git-dir >/dev/null 2>&1; then
  git diff --exit-code --stat -- crates/cognate-api/src/generated \
    || { echo "generated code differs from codegen output: run python3 codegen/generate.py and commit"; exit 1; }
fi

step "cargo fmt"
cargo fmt --all -- --check
cargo fmt --manifest-path crates/cognate-e2e/Cargo.toml -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit and store conformance tests (SQLite and PostgreSQL)"
cargo build --locked -p cognate-server
cargo test --workspace --locked

step "real clients: Rust AWS SDK suites"
export COGNATE_BIN="$PWD/target/debug/cognate"
cargo clippy --manifest-path crates/cognate-e2e/Cargo.toml --all-targets --locked -- -D warnings
cargo test --manifest-path crates/cognate-e2e/Cargo.toml --locked

step "real clients: AWS CLI"
bash tests/cli/run.sh

echo
echo "all suites passed in $((SECONDS - suite_started))s"
