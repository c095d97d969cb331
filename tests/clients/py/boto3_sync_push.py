"""Cognito Sync's push sync and pool configuration with boto3: the developer
(IAM credentials) configures PushSync, CognitoStreams and events; an identity
(its temporary credentials) registers two devices, one twice.

Parameters (JSON):
    endpoint, identityPoolId (allowing guests, with a guest role)

Result: identityId, deviceA, deviceB, deviceBAgain (RegisterDevice with the
same token), configuration, got, events, streamsEnabled {code, status},
unconfigured {code, status} (RegisterDevice before PushSync is configured).
"""

import boto3
import botocore.config

from clientlib import identity_client, refused, run, step


def sync_client(endpoint, key="test", secret="test", token=None):
    return boto3.client(
        "cognito-sync",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    cognito = identity_client(endpoint)
    step("a guest's credentials")
    identity_id = cognito.get_id(IdentityPoolId=pool)["IdentityId"]
    c = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    mine = sync_client(endpoint, c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
    developer = sync_client(endpoint)
    who = {"IdentityPoolId": pool, "IdentityId": identity_id}

    step("RegisterDevice before PushSync is configured")
    unconfigured = refused(lambda: mine.register_device(**who, Platform="GCM", Token="token-a"))
    step("SetIdentityPoolConfiguration")
    arn = "arn:aws:sns:us-east-1:000000000000:app/GCM/cognate"
    streams = {"StreamName": "changes", "RoleArn": "arn:aws:iam::000000000000:role/streams"}
    configuration = developer.set_identity_pool_configuration(
        IdentityPoolId=pool,
        PushSync={"ApplicationArns": [arn], "RoleArn": "arn:aws:iam::000000000000:role/push"},
        CognitoStreams={**streams, "StreamingStatus": "DISABLED"},
    )
    configuration.pop("ResponseMetadata", None)
    streams_enabled = refused(
        lambda: developer.set_identity_pool_configuration(
            IdentityPoolId=pool, CognitoStreams={**streams, "StreamingStatus": "ENABLED"}
        )
    )
    got = developer.get_identity_pool_configuration(IdentityPoolId=pool)
    got.pop("ResponseMetadata", None)
    step("Set/GetCognitoEvents")
    function = "arn:aws:lambda:us-east-1:000000000000:function:sync"
    developer.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": function})
    events = developer.get_cognito_events(IdentityPoolId=pool)["Events"]

    step("RegisterDevice (two devices, one twice)")
    device_a = mine.register_device(**who, Platform="GCM", Token="token-a")["DeviceId"]
    device_b = mine.register_device(**who, Platform="APNS", Token="token-b")["DeviceId"]
    device_b_again = mine.register_device(**who, Platform="APNS", Token="token-b")["DeviceId"]
    return {
        "identityId": identity_id,
        "deviceA": device_a,
        "deviceB": device_b,
        "deviceBAgain": device_b_again,
        "configuration": configuration,
        "got": got,
        "events": events,
        "streamsEnabled": streams_enabled,
        "unconfigured": unconfigured,
    }


if __name__ == "__main__":
    run(main)
