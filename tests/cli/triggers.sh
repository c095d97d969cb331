# Lambda triggers, as the AWS CLI sees them. Sourced by tests/cli/run.sh, whose
# helpers (awscli, check, check_error, json_get, pass, fail, wait_for,
# start_cognate, stop_cognate) and counters it uses.
#
# Its own server, started with --lambda-endpoint at the stand-in Lambda host
# (tests/lambda/host.mjs, which runs the functions of tests/lambda), and one
# pool whose --lambda-config names PreSignUp, PreAuthentication, a V2_0
# PreTokenGeneration and the CUSTOM_AUTH quiz:
# - sign-up refused by PreSignUp: exit code != 0, UserLambdaValidationException
#   with the function's message, nobody created;
# - sign-up with --validation-data confirmed by PreSignUp (and the event the
#   function was given);
# - admin-initiate-auth refused by PreAuthentication for a suspended user, and
#   a V2_0 PreTokenGeneration claim in another user's tokens;
# - initiate-auth --auth-flow CUSTOM_AUTH, respond-to-auth-challenge with a
#   wrong answer (another question) and the right one (tokens).

echo
echo "# Lambda triggers (tests/cli/triggers.sh)"

# start_lambda_host: tests/lambda/host.mjs on a free port (it prints "listening
# PORT"); its pid in LAMBDA_HOST_PID (stopped by run.sh's cleanup) and its URL
# in LAMBDA_URL.
start_lambda_host() {
    node "$ROOT/tests/lambda/host.mjs" 0 "$PY" >"$WORK/lambda.out" 2>"$WORK/lambda.log" &
    LAMBDA_HOST_PID=$!
    if wait_for "$LAMBDA_HOST_PID" grep -q '^listening ' "$WORK/lambda.out"; then
        LAMBDA_URL="http://127.0.0.1:$(sed -n 's/^listening //p' "$WORK/lambda.out")"
        return 0
    fi
    echo "the Lambda host did not start; log:" >&2
    cat "$WORK/lambda.log" >&2
    return 1
}
stop_lambda_host() {
    kill "$LAMBDA_HOST_PID" 2>/dev/null
    wait "$LAMBDA_HOST_PID" 2>/dev/null
    LAMBDA_HOST_PID=""
}

# lambda_events FUNCTION: the events the host gave FUNCTION, as a JSON list in OUT.
lambda_events() {
    OUT="$("$PY" -c '
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/calls", timeout=10) as r:
    print(json.dumps([c["event"] for c in json.load(r) if c["function"] == sys.argv[2]]))
' "$LAMBDA_URL" "$1" 2>"$WORK/err")"
    RC=$?
    ERR="$(cat "$WORK/err")"
}

# token_claims EXPR: the claims of the JWT at EXPR in the last output, as the
# new OUT (not verified: what the function put in them is what is checked).
token_claims() {
    OUT="$(json_get "$1" 2>/dev/null | "$PY" -c '
import base64, json, sys
payload = sys.stdin.read().strip().split(".")[1]
print(json.dumps(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))))
' 2>/dev/null)"
}

# check_refusal NAME CODE MESSAGE: the last call failed with this error code
# and the function's message.
check_refusal() {
    local name="$1" code="$2" message="$3"
    if [[ $RC -ne 0 && "$ERR" == *"($code)"*": $message"* ]]; then
        pass "$name"
    else
        fail "$name" "expected an error with code $code and message '$message'"
    fi
}

lambda_arn() { echo "arn:aws:lambda:us-east-1:000000000000:function:$1"; }

