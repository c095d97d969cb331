//! Cognito Sync's SyncTrigger (SetCognitoEvents): before an identity's UpdateRecords writes
//! anything, the pool's function sees the dataset with the change and answers what is to be
//! written instead. AWS documents the event ("Amazon Cognito Events" in the developer guide):
//! `{version: 2, eventType: "SyncTrigger", region, identityPoolId, identityId, datasetName,
//! datasetRecords}`, every record of the dataset in `datasetRecords` as `{oldValue, newValue,
//! op}` (`op` "replace", or "remove" for a removal). The function returns the event: a record
//! it changes (`newValue`, or `op` "remove", or `newValue` null) or adds is written, one it
//! leaves out is not (a patch the caller sent included), and the other fields must come back
//! unchanged. Its failures are UpdateRecords' errors: a throw or an output that is not the
//! event InvalidLambdaFunctionOutputException, throttling LambdaThrottledException, no answer
//! LambdaSocketTimeoutException; nothing is written then.

use std::collections::BTreeMap;

use cognate_api::ErrorCode;
use cognate_store::{IdentityPoolRecord, Store, StoreResult, SyncPatch, SyncRecord};
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult, ProtocolCode};
use crate::identity::pools::IdentityPoolDoc;
use crate::lambda::{self, Failure};
use crate::records::decode_doc;

/// The event's name in SetCognitoEvents, and the trigger's in the metrics.
const SYNC_TRIGGER: &str = "SyncTrigger";

/// A record key's length limits (the model's RecordKey), checked on keys the function adds.
const KEY_CHARS: std::ops::RangeInclusive<usize> = 1..=1024;

/// The pool's SyncTrigger function, if it has one.
pub fn function(pool: &IdentityPoolRecord) -> Option<String> {
    decode_doc::<IdentityPoolDoc>(&pool.doc).ok()?.cognito_events.get(SYNC_TRIGGER).cloned()
}

/// Every record of the dataset, removed ones included (their sync counts are what a patch of
/// their key must name), in pages of the store's listing.
pub fn dataset_records(s: &dyn Store, pool: &str, identity: &str, dataset: &str) -> StoreResult<Vec<SyncRecord>> {
    const PAGE: usize = 1024;
    let mut records: Vec<SyncRecord> = Vec::new();
    loop {
        let after = records.last().map(|r| (r.sync_count, r.key.as_str()));
        let page = s.list_sync_records(pool, identity, dataset, 0, after, PAGE)?;
        let last_page = page.len() < PAGE;
        records.extend(page);
        if last_page {
            return Ok(records);
        }
    }
}

/// Runs the function on the change and answers the patches to write in its place.
pub async fn run(
    ctx: &Ctx,
    function: &str,
    (pool, identity, dataset): (&str, &str, &str),
    stored: &[SyncRecord],
    patches: Vec<SyncPatch>,
) -> ApiResult<Vec<SyncPatch>> {
    let event = event((pool, identity, dataset), stored, &patches);
    match lambda::invoke_raw(ctx, function, SYNC_TRIGGER, &event).await {
        Ok(answer) => apply(&event, answer, stored, patches),
        Err(failure) => Err(failed(failure)),
    }
}

/// UpdateRecords' error for a function that gave no usable answer.
fn failed(failure: Failure) -> ApiError {
    match failure {
        Failure::Function(message) => ApiError::new(
            ErrorCode::InvalidLambdaFunctionOutputException,
            format!("The SyncTrigger function failed: {message}"),
        ),
        Failure::Unrecognizable => not_the_event("it is not JSON"),
        Failure::Throttled(_) => ApiError::new(
            ErrorCode::LambdaThrottledException,
            "AWS Lambda throttled the SyncTrigger function: retry the UpdateRecords.",
        ),
        Failure::Unexpected(detail) => ApiError::protocol(
            ProtocolCode::LambdaSocketTimeout,
            format!("The SyncTrigger function did not respond within 5 seconds: {detail}"),
        ),
    }
}

fn not_the_event(why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidLambdaFunctionOutputException,
        format!("The SyncTrigger function's output is not the event it was given: {why}."),
    )
}

