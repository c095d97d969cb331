"""boto3's cognito-sync client, signed with an identity's temporary
credentials from GetCredentialsForIdentity: one sync cycle from two "devices".

Parameters (JSON):
    endpoint, identityPoolId (allowing guests, with a guest role)

Steps: two guest identities and their credentials; for the first: ListRecords
(an empty dataset, a SyncSessionToken), UpdateRecords from device A (two
records, SyncCount 0), ListRecords incrementally, UpdateRecords from device B
with a stale SyncCount (refused: ResourceConflictException, nothing written),
resolved with the current SyncCount; ListDatasets, DescribeDataset,
DescribeIdentityUsage; the second identity's credentials on the first one's
data (refused); DeleteDataset, then ListRecords from before the deletion.

Result: identityId, first {records, datasetSyncCount, token}, afterA,
incremental, conflict {code, status}, resolved, datasets, described, usage,
foreign {code, status}, afterDelete.
"""

import boto3
import botocore.config

from clientlib import identity_client, refused, run, step


def sync_client(endpoint, credentials):
    return boto3.client(
        "cognito-sync",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretKey"],
        aws_session_token=credentials["SessionToken"],
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def records(out):
    return [{"Key": r["Key"], "Value": r.get("Value"), "SyncCount": r["SyncCount"]} for r in out.get("Records", [])]


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    cognito = identity_client(endpoint)
    ids = []
    for who in ["first", "second"]:
        step(f"GetId and GetCredentialsForIdentity ({who})")
        identity_id = cognito.get_id(IdentityPoolId=pool)["IdentityId"]
        credentials = cognito.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]
        ids.append((identity_id, sync_client(endpoint, credentials)))
    (identity_id, sync), (_, stranger) = ids
    where = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": "settings"}

    step("ListRecords (empty)")
    first = sync.list_records(**where)
    step("UpdateRecords from device A")
    sync.update_records(
        **where,
        DeviceId="device-a",
        SyncSessionToken=first["SyncSessionToken"],
        RecordPatches=[
            {"Op": "replace", "Key": "theme", "Value": "dark", "SyncCount": 0},
            {"Op": "replace", "Key": "lang", "Value": "fr", "SyncCount": 0},
        ],
    )
    step("ListRecords after A")
    after_a = sync.list_records(**where)
    step("ListRecords incremental")
    incremental = sync.list_records(**where, LastSyncCount=after_a["DatasetSyncCount"])
    step("UpdateRecords from device B with a stale SyncCount")
    conflict = refused(
        lambda: sync.update_records(
            **where,
            DeviceId="device-b",
            SyncSessionToken=first["SyncSessionToken"],
            RecordPatches=[
                {"Op": "replace", "Key": "theme", "Value": "light", "SyncCount": 0},
                {"Op": "replace", "Key": "font", "Value": "serif", "SyncCount": 0},
            ],
        )
    )
    step("UpdateRecords from device B, resolved")
    theme = next(r for r in after_a["Records"] if r["Key"] == "theme")
    sync.update_records(
        **where,
        DeviceId="device-b",
        SyncSessionToken=after_a["SyncSessionToken"],
        RecordPatches=[
            {"Op": "replace", "Key": "theme", "Value": "light", "SyncCount": theme["SyncCount"]},
            {"Op": "remove", "Key": "lang", "SyncCount": theme["SyncCount"]},
        ],
    )
    resolved = sync.list_records(**where, LastSyncCount=after_a["DatasetSyncCount"])
    step("ListDatasets, DescribeDataset, DescribeIdentityUsage")
    datasets = sync.list_datasets(IdentityPoolId=pool, IdentityId=identity_id)["Datasets"]
    described = sync.describe_dataset(**where)["Dataset"]
    usage = sync.describe_identity_usage(IdentityPoolId=pool, IdentityId=identity_id)["IdentityUsage"]
    step("another identity's credentials on this identity's data")
    foreign = refused(lambda: stranger.list_records(**where))
    step("DeleteDataset, then ListRecords from before the deletion")
    sync.delete_dataset(**where)
    after_delete = sync.list_records(**where, LastSyncCount=after_a["DatasetSyncCount"])
    for d in datasets:
        d.pop("CreationDate", None)
        d.pop("LastModifiedDate", None)
    described.pop("CreationDate", None)
    described.pop("LastModifiedDate", None)
    usage.pop("LastModifiedDate", None)
    return {
        "identityId": identity_id,
        "first": {"records": records(first), "datasetSyncCount": first["DatasetSyncCount"],
                  "exists": first["DatasetExists"], "token": bool(first.get("SyncSessionToken"))},
        "afterA": {"records": records(after_a), "datasetSyncCount": after_a["DatasetSyncCount"],
                   "lastModifiedBy": after_a.get("LastModifiedBy")},
        "incremental": records(incremental),
        "conflict": conflict,
        "resolved": {"records": records(resolved), "datasetSyncCount": resolved["DatasetSyncCount"]},
        "datasets": datasets,
        "described": described,
        "usage": usage,
        "foreign": foreign,
        "afterDelete": {"exists": after_delete["DatasetExists"],
                        "deletedAfter": after_delete["DatasetDeletedAfterRequestedSyncCount"]},
    }


if __name__ == "__main__":
    run(main)