if start_lambda_host && start_cognate "$WORK/triggers-data" "$WORK/triggers.log" --lambda-endpoint "$LAMBDA_URL"; then
    TRIGGERS_CONFIG="$(printf '{"PreSignUp": "%s", "PreAuthentication": "%s",
        "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": "%s"},
        "DefineAuthChallenge": "%s", "CreateAuthChallenge": "%s", "VerifyAuthChallengeResponse": "%s"}' \
        "$(lambda_arn pre-sign-up)" "$(lambda_arn pre_authentication)" "$(lambda_arn pre-token-v2)" \
        "$(lambda_arn define-auth-challenge)" "$(lambda_arn create_auth_challenge)" "$(lambda_arn verify-auth-challenge)")"
    URL="$EXTRA_URL" awscli cognito-idp create-user-pool --pool-name cli-triggers --auto-verified-attributes email \
        --lambda-config "$TRIGGERS_CONFIG"
    check "create-user-pool --lambda-config" \
        'd["UserPool"]["LambdaConfig"]["PreTokenGenerationConfig"]["LambdaVersion"] == "V2_0"
         and d["UserPool"]["LambdaConfig"]["PreSignUp"].endswith(":function:pre-sign-up")'
    TPOOL="$(json_get 'd["UserPool"]["Id"]' 2>/dev/null)"
    URL="$EXTRA_URL" awscli cognito-idp create-user-pool-client --user-pool-id "$TPOOL" --client-name cli-triggers \
        --explicit-auth-flows ALLOW_ADMIN_USER_PASSWORD_AUTH ALLOW_CUSTOM_AUTH ALLOW_REFRESH_TOKEN_AUTH
    TCLIENT="$(json_get 'd["UserPoolClient"]["ClientId"]' 2>/dev/null)"

    # PreSignUp closes sign-ups from blocked.example.
    URL="$EXTRA_URL" awscli cognito-idp sign-up --client-id "$TCLIENT" --username cli-mallory --password 'Passw0rd!' \
        --user-attributes Name=email,Value=mallory@blocked.example
    check_refusal "sign-up refused by PreSignUp" UserLambdaValidationException \
        "PreSignUp failed with error Sign-ups from blocked.example are closed."
    URL="$EXTRA_URL" awscli cognito-idp admin-get-user --user-pool-id "$TPOOL" --username cli-mallory
    check_error "the refused sign-up created no user" UserNotFoundException

    # PreSignUp confirms a user who brings an invitation in ValidationData.
    URL="$EXTRA_URL" awscli cognito-idp sign-up --client-id "$TCLIENT" --username cli-ivy --password 'Passw0rd!' \
        --user-attributes Name=email,Value=cli-ivy@example.com --validation-data Name=invitation,Value=welcome
    check "sign-up --validation-data confirmed by PreSignUp, no code sent" \
        'd["UserConfirmed"] is True and "CodeDeliveryDetails" not in d'
    URL="$EXTRA_URL" awscli cognito-idp admin-get-user --user-pool-id "$TPOOL" --username cli-ivy
    check "the invited user is CONFIRMED, the email verified" \
        'd["UserStatus"] == "CONFIRMED"
         and {a["Name"]: a["Value"] for a in d["UserAttributes"]}.get("email_verified") == "true"'
    lambda_events pre-sign-up
    check "PreSignUp was given the validation data" \
        '[(x["triggerSource"], x["userName"]) for x in d] == [("PreSignUp_SignUp", "cli-mallory"), ("PreSignUp_SignUp", "cli-ivy")]
         and d[1]["request"]["validationData"] == {"invitation": "welcome"}'

    # PreAuthentication refuses a suspended account (an administrator's sign-in too).
    for user in suspended cli-alice; do
        URL="$EXTRA_URL" awscli cognito-idp admin-create-user --user-pool-id "$TPOOL" --username "$user" \
            --user-attributes Name=email,Value="$user@example.com" Name=email_verified,Value=true --message-action SUPPRESS
        URL="$EXTRA_URL" awscli cognito-idp admin-set-user-password --user-pool-id "$TPOOL" --username "$user" \
            --password 'Passw0rd!' --permanent
    done
    check "two confirmed users" 'True'
    URL="$EXTRA_URL" awscli cognito-idp admin-initiate-auth --user-pool-id "$TPOOL" --client-id "$TCLIENT" \
        --auth-flow ADMIN_USER_PASSWORD_AUTH --auth-parameters 'USERNAME=suspended,PASSWORD=Passw0rd!'
    check_refusal "admin-initiate-auth refused by PreAuthentication" UserLambdaValidationException \
        "PreAuthentication failed with error This account is suspended."

    # PreTokenGeneration V2_0 puts typed claims in both tokens and changes the scopes.
    URL="$EXTRA_URL" awscli cognito-idp admin-initiate-auth --user-pool-id "$TPOOL" --client-id "$TCLIENT" \
        --auth-flow ADMIN_USER_PASSWORD_AUTH --auth-parameters 'USERNAME=cli-alice,PASSWORD=Passw0rd!'
    check "admin-initiate-auth of another user: tokens" 'bool(d["AuthenticationResult"]["AccessToken"])'
    SIGNED_IN="$OUT"
    token_claims 'd["AuthenticationResult"]["AccessToken"]'
    check "the access token has PreTokenGeneration's claims and scopes" \
        'd["tenant_id"] == "t-7" and d["seats"] == 25 and d["scope"] == "orders/read" and d["username"] == "cli-alice"'
    OUT="$SIGNED_IN"
    token_claims 'd["AuthenticationResult"]["IdToken"]'
    check "the ID token has PreTokenGeneration's object claim" 'd["tenant"] == {"id": 7, "name": "Acme"}'

    # CUSTOM_AUTH: the quiz's question, a wrong answer, the right one.
    URL="$EXTRA_URL" awscli cognito-idp initiate-auth --client-id "$TCLIENT" --auth-flow CUSTOM_AUTH \
        --auth-parameters USERNAME=cli-alice
    check "initiate-auth --auth-flow CUSTOM_AUTH asks the function's question" \
        'd["ChallengeName"] == "CUSTOM_CHALLENGE"
         and d["ChallengeParameters"] == {"USERNAME": "cli-alice", "question": "What is 6 x 7?"}
         and bool(d["Session"])'
    URL="$EXTRA_URL" awscli cognito-idp respond-to-auth-challenge --client-id "$TCLIENT" \
        --challenge-name CUSTOM_CHALLENGE --session "$(json_get 'd["Session"]' 2>/dev/null)" \
        --challenge-responses USERNAME=cli-alice,ANSWER=41
    check "respond-to-auth-challenge with a wrong answer: the question again" \
        'd["ChallengeName"] == "CUSTOM_CHALLENGE" and d["ChallengeParameters"]["question"] == "What is 6 x 7?"
         and "AuthenticationResult" not in d'
    URL="$EXTRA_URL" awscli cognito-idp respond-to-auth-challenge --client-id "$TCLIENT" \
        --challenge-name CUSTOM_CHALLENGE --session "$(json_get 'd["Session"]' 2>/dev/null)" \
        --challenge-responses USERNAME=cli-alice,ANSWER=42
    check "respond-to-auth-challenge with the right answer: tokens" \
        'bool(d["AuthenticationResult"]["IdToken"]) and "ChallengeName" not in d'
    token_claims 'd["AuthenticationResult"]["AccessToken"]'
    check "the custom sign-in's access token: PreTokenGeneration ran too" \
        'd["username"] == "cli-alice" and d["tenant_id"] == "t-7"'
    lambda_events verify-auth-challenge
    check "VerifyAuthChallengeResponse was given both answers" \
        '[x["request"]["challengeAnswer"] for x in d] == ["41", "42"]'

    stop_cognate
else
    RC=1 OUT="" ERR=""
    fail "start the Lambda host and cognate with --lambda-endpoint"
fi
stop_lambda_host