fn event((pool, identity, dataset): (&str, &str, &str), stored: &[SyncRecord], patches: &[SyncPatch]) -> Value {
    let mut records: Map<String, Value> = stored
        .iter()
        .filter_map(|r| {
            let value = r.value.as_deref()?;
            Some((r.key.clone(), json!({"oldValue": value, "newValue": value, "op": "replace"})))
        })
        .collect();
    for patch in patches {
        let old = records.get(&patch.key).map_or(Value::Null, |r| r["oldValue"].clone());
        let op = if patch.value.is_some() { "replace" } else { "remove" };
        records.insert(patch.key.clone(), json!({"oldValue": old, "newValue": patch.value, "op": op}));
    }
    json!({
        "version": 2,
        "eventType": SYNC_TRIGGER,
        // An identity pool id is `{region}:{guid}`.
        "region": pool.split(':').next().unwrap_or_default(),
        "identityPoolId": pool,
        "identityId": identity,
        "datasetName": dataset,
        "datasetRecords": records,
    })
}

/// The patches the function's answer asks for: the records it returned, each a replace with
/// its `newValue` or a removal, under the sync count the caller named for a key it patched
/// (so a stale one is still a conflict) or the stored one for a key the function changed on
/// its own. A record it returned as it was stored is not written.
fn apply(event: &Value, answer: Value, stored: &[SyncRecord], patches: Vec<SyncPatch>) -> ApiResult<Vec<SyncPatch>> {
    let Value::Object(mut answer) = answer else { return Err(not_the_event("it is not an object")) };
    let Some(Value::Object(records)) = answer.remove("datasetRecords") else {
        return Err(not_the_event("it has no datasetRecords"));
    };
    for (field, value) in &answer {
        if event.get(field).is_some_and(|given| given != value) {
            return Err(not_the_event(&format!("{field} was changed")));
        }
    }
    let stored: BTreeMap<&str, &SyncRecord> = stored.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut patched: BTreeMap<String, SyncPatch> = patches.into_iter().map(|p| (p.key.clone(), p)).collect();
    let mut out = Vec::new();
    for (key, record) in records {
        let value = record_value(&key, &record)?;
        if let Some(patch) = patched.remove(&key) {
            out.push(SyncPatch { value, ..patch });
            continue;
        }
        if !KEY_CHARS.contains(&key.chars().count()) {
            return Err(not_the_event(&format!("the key of a record has {} characters", key.chars().count())));
        }
        let current = stored.get(key.as_str());
        if current.and_then(|r| r.value.as_ref()) == value.as_ref() {
            continue;
        }
        let expected_sync_count = current.map_or(0, |r| r.sync_count);
        out.push(SyncPatch { key, value, expected_sync_count, device_modified_ms: None });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// A returned record's value: its `newValue`, or None to remove it (`op` "remove", or a null
/// `newValue`).
fn record_value(key: &str, record: &Value) -> ApiResult<Option<String>> {
    let bad = |what: &str| not_the_event(&format!("the record {key} {what}"));
    let Value::Object(record) = record else { return Err(bad("is not an object")) };
    let remove = match record.get("op") {
        Some(Value::String(op)) if op == "replace" => false,
        Some(Value::String(op)) if op == "remove" => true,
        None | Some(Value::Null) => false,
        Some(_) => return Err(bad("has an op other than replace or remove")),
    };
    match record.get("newValue") {
        _ if remove => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(bad("has a newValue that is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: Option<&str>, sync_count: i64) -> SyncRecord {
        SyncRecord {
            key: key.into(),
            value: value.map(str::to_owned),
            sync_count,
            modified_ms: 0,
            last_modified_by: "device".into(),
            device_modified_ms: None,
        }
    }

    fn patch(key: &str, value: Option<&str>, expected_sync_count: i64) -> SyncPatch {
        SyncPatch { key: key.into(), value: value.map(str::to_owned), expected_sync_count, device_modified_ms: Some(7) }
    }

    const AT: (&str, &str, &str) = ("us-east-1:pool", "us-east-1:identity", "game");

    #[test]
    fn the_event_holds_the_dataset_with_the_change() {
        let stored = [record("kept", Some("1"), 3), record("score", Some("10"), 4), record("gone", None, 5)];
        let patches = [patch("score", Some("20"), 4), patch("kept", None, 3), patch("new", Some("x"), 0)];
        let event = event(AT, &stored, &patches);
        assert_eq!(
            (&event["version"], &event["region"], &event["eventType"]),
            (&json!(2), &json!("us-east-1"), &json!("SyncTrigger"))
        );
        assert_eq!(
            event["datasetRecords"],
            json!({
                "kept": {"oldValue": "1", "newValue": null, "op": "remove"},
                "score": {"oldValue": "10", "newValue": "20", "op": "replace"},
                "new": {"oldValue": null, "newValue": "x", "op": "replace"},
            }),
            "a removed record is not in the dataset"
        );
    }

    #[test]
    fn the_answer_becomes_the_patches() {
        let stored = [record("kept", Some("1"), 3), record("score", Some("10"), 4), record("gone", None, 5)];
        let patches = vec![patch("score", Some("20"), 4), patch("dropped", Some("y"), 0)];
        let given = event(AT, &stored, &patches);
        let mut answer = given.clone();
        answer["datasetRecords"] = json!({
            "score": {"oldValue": "10", "newValue": "25", "op": "replace"},
            "kept": {"oldValue": "1", "newValue": "1", "op": "replace"},
            "gone": {"newValue": "back"},
            "badge": {"newValue": "gold", "op": "replace"},
        });
        let out = apply(&given, answer, &stored, patches).expect("patches");
        assert_eq!(
            out,
            vec![
                SyncPatch {
                    key: "badge".into(),
                    value: Some("gold".into()),
                    expected_sync_count: 0,
                    device_modified_ms: None
                },
                SyncPatch {
                    key: "gone".into(),
                    value: Some("back".into()),
                    expected_sync_count: 5,
                    device_modified_ms: None
                },
                patch("score", Some("25"), 4),
            ],
            "the caller's sync count for its key, the stored one for the function's; kept unchanged, dropped left out"
        );
    }

    #[test]
    fn removals_and_refusals() {
        let stored = [record("a", Some("1"), 1)];
        let given = event(AT, &stored, &[]);
        let mut answer = given.clone();
        answer["datasetRecords"] = json!({"a": {"oldValue": "1", "newValue": "1", "op": "remove"}});
        let out = apply(&given, answer, &stored, Vec::new()).expect("patches");
        assert_eq!(
            out,
            vec![SyncPatch { key: "a".into(), value: None, expected_sync_count: 1, device_modified_ms: None }]
        );

        let refused = |answer: Value| apply(&given, answer, &stored, Vec::new()).expect_err("refused").message;
        let mut changed = given.clone();
        changed["identityId"] = json!("us-east-1:someone-else");
        assert!(refused(changed).contains("identityId was changed"));
        assert!(refused(json!(null)).contains("not an object"));
        assert!(refused(json!({"version": 2})).contains("no datasetRecords"));
        let mut bad_op = given.clone();
        bad_op["datasetRecords"] = json!({"a": {"newValue": "2", "op": "upsert"}});
        assert!(refused(bad_op).contains("op other than"));
        let mut long_key = given.clone();
        long_key["datasetRecords"] = json!({"k".repeat(1025): {"newValue": "2"}});
        assert!(refused(long_key).contains("1025 characters"));
    }

    #[test]
    fn failures_are_update_records_errors() {
        let code = |f: Failure| failed(f).type_name();
        assert_eq!(code(Failure::Function("no".into())), "InvalidLambdaFunctionOutputException");
        assert_eq!(code(Failure::Unrecognizable), "InvalidLambdaFunctionOutputException");
        assert_eq!(code(Failure::Throttled("429".into())), "LambdaThrottledException");
        assert_eq!(code(Failure::Unexpected("timed out".into())), "LambdaSocketTimeoutException");
    }
}
