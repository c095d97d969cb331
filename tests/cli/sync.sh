# `aws cognito-sync`, signed with identities' temporary credentials. Sourced by
# tests/cli/run.sh, whose server ($URL, data in $WORK), helpers (awscli,
# check, check_error, json_get, pass, fail, start_cognate, stop_cognate) and
# counters it uses.
#
# - a full sync cycle of one identity from two "devices" (A and B): B reads
#   the empty dataset, A writes two records, B's write with the SyncCount it
#   read is refused (ResourceConflictException, HTTP 409, exit code != 0) and
#   changes nothing, B reads incrementally (--last-sync-count), resolves and
#   writes, A reads incrementally and sees exactly B's change;
# - another identity's credentials refused on the first one's data
#   (NotAuthorizedException, HTTP 403);
# - list-datasets, describe-dataset, describe-identity-usage;
# - expired credentials: issued by a server whose clock is 3,700 s behind
#   (--clock-offset-seconds -3700: they expired 100 s ago in real time), then
#   used on the same data dir served without the offset:
#   ExpiredTokenException (HTTP 400); new credentials for the same identity
#   from that server work.

# as KEY SECRET TOKEN CMD...: run CMD with these credentials in the environment.
as() {
    AWS_ACCESS_KEY_ID="$1" AWS_SECRET_ACCESS_KEY="$2" AWS_SESSION_TOKEN="$3" "${@:4}"
}

# awscli_status ARGS...: awscli with --debug; STATUS is the HTTP status of its
# (single) request, as urllib3 logs it, and ERR keeps the error line.
STATUS=""
awscli_status() {
    awscli --debug "$@"
    STATUS="$(grep -oE 'HTTP/1\.1" [0-9]{3}' "$WORK/err" | tail -n 1 | grep -oE '[0-9]{3}$')"
    ERR="$(grep -v ' - DEBUG - ' "$WORK/err" | grep -v '^[[:space:]]*$' | tail -n 3)"
}

# check_status NAME CODE HTTP: the last awscli_status failed (exit code != 0)
# with this error code and HTTP status.
check_status() {
    local name="$1" code="$2" http="$3"
    if [[ $RC -ne 0 && "$ERR" == *"($code)"* && "$STATUS" == "$http" ]]; then
        pass "$name"
    else
        fail "$name" "expected exit code != 0, error $code and HTTP $http; got HTTP '$STATUS'"
    fi
}

# creds_of IDENTITY: get-credentials-for-identity (unsigned, as the model
# says) into KEY SECRET TOKEN EXPIRATION.
creds_of() {
    awscli cognito-identity get-credentials-for-identity --identity-id "$1"
    read -r KEY SECRET TOKEN EXPIRATION < <(json_get \
        '" ".join([d["Credentials"]["AccessKeyId"], d["Credentials"]["SecretKey"], d["Credentials"]["SessionToken"], str(d["Credentials"]["Expiration"])])' 2>/dev/null)
}

SYNC_ROLE_AUTH="arn:aws:iam::000000000000:role/sync-auth"
SYNC_ROLE_GUEST="arn:aws:iam::000000000000:role/sync-guest"

# sync_pool: a new identity pool allowing guests, with both roles; its id in SYNC_POOL.
sync_pool() {
    awscli cognito-identity create-identity-pool --identity-pool-name "$1" --allow-unauthenticated-identities
    SYNC_POOL="$(json_get 'd["IdentityPoolId"]' 2>/dev/null)"
    awscli cognito-identity set-identity-pool-roles --identity-pool-id "$SYNC_POOL" \
        --roles "authenticated=$SYNC_ROLE_AUTH,unauthenticated=$SYNC_ROLE_GUEST"
}

echo
echo "# aws cognito-sync (tests/cli/sync.sh)"

sync_pool cli_sync
check "cognito-sync: an identity pool with roles" 'True'
awscli cognito-identity get-id --identity-pool-id "$SYNC_POOL"
OWNER="$(json_get 'd["IdentityId"]' 2>/dev/null)"
awscli cognito-identity get-id --identity-pool-id "$SYNC_POOL"
STRANGER="$(json_get 'd["IdentityId"]' 2>/dev/null)"
check "cognito-sync: two guest identities" 'e["A"] != e["B"] and e["A"].startswith("us-east-1:")' A="$OWNER" B="$STRANGER"

# Each device gets its own credentials for the owner's identity.
creds_of "$OWNER"
A_KEY="$KEY" A_SECRET="$SECRET" A_TOKEN="$TOKEN"
creds_of "$OWNER"
B_KEY="$KEY" B_SECRET="$SECRET" B_TOKEN="$TOKEN"
creds_of "$STRANGER"
S_KEY="$KEY" S_SECRET="$SECRET" S_TOKEN="$TOKEN"
RC=0 OUT="{}"
check "cognito-sync: credentials for both devices and the other identity" \
    'all(k.startswith("ASIA") and len(k) == 20 for k in e["KEYS"].split()) and len(set(e["KEYS"].split())) == 3' \
    KEYS="$A_KEY $B_KEY $S_KEY"

