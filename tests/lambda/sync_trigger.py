"""A Cognito Sync SyncTrigger: shouts `motto` (upper case), awards a `badge` at level 10 or
more, turns a `scratch` write into a removal, leaves `draft` out (so it is not written), and
refuses any change to a dataset with a `forbidden` key."""


def handler(event, context):
    records = event["datasetRecords"]
    if "forbidden" in records:
        raise ValueError("forbidden is not a key this game stores")
    motto = records.get("motto")
    if motto and motto.get("newValue") is not None:
        motto["newValue"] = motto["newValue"].upper()
    level = (records.get("level") or {}).get("newValue")
    if level is not None and int(level) >= 10:
        records["badge"] = {"newValue": "gold", "op": "replace"}
    if "scratch" in records:
        records["scratch"]["op"] = "remove"
    records.pop("draft", None)
    return event
