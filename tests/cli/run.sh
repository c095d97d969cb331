#!/usr/bin/env bash
# Drive a freshly started cognate server with the real AWS CLI (v1, from PyPI),
# then run README.md's examples as written (tests/cli/readme.sh).
#
#   tests/cli/run.sh            # uses $COGNATE_BIN or target/debug/cognate
#
# Creates .venv in the repository root (if absent) and installs a pinned
# awscli into it. Prints "N passed, M failed" and exits non-zero on any
# failure. The server is always stopped on exit.
set -uo pipefail

AWSCLI_VERSION="1.46.3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
BIN="${COGNATE_BIN:-$ROOT/target/debug/cognate}"

if [[ ! -x "$BIN" ]]; then
    echo "cognate binary not found at $BIN (build it with: cargo build -p cognate-server)" >&2
    exit 2
fi

# --- the AWS CLI ------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV" || { echo "cannot create $VENV" >&2; exit 2; }
fi
if ! "$VENV/bin/python" -c "import awscli, sys; sys.exit(awscli.__version__ != '$AWSCLI_VERSION')" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION" \
        || { echo "cannot install awscli==$AWSCLI_VERSION" >&2; exit 2; }
fi
PY="$VENV/bin/python"

# --- the server -------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cognate-cli.XXXXXX")"
SERVER_PID=""
EXTRA_SERVER_PID=""   # a second server some checks start (tests/cli/sync.sh, triggers.sh)
LAMBDA_HOST_PID=""    # the stand-in Lambda host of tests/cli/triggers.sh
cleanup() {
    for pid in "$SERVER_PID" "$EXTRA_SERVER_PID" "$LAMBDA_HOST_PID"; do
        if [[ -n "$pid" ]]; then
            kill "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
# Only what is set here configures the server.
for var in $(env | grep -o '^COGNATE_[A-Z_]*' || true); do unset "$var"; done
NO_COLOR=1 "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 200); do
    if "$PY" -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('$URL/health', timeout=1).status != 200)" 2>/dev/null; then
        ready=1
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.05
done
if [[ $ready != 1 ]]; then
    echo "cognate did not become healthy on $URL; log:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

# --- helpers ----------------------------------------------------------------
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL 2>/dev/null || true

PASSED=0
FAILED=0
OUT=""   # stdout of the last aws call
ERR=""   # stderr of the last aws call
RC=0     # exit code of the last aws call

awscli() {
    "$VENV/bin/aws" --endpoint-url "$URL" --output json "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    OUT="$(cat "$WORK/out")"
    ERR="$(cat "$WORK/err")"
}

pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $1"
    [[ -n "${2:-}" ]] && echo "       $2"
    echo "       exit=$RC stdout=${OUT:0:600}"
    [[ -n "$ERR" ]] && echo "       stderr=${ERR:0:600}"
}

# check NAME PYTHON_EXPR [ENV=VAL...]: the last call succeeded and the
# expression (over `d`, the parsed JSON output, and os.environ as `e`) is true.
check() {
    local name="$1" expr="$2"
    shift 2
    if [[ $RC -ne 0 ]]; then
        fail "$name" "the command failed"
        return
    fi
    if env "$@" CHECK_EXPR="$expr" "$PY" -c '
import json, os, re, sys
d = json.loads(sys.stdin.read().strip() or "{}")
e = os.environ
ok = eval("(" + os.environ["CHECK_EXPR"] + "\n)")
sys.exit(0 if ok else 1)
' <<<"$OUT" 2>"$WORK/pyerr"; then
        pass "$name"
    else
        fail "$name" "assertion failed: $expr $(cat "$WORK/pyerr")"
    fi
}

# check_error NAME CODE: the last call failed with this error code.
check_error() {
    local name="$1" code="$2"
    if [[ $RC -ne 0 && "$ERR" == *"($code)"* ]]; then
        pass "$name"
    else
        fail "$name" "expected an error with code $code"
    fi
}

