"""The basic (classic) identity-pool flow with boto3: cognito-identity's GetId and
GetOpenIdToken, then STS's AssumeRoleWithWebIdentity sent to the same endpoint,
and a client signing with the credentials STS returned.

Parameters (JSON):
    endpoint, identityPoolId, guestRole, otherRole

Steps: GetId (a guest), GetOpenIdToken; AssumeRoleWithWebIdentity for the
pool's guest role (botocore sends it unsigned, as the model says); a
cognito-identity client with the returned credentials sends
DescribeIdentityPool, which must be refused with AccessDeniedException (the
signature and session token were accepted; an identity may not administer
pools); AssumeRoleWithWebIdentity refused for a role the pool does not name,
for an altered token, and for DurationSeconds out of range.

Result: identityId, openIdToken, assumed {subject, audience, provider,
assumedRoleArn, credentials {accessKeyId, secretAccessKey, sessionToken,
expiration}, durationSeconds}, signed {code, status}, refusals {otherRole,
alteredToken, tooLong} each as {code, status}.
"""

import boto3
import botocore.config
from botocore.exceptions import ClientError

from clientlib import describe_error, identity_client, run, step


def sts_client(endpoint):
    return boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def refused(call, what):
    try:
        out = call()
    except ClientError as err:
        info = describe_error(err)
        return {"code": info["code"], "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")}
    raise RuntimeError(f"{what} succeeded: {out!r}")


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    identity = identity_client(endpoint)
    step("GetId")
    identity_id = identity.get_id(IdentityPoolId=pool)["IdentityId"]
    step("GetOpenIdToken")
    token = identity.get_open_id_token(IdentityId=identity_id)["Token"]
    sts = sts_client(endpoint)
    step("AssumeRoleWithWebIdentity")
    out = sts.assume_role_with_web_identity(
        RoleArn=params["guestRole"], RoleSessionName="classic", WebIdentityToken=token, DurationSeconds=900
    )
    credentials = out["Credentials"]
    step("DescribeIdentityPool signed with STS's credentials")
    client = identity_client(
        endpoint, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    signed = refused(lambda: client.describe_identity_pool(IdentityPoolId=pool), "DescribeIdentityPool")
    altered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    attempt = lambda role, tok, seconds=3600: (  # noqa: E731 - a short local helper
        lambda: sts.assume_role_with_web_identity(
            RoleArn=role, RoleSessionName="classic", WebIdentityToken=tok, DurationSeconds=seconds
        )
    )
    step("refusals")
    refusals = {
        "otherRole": refused(attempt(params["otherRole"], token), "another role"),
        "alteredToken": refused(attempt(params["guestRole"], altered), "an altered token"),
        "tooLong": refused(attempt(params["guestRole"], token, 43201), "DurationSeconds 43201"),
    }
    return {
        "identityId": identity_id,
        "openIdToken": token,
        "assumed": {
            "subject": out["SubjectFromWebIdentityToken"],
            "audience": out["Audience"],
            "provider": out["Provider"],
            "assumedRoleArn": out["AssumedRoleUser"]["Arn"],
            "credentials": {
                "accessKeyId": credentials["AccessKeyId"],
                "secretAccessKey": credentials["SecretAccessKey"],
                "sessionToken": credentials["SessionToken"],
                "expiration": int(credentials["Expiration"].timestamp()),
            },
        },
        "signed": signed,
        "refusals": refusals,
    }


if __name__ == "__main__":
    run(main)