DS=(--identity-pool-id "$SYNC_POOL" --identity-id "$OWNER" --dataset-name settings)

# Device B reads the dataset before anything is in it.
as "$B_KEY" "$B_SECRET" "$B_TOKEN" awscli cognito-sync list-records "${DS[@]}"
check "list-records (device B) of a dataset that does not exist yet" \
    'd["Records"] == [] and d["Count"] == 0 and d["DatasetSyncCount"] == 0 and d["DatasetExists"] is False
     and d["DatasetDeletedAfterRequestedSyncCount"] is False and d["MergedDatasetNames"] == []
     and len(d["SyncSessionToken"]) > 20'
B_SESSION="$(json_get 'd["SyncSessionToken"]' 2>/dev/null)"

# Device A reads, then writes two records.
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync list-records "${DS[@]}"
check "list-records (device A)" 'd["Records"] == [] and d["DatasetSyncCount"] == 0'
A_SESSION="$(json_get 'd["SyncSessionToken"]' 2>/dev/null)"
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync update-records "${DS[@]}" \
    --device-id device-a --sync-session-token "$A_SESSION" \
    --record-patches Op=replace,Key=theme,Value=dark,SyncCount=0 Op=replace,Key=lang,Value=fr,SyncCount=0
check "update-records (device A) writes two records at SyncCount 1" \
    '[(r["Key"], r["Value"], r["SyncCount"], r["LastModifiedBy"]) for r in d["Records"]]
     == [("lang", "fr", 1, "device-a"), ("theme", "dark", 1, "device-a")]
     and all(r["LastModifiedDate"] > 1.7e9 for r in d["Records"])'

# Device B writes with the SyncCount it read: a conflict, nothing written.
as "$B_KEY" "$B_SECRET" "$B_TOKEN" awscli_status cognito-sync update-records "${DS[@]}" \
    --device-id device-b --sync-session-token "$B_SESSION" \
    --record-patches Op=replace,Key=theme,Value=light,SyncCount=0 Op=replace,Key=font,Value=serif,SyncCount=0
check_status "update-records (device B) with a stale SyncCount: ResourceConflictException" ResourceConflictException 409
as "$B_KEY" "$B_SECRET" "$B_TOKEN" awscli cognito-sync list-records "${DS[@]}" --last-sync-count 0
check "list-records --last-sync-count 0 (device B): A's records, nothing of the refused write" \
    '[(r["Key"], r["Value"], r["SyncCount"]) for r in d["Records"]] == [("lang", "fr", 1), ("theme", "dark", 1)]
     and d["Count"] == 2 and d["DatasetSyncCount"] == 1 and d["LastModifiedBy"] == "device-a"
     and d["DatasetExists"] is True and d["DatasetDeletedAfterRequestedSyncCount"] is False'
B_SESSION="$(json_get 'd["SyncSessionToken"]' 2>/dev/null)"

# Device B resolves: its theme wins, lang goes, font is added.
as "$B_KEY" "$B_SECRET" "$B_TOKEN" awscli cognito-sync update-records "${DS[@]}" \
    --device-id device-b --sync-session-token "$B_SESSION" \
    --record-patches Op=replace,Key=theme,Value=light,SyncCount=1 Op=remove,Key=lang,SyncCount=1 \
    Op=replace,Key=font,Value=serif,SyncCount=0
check "update-records (device B) resolved at the current SyncCount" \
    '[(r["Key"], r.get("Value"), r["SyncCount"], r["LastModifiedBy"]) for r in d["Records"]]
     == [("font", "serif", 2, "device-b"), ("lang", None, 2, "device-b"), ("theme", "light", 2, "device-b")]'

# Device A syncs incrementally from the count it last saw.
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync list-records "${DS[@]}" --last-sync-count 1
check "list-records --last-sync-count 1 (device A): exactly B's changes" \
    '[(r["Key"], r.get("Value"), r["SyncCount"]) for r in d["Records"]]
     == [("font", "serif", 2), ("lang", None, 2), ("theme", "light", 2)]
     and d["Count"] == 3 and d["DatasetSyncCount"] == 2 and d["LastModifiedBy"] == "device-b"'
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync list-records "${DS[@]}" --last-sync-count 2
check "list-records --last-sync-count 2: nothing newer" \
    'd["Records"] == [] and d["Count"] == 0 and d["DatasetSyncCount"] == 2 and d["DatasetExists"] is True'

