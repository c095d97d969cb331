#!/usr/bin/env bash
# Cognate benchmarks. See docs/BENCHMARKS.md.
#   bench/run.sh [--quick] [-n REQUESTS]    start-up time, idle RSS, server CPU per operation (default)
#   bench/run.sh users [--users N] ...      AdminCreateUser into one big pool, then ListUsers on it
#   bench/run.sh auth [--users N] ...       SRP / password login and refresh: server CPU, logins/s
#   bench/run.sh import [--users N] ...     user import job of 100,000 users, then ListUsersInGroup on them
#   bench/run.sh wall [-n N] [--fsyncs]     one client's wall time per write and sign-in, durable and --ephemeral
#   bench/run.sh identity [--identities N] [--backend sqlite|postgres] [--quick] [--fsyncs] ...
#                                           identity pools: GetId + GetCredentialsForIdentity for guests and
#                                           signed-in users (server CPU, pairs/s, latency), then one pool
#                                           filled with guests (default 1,000,000) to show the cost stays flat
#   bench/run.sh sync [--identities N] [--backend sqlite|postgres] [--quick] ...
#                                           Cognito Sync: UpdateRecords (10 patches) and ListRecords (1,024
#                                           records) server CPU per call, then identities with a dataset each
#                                           (default 100,000) to show the cost stays flat
#   bench/run.sh oauth [--backend sqlite|postgres] [--quick] ...
#                                           OAuth 2.0: the hosted page's authorization-code flow (authorize,
#                                           GET and POST /login, code + PKCE exchange) server CPU per flow and
#                                           per step, flows/s; client_credentials tokens/s and CPU per token
#   bench/run.sh triggers [--backend sqlite|postgres] [--quick] ...
#                                           Lambda triggers: server CPU one PreTokenGeneration V2_0 call adds
#                                           to USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH (the function a webhook)
# (COGNATE_BIN=path skips the build; each part's --help lists its options.)
# The default part prints a Markdown table and writes bench/out/results.json; users, auth, import and
# identity write bench/out/users-<backend>.json, bench/out/auth.json, bench/out/import-<backend>.json
# bench/out/identity-<backend>.json, bench/out/sync-<backend>.json and bench/out/oauth-<backend>.json.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
part=bench
case "${1:-}" in
  users|auth|import|wall|identity|sync|oauth|triggers) part="$1"; shift ;;
esac
if [[ -z "${COGNATE_BIN:-}" ]]; then
  (cd "$root" && cargo build --release -p cognate-server) >&2
  COGNATE_BIN="${CARGO_TARGET_DIR:-$root/target}/release/cognate"
fi
python=python3
if [[ "$part" == users || "$part" == auth ]]; then
  # The load generators use gmpy2 for the client's SRP math when they can (Python's pow()
  # would make the client the bottleneck); it goes into bench/.venv (gitignored).
  if [[ ! -x "$here/.venv/bin/python" ]] || ! "$here/.venv/bin/python" -c 'import gmpy2' 2>/dev/null; then
    echo "setting up bench/.venv with gmpy2 ..." >&2
    { python3 -m venv "$here/.venv" && "$here/.venv/bin/pip" install -q gmpy2; } >&2 \
      || echo "could not install gmpy2: falling back to Python's pow() (slower client)" >&2
  fi
  if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
fi
case "$part" in
  bench) exec "$python" "$here/bench.py" --bin "$COGNATE_BIN" "$@" ;;
  users) exec "$python" "$here/users.py" --bin "$COGNATE_BIN" "$@" ;;
  auth) exec "$python" "$here/auth.py" --bin "$COGNATE_BIN" "$@" ;;
  wall) exec "$python" "$here/wall.py" --bin "$COGNATE_BIN" "$@" ;;
  # import, identity and sync do no SRP: they need no gmpy2, but use bench/.venv when it is there.
  identity)
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
    exec "$python" "$here/identity.py" --bin "$COGNATE_BIN" "$@" ;;
  sync)
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
    exec "$python" "$here/sync.py" --bin "$COGNATE_BIN" "$@" ;;
  oauth)
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
    exec "$python" "$here/oauth.py" --bin "$COGNATE_BIN" "$@" ;;
  triggers)
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
    exec "$python" "$here/triggers.py" --bin "$COGNATE_BIN" "$@" ;;
  import)
    if [[ -x "$here/.venv/bin/python" ]]; then python="$here/.venv/bin/python"; fi
    exec "$python" "$here/import.py" --bin "$COGNATE_BIN" "$@" ;;
esac
