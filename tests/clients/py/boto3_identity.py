"""boto3's cognito-identity client with an identity pool against a
Cognito-compatible endpoint, and a botocore client signing with the
temporary credentials it gets.

Parameters (JSON):
    endpoint, identityPoolId
    provider, idToken   a login (Logins={provider: idToken})

Steps: GetId without Logins (a guest) and GetCredentialsForIdentity; GetId
with the login and GetCredentialsForIdentity with it (boto3 sends these two
unsigned, as the model says); DescribeIdentity of both and ListIdentities
(signed with the test credentials); then, for the guest's and the login's
temporary credentials, a client built with them (aws_session_token) sends
DescribeIdentityPool, which the server must answer AccessDeniedException (the
signature and session token were accepted, and an identity may not administer
pools); the same with the session token altered, and without it.

Result: guest and login {identityId, credentials, signed, alteredToken,
noToken} (the last three as {code, status}), described {guest, login},
listed (the identity ids ListIdentities returned).
"""

from botocore.exceptions import ClientError

from clientlib import describe_error, identity_client, run, step


def altered(token):
    at = len(token) // 2
    return token[:at] + ("B" if token[at] == "A" else "A") + token[at + 1 :]


def refusal(endpoint, pool, credentials, session_token, what):
    client = identity_client(endpoint, credentials["AccessKeyId"], credentials["SecretKey"], session_token)
    try:
        out = client.describe_identity_pool(IdentityPoolId=pool)
    except ClientError as err:
        info = describe_error(err)
        return {
            "code": info["code"],
            "message": info["message"],
            "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        }
    raise RuntimeError(f"{what}: DescribeIdentityPool succeeded: {out!r}")


def credentials_for(client, endpoint, pool, logins, what):
    step(f"{what}: GetId")
    kwargs = {"Logins": logins} if logins else {}
    identity_id = client.get_id(IdentityPoolId=pool, **kwargs)["IdentityId"]
    step(f"{what}: GetCredentialsForIdentity")
    out = client.get_credentials_for_identity(IdentityId=identity_id, **kwargs)
    if out["IdentityId"] != identity_id:
        raise RuntimeError(f"{what}: GetCredentialsForIdentity answered {out['IdentityId']} for {identity_id}")
    credentials = out["Credentials"]
    step(f"{what}: DescribeIdentityPool signed with the temporary credentials")
    signed = refusal(endpoint, pool, credentials, credentials["SessionToken"], what)
    step(f"{what}: DescribeIdentityPool with the session token altered")
    altered_token = refusal(endpoint, pool, credentials, altered(credentials["SessionToken"]), what)
    step(f"{what}: DescribeIdentityPool without the session token")
    no_token = refusal(endpoint, pool, credentials, None, what)
    return {
        "identityId": identity_id,
        "credentials": {
            "accessKeyId": credentials["AccessKeyId"],
            "secretAccessKey": credentials["SecretKey"],
            "sessionToken": credentials["SessionToken"],
            # botocore parses the epoch seconds into a datetime.
            "expiration": int(credentials["Expiration"].timestamp()),
        },
        "signed": signed,
        "alteredToken": altered_token,
        "noToken": no_token,
    }


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    client = identity_client(endpoint)
    result = {
        "guest": credentials_for(client, endpoint, pool, None, "guest"),
        "login": credentials_for(client, endpoint, pool, {params["provider"]: params["idToken"]}, "login"),
    }
    result["described"] = {}
    for who in ["guest", "login"]:
        step(f"DescribeIdentity ({who})")
        described = client.describe_identity(IdentityId=result[who]["identityId"])
        described.pop("ResponseMetadata", None)
        result["described"][who] = described
    step("ListIdentities")
    listed = client.list_identities(IdentityPoolId=pool, MaxResults=60)
    result["listed"] = [i["IdentityId"] for i in listed["Identities"]]
    return result


if __name__ == "__main__":
    run(main)