# The other identity's credentials on the owner's data.
as "$S_KEY" "$S_SECRET" "$S_TOKEN" awscli_status cognito-sync list-records "${DS[@]}"
check_status "list-records with another identity's credentials: NotAuthorizedException" NotAuthorizedException 403
as "$S_KEY" "$S_SECRET" "$S_TOKEN" awscli_status cognito-sync update-records "${DS[@]}" \
    --device-id intruder --sync-session-token "$A_SESSION" --record-patches Op=replace,Key=theme,Value=x,SyncCount=2
check_status "update-records with another identity's credentials: NotAuthorizedException" NotAuthorizedException 403
as "$S_KEY" "$S_SECRET" "$S_TOKEN" awscli_status cognito-sync list-datasets \
    --identity-pool-id "$SYNC_POOL" --identity-id "$OWNER"
check_status "list-datasets with another identity's credentials: NotAuthorizedException" NotAuthorizedException 403
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync list-records "${DS[@]}" --last-sync-count 2
check "the refused write changed nothing" 'd["Records"] == [] and d["DatasetSyncCount"] == 2'

# What the owner's data looks like: 3 live records counted (font+serif, theme+light).
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync list-datasets --identity-pool-id "$SYNC_POOL" --identity-id "$OWNER"
check "list-datasets" \
    'd["Count"] == 1 and len(d["Datasets"]) == 1
     and {k: v for k, v in d["Datasets"][0].items() if not k.endswith("Date")}
         == {"IdentityId": e["ID"], "DatasetName": "settings", "LastModifiedBy": "device-b", "DataStorage": 19, "NumRecords": 2}
     and d["Datasets"][0]["LastModifiedDate"] >= d["Datasets"][0]["CreationDate"] > 1.7e9' ID="$OWNER"
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync describe-dataset "${DS[@]}"
check "describe-dataset" \
    '{k: v for k, v in d["Dataset"].items() if not k.endswith("Date")}
     == {"IdentityId": e["ID"], "DatasetName": "settings", "LastModifiedBy": "device-b", "DataStorage": 19, "NumRecords": 2}' \
    ID="$OWNER"
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli cognito-sync describe-identity-usage \
    --identity-pool-id "$SYNC_POOL" --identity-id "$OWNER"
check "describe-identity-usage" \
    '{k: v for k, v in d["IdentityUsage"].items() if k != "LastModifiedDate"}
     == {"IdentityId": e["ID"], "IdentityPoolId": e["POOL"], "DatasetCount": 1, "DataStorage": 19}' \
    ID="$OWNER" POOL="$SYNC_POOL"
as "$A_KEY" "$A_SECRET" "$A_TOKEN" awscli_status cognito-sync describe-dataset \
    --identity-pool-id "$SYNC_POOL" --identity-id "$OWNER" --dataset-name missing
check_status "describe-dataset of a dataset that does not exist: ResourceNotFoundException" ResourceNotFoundException 404

# --- expired credentials -------------------------------------------------------
if start_cognate "$WORK/expired-data" "$WORK/expired.log" --clock-offset-seconds -3700; then
    URL="$EXTRA_URL" sync_pool cli_expired
    URL="$EXTRA_URL" awscli cognito-identity get-id --identity-pool-id "$SYNC_POOL"
    EXPIRED_ID="$(json_get 'd["IdentityId"]' 2>/dev/null)"
    URL="$EXTRA_URL" creds_of "$EXPIRED_ID"
    check "credentials from a server 3,700 s behind expired about 100 s ago" \
        'abs(d["Credentials"]["Expiration"] - (__import__("time").time() - 100)) < 60'
    stop_cognate
    # The same data dir, on real time.
    if start_cognate "$WORK/expired-data" "$WORK/expired.log"; then
        URL="$EXTRA_URL" as "$KEY" "$SECRET" "$TOKEN" awscli_status cognito-sync list-records \
            --identity-pool-id "$SYNC_POOL" --identity-id "$EXPIRED_ID" --dataset-name settings
        check_status "list-records with expired credentials: ExpiredTokenException" ExpiredTokenException 400
        URL="$EXTRA_URL" as "$KEY" "$SECRET" "$TOKEN" awscli_status cognito-sync describe-identity-usage \
            --identity-pool-id "$SYNC_POOL" --identity-id "$EXPIRED_ID"
        check_status "describe-identity-usage with expired credentials: ExpiredTokenException" ExpiredTokenException 400
        URL="$EXTRA_URL" creds_of "$EXPIRED_ID"
        URL="$EXTRA_URL" as "$KEY" "$SECRET" "$TOKEN" awscli cognito-sync list-records \
            --identity-pool-id "$SYNC_POOL" --identity-id "$EXPIRED_ID" --dataset-name settings
        check "list-records with new credentials for the same identity" \
            'd["Records"] == [] and d["DatasetExists"] is False'
        stop_cognate
    else
        RC=1 OUT="" ERR=""
        fail "restart on the data dir without --clock-offset-seconds"
    fi
else
    RC=1 OUT="" ERR=""
    fail "start cognate with --clock-offset-seconds -3700"
fi
