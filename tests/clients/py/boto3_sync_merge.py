"""Cognito Sync after identities merge, with boto3 and developer credentials:
MergeDeveloperIdentities moves the source identity's datasets to the
destination as merged datasets, which ListRecords names in MergedDatasetNames.

Parameters (JSON):
    endpoint, identityPoolId

Steps: the pool gets a developer provider; users u1 and u2 get an identity each
(GetOpenIdTokenForDeveloperIdentity); u1 writes "settings" (theme=dark, then
removes a key), u2 writes "settings" (lang=fr); u1 is merged into u2.

Result: source, destination, merged (ListRecords of the destination's
"settings": MergedDatasetNames and records), mergedRecords (ListRecords of the
merged dataset), datasets (ListDatasets of the destination: names),
afterDelete (MergedDatasetNames once the merged dataset is deleted),
sourceGone {code, status}.
"""

from clientlib import aws_client, identity_client, refused, run, step

PROVIDER = "login.cognate.test"


def records(out):
    return [{"Key": r["Key"], "Value": r.get("Value")} for r in out.get("Records", [])]


def main(params):
    endpoint, pool = params["endpoint"], params["identityPoolId"]
    cognito = identity_client(endpoint)
    step("a developer provider")
    described = cognito.describe_identity_pool(IdentityPoolId=pool)
    described.pop("ResponseMetadata", None)
    cognito.update_identity_pool(**described, DeveloperProviderName=PROVIDER)
    ids = {}
    for user in ("u1", "u2"):
        ids[user] = cognito.get_open_id_token_for_developer_identity(IdentityPoolId=pool, Logins={PROVIDER: user})[
            "IdentityId"
        ]
    sync = aws_client("cognito-sync", endpoint)

    def write(identity, patches):
        who = {"IdentityPoolId": pool, "IdentityId": identity, "DatasetName": "settings"}
        token = sync.list_records(**who)["SyncSessionToken"]
        sync.update_records(**who, SyncSessionToken=token, RecordPatches=patches)

    step("both write their settings")
    write(ids["u1"], [{"Op": "replace", "Key": "theme", "Value": "dark", "SyncCount": 0},
                      {"Op": "replace", "Key": "old", "Value": "x", "SyncCount": 0}])
    write(ids["u1"], [{"Op": "remove", "Key": "old", "SyncCount": 1}])
    write(ids["u2"], [{"Op": "replace", "Key": "lang", "Value": "fr", "SyncCount": 0}])

    step("MergeDeveloperIdentities u1 -> u2")
    cognito.merge_developer_identities(
        SourceUserIdentifier="u1", DestinationUserIdentifier="u2", DeveloperProviderName=PROVIDER, IdentityPoolId=pool
    )
    destination = {"IdentityPoolId": pool, "IdentityId": ids["u2"]}
    listed = sync.list_records(**destination, DatasetName="settings")
    names = listed.get("MergedDatasetNames", [])
    merged_records = sync.list_records(**destination, DatasetName=names[0]) if names else {}
    datasets = [d["DatasetName"] for d in sync.list_datasets(**destination)["Datasets"]]
    step("the app folds the merged dataset in and deletes it")
    if names:
        sync.delete_dataset(**destination, DatasetName=names[0])
    after = sync.list_records(**destination, DatasetName="settings").get("MergedDatasetNames", [])
    source_gone = refused(lambda: sync.describe_dataset(IdentityPoolId=pool, IdentityId=ids["u1"], DatasetName="settings"))
    return {
        "source": ids["u1"],
        "destination": ids["u2"],
        "merged": {"names": names, "records": records(listed)},
        "mergedRecords": records(merged_records),
        "datasets": datasets,
        "afterDelete": after,
        "sourceGone": source_gone,
    }


if __name__ == "__main__":
    run(main)
