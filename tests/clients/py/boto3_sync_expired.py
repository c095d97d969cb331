"""boto3's cognito-sync client signed with credentials that have expired.

Parameters (JSON):
    endpoint, identityPoolId (allowing guests, with a guest role), mode:
    "issue": GetId and GetCredentialsForIdentity (boto3's cognito-identity).
        Result: identityId, credentials {AccessKeyId, SecretKey, SessionToken,
        Expiration (epoch seconds)}.
    "use" (with identityId and credentials as "issue" printed them):
        ListRecords and DescribeIdentityUsage signed with those credentials,
        given as static keys (botocore has nothing to refresh them with and
        does not retry ExpiredTokenException with max_attempts 1), then
        ListRecords with new credentials for the same identity.
        Result: listRecords and describeIdentityUsage (each {code, status,
        message} when refused, {ok: true} otherwise), fresh {ok, records,
        exists}.
"""

from botocore.exceptions import ClientError

from boto3_sync import sync_client
from clientlib import describe_error, identity_client, run, step


def outcome(call):
    try:
        call()
    except ClientError as err:
        info = describe_error(err)
        return {
            "code": info["code"],
            "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "message": info["message"],
        }
    return {"ok": True}


def issue(params):
    cognito = identity_client(params["endpoint"])
    step("GetId, GetCredentialsForIdentity")
    identity_id = cognito.get_id(IdentityPoolId=params["identityPoolId"])["IdentityId"]
    credentials = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    credentials["Expiration"] = int(credentials["Expiration"].timestamp())
    return {"identityId": identity_id, "credentials": credentials}


def use(params):
    endpoint, pool, identity_id = params["endpoint"], params["identityPoolId"], params["identityId"]
    sync = sync_client(endpoint, params["credentials"])
    where = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": "settings"}
    step("ListRecords with the given credentials")
    list_records = outcome(lambda: sync.list_records(**where))
    step("DescribeIdentityUsage with the given credentials")
    usage = outcome(lambda: sync.describe_identity_usage(IdentityPoolId=pool, IdentityId=identity_id))
    step("ListRecords with new credentials for the same identity")
    cognito = identity_client(endpoint)
    fresh = sync_client(endpoint, cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"])
    out = fresh.list_records(**where)
    return {
        "listRecords": list_records,
        "describeIdentityUsage": usage,
        "fresh": {"ok": True, "records": out.get("Records", []), "exists": out["DatasetExists"]},
    }


def main(params):
    modes = {"issue": issue, "use": use}
    return modes[params["mode"]](params)


if __name__ == "__main__":
    run(main)
