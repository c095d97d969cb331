"""Cognito Sync's pushes and streams, delivered to another AWS emulator: Cognate
started with --sns-endpoint and --kinesis-endpoint pointing at moto_server.

Parameters (JSON):
    endpoint       Cognate
    motoEndpoint   moto_server
    identityPoolId (allowing guests, with a guest role)

Steps: at moto, a Kinesis stream and a GCM platform application; the pool's
PushSync and CognitoStreams (ENABLED); a guest registers two devices (A, B),
subscribes B to "settings"; A writes; the silent push to B appears in Cognate's
outbox and B's SNS endpoint exists at moto; the change is read back from the
stream; BulkPublish runs once (a second is refused); B unsubscribes, twice.

Result: identityId, deviceA, deviceB, endpoints (moto's platform endpoints:
token and enabled), pushes (outbox bodies of channel PUSH, by destination),
streamed (stream records, decoded), bulk (GetBulkPublishDetails after it
finished), bulkAgain / unsubscribeAgain / subscribeUnknown {code, status},
pushesAfterUnsubscribe.
"""

import json
import time
import urllib.request

from clientlib import aws_client as client
from clientlib import identity_client, refused, run, step

def pushes(endpoint, pool):
    with urllib.request.urlopen(f"{endpoint}/_cognate/outbox?pool={pool}") as answer:
        messages = json.load(answer)["messages"]
    return [
        {"destination": m["destination"], "body": json.loads(m["body"])} for m in messages if m["channel"] == "PUSH"
    ]


def wait_for(what, probe, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def stream_records(kinesis, stream):
    shards = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
    found = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
            found.append({"partitionKey": record["PartitionKey"], "data": json.loads(record["Data"])})
    return found


def main(params):
    endpoint, moto, pool = params["endpoint"], params["motoEndpoint"], params["identityPoolId"]
    kinesis, sns = client("kinesis", moto), client("sns", moto)
    step("a stream and a platform application at moto")
    kinesis.create_stream(StreamName="sync-changes", ShardCount=1)
    app = sns.create_platform_application(
        Name="cognate", Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )["PlatformApplicationArn"]

    developer = client("cognito-sync", endpoint)
    developer.set_identity_pool_configuration(
        IdentityPoolId=pool,
        PushSync={"ApplicationArns": [app], "RoleArn": "arn:aws:iam::000000000000:role/push"},
        CognitoStreams={
            "StreamName": "sync-changes",
            "RoleArn": "arn:aws:iam::000000000000:role/streams",
            "StreamingStatus": "ENABLED",
        },
    )

    step("a guest with two devices, B subscribed")
    cognito = identity_client(endpoint)
    identity_id = cognito.get_id(IdentityPoolId=pool)["IdentityId"]
    c = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
    mine = client("cognito-sync", endpoint, c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
    who = {"IdentityPoolId": pool, "IdentityId": identity_id}
    device_a = mine.register_device(**who, Platform="GCM", Token="token-a")["DeviceId"]
    device_b = mine.register_device(**who, Platform="GCM", Token="token-b")["DeviceId"]

    def write_theme(value, sync_count):
        token = mine.list_records(**who, DatasetName="settings")["SyncSessionToken"]
        patch = {"Op": "replace", "Key": "theme", "Value": value, "SyncCount": sync_count}
        mine.update_records(
            **who, DatasetName="settings", DeviceId=device_a, SyncSessionToken=token, RecordPatches=[patch]
        )

    mine.subscribe_to_dataset(**who, DatasetName="settings", DeviceId=device_b)
    subscribe_unknown = refused(
        lambda: mine.subscribe_to_dataset(**who, DatasetName="settings", DeviceId="00000000-0000-0000-0000-000000000000")
    )
    endpoints = [
        {"token": e["Attributes"].get("Token"), "enabled": e["Attributes"].get("Enabled")}
        for e in sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    ]

    step("device A writes")
    write_theme("dark", 0)
    found = wait_for("the push", lambda: pushes(endpoint, pool))
    streamed = wait_for("the stream record", lambda: stream_records(kinesis, "sync-changes"))

    step("BulkPublish")
    developer.bulk_publish(IdentityPoolId=pool)
    bulk = wait_for(
        "the bulk publish",
        lambda: (lambda d: d if d["BulkPublishStatus"] in ("SUCCEEDED", "FAILED") else None)(
            developer.get_bulk_publish_details(IdentityPoolId=pool)
        ),
    )
    bulk.pop("ResponseMetadata", None)
    bulk = {k: (str(v) if k.endswith("Time") else v) for k, v in bulk.items()}
    bulk_again = refused(lambda: developer.bulk_publish(IdentityPoolId=pool))
    after_bulk = stream_records(kinesis, "sync-changes")

    step("B unsubscribes; A writes again")
    mine.unsubscribe_from_dataset(**who, DatasetName="settings", DeviceId=device_b)
    unsubscribe_again = refused(
        lambda: mine.unsubscribe_from_dataset(**who, DatasetName="settings", DeviceId=device_b)
    )
    write_theme("light", 1)
    # The second change reaches the stream; no push follows it.
    wait_for("the second change on the stream", lambda: len(stream_records(kinesis, "sync-changes")) > len(after_bulk))
    return {
        "identityId": identity_id,
        "deviceA": device_a,
        "deviceB": device_b,
        "endpoints": sorted(endpoints, key=lambda e: e["token"] or ""),
        "subscribeUnknown": subscribe_unknown,
        "pushes": found,
        "streamed": streamed,
        "bulk": bulk,
        "bulkAgain": bulk_again,
        "streamedAll": stream_records(kinesis, "sync-changes"),
        "unsubscribeAgain": unsubscribe_again,
        "pushesAfterUnsubscribe": pushes(endpoint, pool),
    }


if __name__ == "__main__":
    run(main)