# json_get EXPR: evaluate EXPR over the last output `d` and print it.
json_get() {
    CHECK_EXPR="$1" "$PY" -c '
import json, os, sys
d = json.loads(sys.stdin.read())
v = eval(os.environ["CHECK_EXPR"])
print(v if v is not None else "")
' <<<"$OUT"
}

# wait_for PID CMD...: until CMD succeeds (10 s at most), while process PID lives.
wait_for() {
    local pid="$1"
    shift
    for _ in $(seq 1 200); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_cognate DATA LOG ARGS...: another server (for the suites that need one
# started with other options) on a free port; its pid and URL in
# EXTRA_SERVER_PID and EXTRA_URL (stopped by cleanup, or stop_cognate).
start_cognate() {
    local data="$1" log="$2"
    shift 2
    local port
    port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    EXTRA_URL="http://127.0.0.1:$port"
    NO_COLOR=1 "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" >>"$log" 2>&1 &
    EXTRA_SERVER_PID=$!
    if wait_for "$EXTRA_SERVER_PID" "$PY" -c \
        "import urllib.request,sys; sys.exit(urllib.request.urlopen('$EXTRA_URL/health', timeout=1).status != 200)" \
        2>/dev/null; then
        return 0
    fi
    echo "cognate did not become healthy on $EXTRA_URL; log:" >&2
    cat "$log" >&2
    return 1
}
stop_cognate() {
    if [[ -n "$EXTRA_SERVER_PID" ]]; then
        kill "$EXTRA_SERVER_PID" 2>/dev/null
        wait "$EXTRA_SERVER_PID" 2>/dev/null
        EXTRA_SERVER_PID=""
    fi
}

POOL_RE='^us-east-1_[0-9A-Za-z]+$'

# --- user pools -------------------------------------------------------------
awscli cognito-idp create-user-pool --pool-name cli-pool-1 --user-pool-tags team=cli
check "create-user-pool returns the pool" \
    'bool(re.match(e["RE"], d["UserPool"]["Id"])) and d["UserPool"]["Name"] == "cli-pool-1"
     and d["UserPool"]["Arn"] == "arn:aws:cognito-idp:us-east-1:000000000000:userpool/" + d["UserPool"]["Id"]' \
    RE="$POOL_RE"
POOL1="$(json_get 'd["UserPool"]["Id"]' 2>/dev/null)"

awscli cognito-idp create-user-pool-client --user-pool-id "$POOL1" --client-name cli-client --generate-secret
check "create-user-pool-client --generate-secret" \
    'len(d["UserPoolClient"]["ClientId"]) == 26 and len(d["UserPoolClient"].get("ClientSecret", "")) >= 24
     and d["UserPoolClient"]["UserPoolId"] == e["POOL"]' POOL="$POOL1"
CLIENT="$(json_get 'd["UserPoolClient"]["ClientId"]' 2>/dev/null)"
SECRET="$(json_get 'd["UserPoolClient"]["ClientSecret"]' 2>/dev/null)"

awscli cognito-idp create-user-pool --pool-name cli-pool-2
POOL2="$(json_get 'd["UserPool"]["Id"]' 2>/dev/null)"
awscli cognito-idp create-user-pool --pool-name cli-pool-3
check "create two more pools" 'd["UserPool"]["Name"] == "cli-pool-3"'
POOL3="$(json_get 'd["UserPool"]["Id"]' 2>/dev/null)"
ALL_POOLS="$POOL1 $POOL2 $POOL3"

# Raw NextToken pagination: one pool per page.
seen=""
token=""
pages=0
pagination_ok=1
while :; do
    if [[ -z "$token" ]]; then
        awscli cognito-idp list-user-pools --no-paginate --max-results 1
    else
        awscli cognito-idp list-user-pools --no-paginate --max-results 1 --next-token "$token"
    fi
    if [[ $RC -ne 0 ]]; then pagination_ok=0; break; fi
    pages=$((pages + 1))
    count="$(json_get 'len(d["UserPools"])')"
    [[ "$count" == 1 ]] || pagination_ok=0
    seen="$seen $(json_get 'd["UserPools"][0]["Id"] if d["UserPools"] else ""')"
    token="$(json_get 'd.get("NextToken")')"
    [[ -z "$token" || $pages -ge 10 ]] && break
done
RC=0
OUT="{\"pages\": $pages, \"ok\": $pagination_ok}"
check "list-user-pools --max-results 1 with --next-token visits 3 pages of 1" \
    'd["ok"] == 1 and d["pages"] == 3 and sorted(e["SEEN"].split()) == sorted(e["ALL"].split())' \
    SEEN="$seen" ALL="$ALL_POOLS"

# Without --next-token the CLI makes exactly one call: ListUserPools has a
# required MaxResults, so the CLI never auto-paginates it.
awscli cognito-idp list-user-pools --max-results 1
check "list-user-pools --max-results 1 returns one pool and a NextToken" \
    'len(d["UserPools"]) == 1 and bool(d.get("NextToken"))'

# The CLI's own pagination (--page-size, --max-items, --starting-token) on
# ListUserPoolClients, whose MaxResults is optional.
for i in 1 2 3; do
    awscli cognito-idp create-user-pool-client --user-pool-id "$POOL2" --client-name "paged-$i"
done
check "create three clients in one pool" 'd["UserPoolClient"]["ClientName"] == "paged-3"'
awscli cognito-idp list-user-pool-clients --user-pool-id "$POOL2" --page-size 1
check "list-user-pool-clients --page-size 1 follows NextToken to all clients" \
    'sorted(c["ClientName"] for c in d["UserPoolClients"]) == ["paged-1", "paged-2", "paged-3"]
     and not d.get("NextToken")'
awscli cognito-idp list-user-pool-clients --user-pool-id "$POOL2" --page-size 1 --max-items 2
check "list-user-pool-clients --max-items 2 returns 2 and a NextToken" \
    'len(d["UserPoolClients"]) == 2 and bool(d.get("NextToken"))'
FIRST_TWO="$(json_get '" ".join(c["ClientName"] for c in d["UserPoolClients"])' 2>/dev/null)"
STARTING="$(json_get 'd.get("NextToken")' 2>/dev/null)"
awscli cognito-idp list-user-pool-clients --user-pool-id "$POOL2" --page-size 1 --max-items 2 \
    --starting-token "$STARTING"
check "list-user-pool-clients --starting-token returns the rest" \
    'len(d["UserPoolClients"]) == 1 and not d.get("NextToken")
     and sorted(e["FIRST"].split() + [d["UserPoolClients"][0]["ClientName"]]) == ["paged-1", "paged-2", "paged-3"]' \
    FIRST="$FIRST_TWO"

awscli cognito-idp describe-user-pool --user-pool-id "$POOL1"
check "describe-user-pool shows defaults and tags" \
    'd["UserPool"]["Id"] == e["POOL"] and d["UserPool"]["Name"] == "cli-pool-1"
     and d["UserPool"]["Policies"]["PasswordPolicy"]["MinimumLength"] == 8
     and d["UserPool"]["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 7
     and d["UserPool"]["MfaConfiguration"] == "OFF"
     and d["UserPool"].get("UserPoolTags") == {"team": "cli"}
     and any(a["Name"] == "sub" for a in d["UserPool"]["SchemaAttributes"])' POOL="$POOL1"

awscli cognito-idp update-user-pool --user-pool-id "$POOL1" \
    --policies 'PasswordPolicy={MinimumLength=12,RequireUppercase=true,RequireLowercase=true,RequireNumbers=false,RequireSymbols=false}' \
    --user-pool-tags team=cli,stage=updated --auto-verified-attributes email
check "update-user-pool succeeds" 'True'
awscli cognito-idp describe-user-pool --user-pool-id "$POOL1"
check "describe-user-pool shows the update" \
    'd["UserPool"]["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
     and d["UserPool"]["Policies"]["PasswordPolicy"]["RequireNumbers"] is False
     and d["UserPool"]["UserPoolTags"] == {"team": "cli", "stage": "updated"}
     and d["UserPool"]["AutoVerifiedAttributes"] == ["email"]
     and d["UserPool"]["Name"] == "cli-pool-1"'

awscli cognito-idp describe-user-pool-client --user-pool-id "$POOL1" --client-id "$CLIENT"
check "describe-user-pool-client returns the same secret and default validities" \
    'd["UserPoolClient"]["ClientSecret"] == e["SECRET"] and d["UserPoolClient"]["ClientName"] == "cli-client"
     and d["UserPoolClient"]["RefreshTokenValidity"] == 30' SECRET="$SECRET"

# A managed login branding style: Settings is a JSON document, given as JSON.
awscli cognito-idp create-managed-login-branding --user-pool-id "$POOL1" --client-id "$CLIENT" \
    --settings '{"categories": {"global": {"colorSchemeMode": "DARK"}}}'
check "create-managed-login-branding" \
    'd["ManagedLoginBranding"]["Settings"]["categories"]["global"]["colorSchemeMode"] == "DARK"
     and d["ManagedLoginBranding"]["UseCognitoProvidedValues"] is False'
BRANDING="$(json_get 'd["ManagedLoginBranding"]["ManagedLoginBrandingId"]' 2>/dev/null)"
awscli cognito-idp describe-managed-login-branding-by-client --user-pool-id "$POOL1" --client-id "$CLIENT"
check "describe-managed-login-branding-by-client" \
    'd["ManagedLoginBranding"]["ManagedLoginBrandingId"] == e["ID"]' ID="$BRANDING"
awscli cognito-idp create-managed-login-branding --user-pool-id "$POOL1" --client-id "$CLIENT" \
    --use-cognito-provided-values
check_error "a second style for one client" ManagedLoginBrandingExistsException

awscli cognito-idp delete-user-pool-client --user-pool-id "$POOL1" --client-id "$CLIENT"
check "delete-user-pool-client succeeds" 'True'
awscli cognito-idp describe-user-pool-client --user-pool-id "$POOL1" --client-id "$CLIENT"
check_error "describe-user-pool-client after delete fails" ResourceNotFoundException
awscli cognito-idp describe-managed-login-branding --user-pool-id "$POOL1" --managed-login-branding-id "$BRANDING"
check_error "the deleted client's branding style is gone" ResourceNotFoundException

awscli cognito-idp delete-user-pool --user-pool-id "$POOL1"
check "delete-user-pool succeeds" 'True'
awscli cognito-idp describe-user-pool --user-pool-id "$POOL1"
check_error "describe-user-pool after delete fails" ResourceNotFoundException
awscli cognito-idp list-user-pools --max-results 60
check "list-user-pools no longer lists the deleted pool" \
    'sorted(p["Id"] for p in d["UserPools"]) == sorted(e["LEFT"].split())' LEFT="$POOL2 $POOL3"

awscli cognito-idp describe-user-pool --user-pool-id bad
check_error "describe-user-pool with a malformed id" InvalidParameterException

# --- identity pools ---------------------------------------------------------
awscli cognito-identity create-identity-pool --identity-pool-name cli_identity \
    --allow-unauthenticated-identities --supported-login-providers graph.facebook.com=12345
check "create-identity-pool" \
    'bool(re.match(r"^us-east-1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", d["IdentityPoolId"]))
     and d["IdentityPoolName"] == "cli_identity" and d["AllowUnauthenticatedIdentities"] is True'
IDPOOL="$(json_get 'd["IdentityPoolId"]' 2>/dev/null)"

awscli cognito-identity describe-identity-pool --identity-pool-id "$IDPOOL"
check "describe-identity-pool" \
    'd["IdentityPoolId"] == e["ID"] and d["IdentityPoolName"] == "cli_identity"
     and d["AllowUnauthenticatedIdentities"] is True
     and d.get("SupportedLoginProviders") == {"graph.facebook.com": "12345"}' ID="$IDPOOL"

awscli cognito-identity list-identity-pools --max-results 10
check "list-identity-pools" \
    '[p["IdentityPoolId"] for p in d["IdentityPools"]] == [e["ID"]]
     and d["IdentityPools"][0]["IdentityPoolName"] == "cli_identity"' ID="$IDPOOL"

# A guest's identity and credentials, and the pool's roles.
ID_RE='^us-east-1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
awscli cognito-identity get-id --identity-pool-id "$IDPOOL"
check "get-id for a guest returns region:uuid" 'bool(re.match(e["RE"], d["IdentityId"]))' RE="$ID_RE"
GUEST="$(json_get 'd["IdentityId"]' 2>/dev/null)"
awscli cognito-identity get-id --identity-pool-id "$IDPOOL"
check "get-id for another guest returns another identity" \
    'bool(re.match(e["RE"], d["IdentityId"])) and d["IdentityId"] != e["GUEST"]' RE="$ID_RE" GUEST="$GUEST"

awscli cognito-identity get-credentials-for-identity --identity-id "$GUEST"
check_error "get-credentials-for-identity before the pool has roles" InvalidIdentityPoolConfigurationException

AUTH_ROLE="arn:aws:iam::000000000000:role/cli-auth"
GUEST_ROLE="arn:aws:iam::000000000000:role/cli-guest"
awscli cognito-identity set-identity-pool-roles --identity-pool-id "$IDPOOL" \
    --roles "authenticated=$AUTH_ROLE,unauthenticated=$GUEST_ROLE"
check "set-identity-pool-roles succeeds" 'True'
awscli cognito-identity get-identity-pool-roles --identity-pool-id "$IDPOOL"
check "get-identity-pool-roles returns both roles" \
    'd["IdentityPoolId"] == e["ID"]
     and d["Roles"] == {"authenticated": e["AUTH"], "unauthenticated": e["GUEST"]}
     and not d.get("RoleMappings")' ID="$IDPOOL" AUTH="$AUTH_ROLE" GUEST="$GUEST_ROLE"
awscli cognito-identity set-identity-pool-roles --identity-pool-id "$IDPOOL" --roles "admin=$AUTH_ROLE"
check_error "set-identity-pool-roles with a role name other than the two" InvalidParameterException

awscli cognito-identity get-credentials-for-identity --identity-id "$GUEST"
check "get-credentials-for-identity for the guest" \
    'd["IdentityId"] == e["ID"]
     and re.match(r"^ASIA[0-9A-Z]{16}$", d["Credentials"]["AccessKeyId"])
     and len(d["Credentials"]["SecretKey"]) == 40 and len(d["Credentials"]["SessionToken"]) > 0
     and d["Credentials"]["Expiration"] != ""' ID="$GUEST"
TMP_KEY="$(json_get 'd["Credentials"]["AccessKeyId"]' 2>/dev/null)"
TMP_SECRET="$(json_get 'd["Credentials"]["SecretKey"]' 2>/dev/null)"
TMP_TOKEN="$(json_get 'd["Credentials"]["SessionToken"]' 2>/dev/null)"
# The token with its middle character changed.
BAD_TOKEN="$(json_get '(lambda t, i: t[:i] + ("B" if t[i] == "A" else "A") + t[i + 1:])(d["Credentials"]["SessionToken"], len(d["Credentials"]["SessionToken"]) // 2)' 2>/dev/null)"
# Signed with them, a call passes SigV4 and is refused for what it asks: an
# identity may not administer pools. With the token altered it is not accepted.
AWS_ACCESS_KEY_ID="$TMP_KEY" AWS_SECRET_ACCESS_KEY="$TMP_SECRET" AWS_SESSION_TOKEN="$TMP_TOKEN" \
    awscli cognito-identity describe-identity-pool --identity-pool-id "$IDPOOL"
check_error "the guest's credentials sign a call the server accepts" AccessDeniedException
if [[ -n "$BAD_TOKEN" && "$BAD_TOKEN" != "$TMP_TOKEN" ]]; then
    AWS_ACCESS_KEY_ID="$TMP_KEY" AWS_SECRET_ACCESS_KEY="$TMP_SECRET" AWS_SESSION_TOKEN="$BAD_TOKEN" \
        awscli cognito-identity describe-identity-pool --identity-pool-id "$IDPOOL"
    check_error "an altered session token is refused" UnrecognizedClientException
else
    fail "an altered session token is refused" "could not alter the session token"
fi

awscli cognito-identity get-credentials-for-identity --identity-id "us-east-1:00000000-0000-4000-8000-000000000000"
check_error "get-credentials-for-identity of an unknown identity" ResourceNotFoundException

awscli cognito-identity delete-identity-pool --identity-pool-id "$IDPOOL"
check "delete-identity-pool succeeds" 'True'
awscli cognito-identity describe-identity-pool --identity-pool-id "$IDPOOL"
check_error "describe-identity-pool after delete fails" ResourceNotFoundException

# --- users: sign-up, the outbox, confirm-sign-up, admin calls ---------------
# outbox_http POOL USER / outbox_cli POOL USER: the outbox as JSON into OUT,
# from GET /_cognate/outbox and from `cognate outbox` on the server's data dir.
outbox_http() {
    OUT="$("$PY" -c '
import sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"pool": sys.argv[2], "user": sys.argv[3]})
with urllib.request.urlopen(sys.argv[1] + "/_cognate/outbox?" + q, timeout=10) as r:
    sys.stdout.write(r.read().decode())
' "$URL" "$1" "$2" 2>"$WORK/err")"
    RC=$?
    ERR="$(cat "$WORK/err")"
}
outbox_cli() {
    OUT="$(NO_COLOR=1 "$BIN" outbox --pool "$1" --user "$2" --data-dir "$WORK/data" 2>"$WORK/err")"
    RC=$?
    ERR="$(cat "$WORK/err")"
}

awscli cognito-idp create-user-pool --pool-name cli-users --auto-verified-attributes email
check "create-user-pool --auto-verified-attributes email" 'd["UserPool"]["AutoVerifiedAttributes"] == ["email"]'
UPOOL="$(json_get 'd["UserPool"]["Id"]' 2>/dev/null)"
awscli cognito-idp create-user-pool-client --user-pool-id "$UPOOL" --client-name cli-public
check "create-user-pool-client without a secret" 'not d["UserPoolClient"].get("ClientSecret")'
UCLIENT="$(json_get 'd["UserPoolClient"]["ClientId"]' 2>/dev/null)"

awscli cognito-idp sign-up --client-id "$UCLIENT" --username cli-alice --password 'Passw0rd!' \
    --user-attributes Name=email,Value=cli-alice@example.com Name=name,Value=Alice
check "sign-up returns an unconfirmed user and where the code went" \
    'd["UserConfirmed"] is False
     and bool(re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", d["UserSub"]))
     and d["CodeDeliveryDetails"] == {"Destination": "c***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}'
ALICE_SUB="$(json_get 'd["UserSub"]' 2>/dev/null)"

awscli cognito-idp admin-get-user --user-pool-id "$UPOOL" --username cli-alice
check "admin-get-user after sign-up shows UNCONFIRMED" \
    'd["UserStatus"] == "UNCONFIRMED" and d["Enabled"] is True
     and {a["Name"]: a["Value"] for a in d["UserAttributes"]}.get("sub") == e["SUB"]' SUB="$ALICE_SUB"

outbox_http "$UPOOL" cli-alice
check "GET /_cognate/outbox has the sign-up code" \
    'len(d["messages"]) == 1 and d["messages"][0]["channel"] == "EMAIL"
     and d["messages"][0]["destination"] == "cli-alice@example.com"
     and d["messages"][0]["pool_id"] == e["POOL"] and d["messages"][0]["username"] == "cli-alice"
     and bool(re.match(r"^[0-9]{6}$", d["messages"][0]["code"]))
     and d["messages"][0]["code"] in d["messages"][0]["body"]' POOL="$UPOOL"
HTTP_CODE="$(json_get 'd["messages"][-1]["code"]' 2>/dev/null)"
HTTP_OUTBOX="$OUT"

outbox_cli "$UPOOL" cli-alice
check "cognate outbox --pool --user --data-dir shows the same code" \
    'd["messages"][-1]["code"] == e["CODE"] and d == json.loads(e["HTTP"])' CODE="$HTTP_CODE" HTTP="$HTTP_OUTBOX"

awscli cognito-idp confirm-sign-up --client-id "$UCLIENT" --username cli-alice --confirmation-code "$HTTP_CODE"
check "confirm-sign-up with the outbox code" 'True'
awscli cognito-idp admin-get-user --user-pool-id "$UPOOL" --username cli-alice
check "admin-get-user shows CONFIRMED and email_verified true" \
    'd["UserStatus"] == "CONFIRMED"
     and {a["Name"]: a["Value"] for a in d["UserAttributes"]}.get("email_verified") == "true"'
awscli cognito-idp confirm-sign-up --client-id "$UCLIENT" --username cli-alice --confirmation-code "$HTTP_CODE"
check_error "confirm-sign-up of a confirmed user" NotAuthorizedException

awscli cognito-idp sign-up --client-id "$UCLIENT" --username cli-weak --password 'short' \
    --user-attributes Name=email,Value=cli-weak@example.com
check_error "sign-up with a password the policy refuses" InvalidPasswordException
awscli cognito-idp admin-get-user --user-pool-id "$UPOOL" --username cli-weak
check_error "the refused sign-up created no user" UserNotFoundException

awscli cognito-idp admin-create-user --user-pool-id "$UPOOL" --username cli-bob \
    --user-attributes Name=email,Value=cli-bob@example.com --message-action SUPPRESS
check "admin-create-user --message-action SUPPRESS" \
    'd["User"]["Username"] == "cli-bob" and d["User"]["UserStatus"] == "FORCE_CHANGE_PASSWORD"
     and d["User"]["Enabled"] is True'
outbox_http "$UPOOL" cli-bob
check "SUPPRESS sent nothing" 'd["messages"] == []'

awscli cognito-idp admin-create-user --user-pool-id "$UPOOL" --username cli-carol \
    --user-attributes Name=email,Value=carol@elsewhere.example --message-action SUPPRESS
awscli cognito-idp list-users --user-pool-id "$UPOOL" --filter 'email ^= "cli-"'
check "list-users --filter 'email ^= \"cli-\"'" \
    '[u["Username"] for u in d["Users"]] == ["cli-alice", "cli-bob"]'
awscli cognito-idp list-users --user-pool-id "$UPOOL" --filter 'email = "cli-bob@example.com"'
check "list-users --filter 'email = \"cli-bob@example.com\"'" \
    '[u["Username"] for u in d["Users"]] == ["cli-bob"]
     and d["Users"][0]["UserStatus"] == "FORCE_CHANGE_PASSWORD"'
awscli cognito-idp list-users --user-pool-id "$UPOOL" --attributes-to-get email
check "list-users --attributes-to-get email" \
    'sorted(u["Username"] for u in d["Users"]) == ["cli-alice", "cli-bob", "cli-carol"]
     and all([a["Name"] for a in u["Attributes"]] == ["email"] for u in d["Users"])'
awscli cognito-idp list-users --user-pool-id "$UPOOL" --filter 'email == "x"'
check_error "list-users with a malformed filter" InvalidParameterException

# --- user import: the README's steps, curl -T to the pre-signed URL ----------
awscli cognito-idp get-csv-header --user-pool-id "$UPOOL"
check "get-csv-header ends with cognito:username" 'd["CSVHeader"][-1] == "cognito:username"'
HEADER_LINE="$(json_get '",".join(d["CSVHeader"])')"
CSV_ROWS="$(json_get '"\n".join(",".join({"cognito:username": u, "email": u + "@import.example", "email_verified": "true", "cognito:mfa_enabled": "false"}.get(h, "") for h in d["CSVHeader"]) for u in ["cli-imp-1", "cli-imp-2", "cli-bob"])')"
printf '%s\n%s\n' "$HEADER_LINE" "$CSV_ROWS" >"$WORK/users.csv"
read -r JOB JOB_URL < <("$VENV/bin/aws" --endpoint-url "$URL" cognito-idp create-user-import-job \
    --user-pool-id "$UPOOL" --job-name first --cloud-watch-logs-role-arn arn:aws:iam::000000000000:role/import \
    --query 'UserImportJob.[JobId,PreSignedUrl]' --output text)
if [[ "$JOB" == import-* && "$JOB_URL" == "$URL/"* ]]; then pass "create-user-import-job --query [JobId,PreSignedUrl]"
else fail "create-user-import-job --query [JobId,PreSignedUrl]" "got '$JOB' '$JOB_URL'"; fi
CURL_STATUS="$(curl -s -o /dev/null -w '%{http_code}' -T "$WORK/users.csv" "$JOB_URL")"
if [[ "$CURL_STATUS" == 200 ]]; then pass "curl -T users.csv to the PreSignedUrl"
else fail "curl -T users.csv to the PreSignedUrl" "HTTP $CURL_STATUS"; fi
awscli cognito-idp start-user-import-job --user-pool-id "$UPOOL" --job-id "$JOB"
check "start-user-import-job" 'd["UserImportJob"]["Status"] == "InProgress"'
for _ in $(seq 1 100); do
    awscli cognito-idp describe-user-import-job --user-pool-id "$UPOOL" --job-id "$JOB"
    [[ $RC -eq 0 && "$OUT" != *'"InProgress"'* ]] && break
    sleep 0.1
done
check "describe-user-import-job: two imported, the existing user's row failed" \
    'd["UserImportJob"]["Status"] == "Succeeded" and d["UserImportJob"]["ImportedUsers"] == 2
     and d["UserImportJob"]["FailedUsers"] == 1 and "row 4" in d["UserImportJob"]["CompletionMessage"]'
awscli cognito-idp admin-get-user --user-pool-id "$UPOOL" --username cli-imp-2
check "an imported user is RESET_REQUIRED" 'd["UserStatus"] == "RESET_REQUIRED"'

# --- unsigned admin call is refused ------------------------------------------
awscli cognito-idp list-user-pools --max-results 10 --no-sign-request
check_error "an unsigned admin call is refused" MissingAuthenticationTokenException

# --- Cognito Sync -------------------------------------------------------------
# shellcheck source=tests/cli/sync.sh
source "$ROOT/tests/cli/sync.sh"

# --- Lambda triggers ----------------------------------------------------------
# shellcheck source=tests/cli/triggers.sh
source "$ROOT/tests/cli/triggers.sh"

# --- README.md, run as written ----------------------------------------------
# Its blocks are extracted at test time (never copied here), so an example that
# stops working fails this suite. One "ok"/"FAIL" line per block.
CLI_FAILED=$FAILED
echo
echo "# README.md examples (tests/cli/readme.sh)"
COGNATE_BIN="$BIN" bash "$ROOT/tests/cli/readme.sh" 2>&1 | tee "$WORK/readme.log"
README_RC=${PIPESTATUS[0]}
README_OK="$(grep -c '^ok   - ' "$WORK/readme.log")"
README_FAILED="$(grep -c '^FAIL - ' "$WORK/readme.log")"
PASSED=$((PASSED + README_OK))
FAILED=$((FAILED + README_FAILED))
if [[ $README_RC -ne 0 && $README_FAILED -eq 0 ]]; then
    RC=$README_RC OUT="" ERR=""
    fail "tests/cli/readme.sh" "exited $README_RC without naming a failed block"
fi

echo
echo "$PASSED passed, $FAILED failed"
if [[ $FAILED -ne 0 ]]; then
    if [[ $CLI_FAILED -ne 0 ]]; then
        echo "--- server log (tail) ---"
        tail -n 40 "$WORK/server.log"
    fi
    exit 1
fi
exit 0
