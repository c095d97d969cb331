"""Identities' credentials from another AWS emulator's STS: Cognate started with
--sts-endpoint pointing at moto_server trades each identity's OpenID token there
(AssumeRoleWithWebIdentity), so the credentials belong to that emulator.

Parameters (JSON):
    endpoint       Cognate
    motoEndpoint   moto_server
    identityPoolId (a pool allowing guests, with a guest role)

Steps: GetId and GetCredentialsForIdentity from Cognate (a guest); STS
GetCallerIdentity at moto, signed with those credentials.

Result: identityId, accessKeyId, secretAccessKey, sessionToken, callerArn.
"""

import boto3
import botocore.config

from clientlib import identity_client, run, step


def main(params):
    cognate = identity_client(params["endpoint"])
    step("GetId")
    identity_id = cognate.get_id(IdentityPoolId=params["identityPoolId"])["IdentityId"]
    step("GetCredentialsForIdentity")
    credentials = cognate.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    step("GetCallerIdentity at moto with those credentials")
    sts = boto3.client(
        "sts",
        endpoint_url=params["motoEndpoint"],
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretKey"],
        aws_session_token=credentials["SessionToken"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    caller = sts.get_caller_identity()
    return {
        "identityId": identity_id,
        "accessKeyId": credentials["AccessKeyId"],
        "secretAccessKey": credentials["SecretKey"],
        "sessionToken": credentials["SessionToken"],
        "callerArn": caller["Arn"],
    }


if __name__ == "__main__":
    run(main)
