#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint gates, codegen drift, unit and store
# conformance tests (SQLite and PostgreSQL), the real-client suites (Rust AWS SDK,
# JavaScript and Python clients, a headless Chromium, AWS CLI). Needs PostgreSQL at
# COGNATE_TEST_DATABASE_URL (default postgres://root@127.0.0.1:5432/test); everything
# else it installs itself (Debian's chromium with apt-get when it is missing).
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

step "Chromium and openssl for the hosted-page tests"
# Debian's chromium, driven by playwright-core (tests/clients/js), and the openssl command line,
# with which the SAML test's identity provider (tests/clients/js/saml-idp.mjs) makes its
# certificate: installed when missing.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
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

# Compiling is most of this suite's time, so each crate is compiled once:
# - Lint while building. `cargo clippy` is `cargo check` with clippy-driver as
#   the compiler of the workspace members: a clippy pass before the build
#   type-checks everything (the AWS SDK included) and runs every C build script
#   a second time. Instead, clippy-driver wraps rustc for the members during the
#   one real build, with the same `-D warnings`, handed over as cargo-clippy
#   hands it (CLIPPY_ARGS). Dependencies are compiled by plain rustc, as under
#   `cargo clippy`. The canary step proves this driver denies a lint that way.
# - One feature resolution for the main workspace: `cargo build -p
#   cognate-server` resolves features without the dev-dependencies, so
#   `cargo test --workspace` then rebuilt syn, the proc macros and what they
#   touch. `cargo build --workspace --all-targets` builds the server binary and
#   every test binary at once (the same targets `cargo clippy --all-targets`
#   lints); `cargo test` then only runs them (and compiles the doctests).
# - One target dir for both workspaces: the e2e crate's profile
#   (crates/cognate-e2e/Cargo.toml) makes aws-lc-sys identical in both, so its
#   C library is built once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
clippy_driver="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "clippy-driver denies warnings given in CLIPPY_ARGS"
canary="$(mktemp -d)"
printf 'pub fn f(v: &Vec<u8>) -> usize {\n    v.len()\n}\n' >"$canary/lib.rs"
if "$clippy_driver" rustc --edition 2021 --crate-type lib --emit=metadata --out-dir "$canary" "$canary/lib.rs" \
  >"$canary/out" 2>&1 || ! grep -q 'clippy::ptr.arg. implied by .-D warnings' "$canary/out"; then
  cat "$canary/out"
  echo "clippy-driver did not deny clippy::ptr_arg through CLIPPY_ARGS: the lint gate would be off"
  exit 1
fi
rm -rf "$canary"

step "build and clippy: main workspace, all targets"
cargo build --workspace --all-targets --locked

step "unit and store conformance tests (SQLite and PostgreSQL)"
cargo test --workspace --locked

step "real clients: Rust AWS SDK suites (built and linted in one build)"
export COGNATE_BIN="$CARGO_TARGET_DIR/debug/cognate"
cargo test --manifest-path crates/cognate-e2e/Cargo.toml --locked

step "real clients: AWS CLI"
bash tests/cli/run.sh

echo
echo "all suites passed in $((SECONDS - suite_started))s"
