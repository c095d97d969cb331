"""A Cognito Streams record survives a crash: phases of one test.

Parameters (JSON): phase, endpoint (Cognate), identityPoolId, motoEndpoint.

phase "write": the pool streams to "sync-changes" (its Kinesis does not answer
yet); a guest writes theme=dark. Result: identityId.
phase "stream": creates the stream at moto (now running on that endpoint).
phase "read": waits up to 20 s for the stream's records. Result: records
(decoded data).
"""

import json
import time

from clientlib import aws_client, identity_client, run, step

STREAM = "sync-changes"


def read_stream(kinesis):
    found = []
    for shard in kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        found += [json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
    return found


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    if params["phase"] == "write":
        step("streaming configured; a guest writes")
        aws_client("cognito-sync", endpoint).set_identity_pool_configuration(
            IdentityPoolId=pool,
            CognitoStreams={"StreamName": STREAM, "RoleArn": "arn:aws:iam::000000000000:role/s", "StreamingStatus": "ENABLED"},
        )
        cognito = identity_client(endpoint)
        identity_id = cognito.get_id(IdentityPoolId=pool)["IdentityId"]
        c = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
        sync = aws_client("cognito-sync", endpoint, c["AccessKeyId"], c["SecretKey"], c["SessionToken"])
        who = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": "settings"}
        token = sync.list_records(**who)["SyncSessionToken"]
        patch = {"Op": "replace", "Key": "theme", "Value": "dark", "SyncCount": 0}
        sync.update_records(**who, SyncSessionToken=token, RecordPatches=[patch])
        return {"identityId": identity_id}
    kinesis = aws_client("kinesis", params["motoEndpoint"])
    if params["phase"] == "stream":
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        return {}
    step("waiting for the record")
    deadline = time.monotonic() + 20
    records = read_stream(kinesis)
    while not records and time.monotonic() < deadline:
        time.sleep(0.2)
        records = read_stream(kinesis)
    return {"records": records}


if __name__ == "__main__":
    run(main)
