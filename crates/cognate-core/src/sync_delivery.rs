//! Delivers what Cognito Sync changes cause: a silent push to each device subscribed to the
//! changed dataset (to the outbox, channel `PUSH`, and to SNS with `--sns-endpoint`), and a
//! record on the pool's Kinesis stream when CognitoStreams is ENABLED.
//!
//! A change is queued in the transaction that makes it (`SyncStore::update_sync_records` with
//! `notify`), so a crash loses none; a worker on every node claims queued changes for a lease
//! and delivers them, so a node that stops mid-delivery leaves its claims to the others once
//! the lease runs out: delivery is at least once. The stream is written first, since it is
//! what a failure retries (backing off from a second to a minute, for up to a day, as
//! Kinesis would keep the record); pushes follow (a repeated one only makes a device synchronise again). SNS's
//! refusals are logged, not retried: push services are best effort themselves.
//! Bulk publishing (BulkPublish) puts every dataset on the stream the same way.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cognate_api::sync::CognitoStreams;
use cognate_store::{OutboxMessage, SyncChange, SyncRecord};
use serde_json::{json, Value};

use crate::aws::CallError;
use crate::context::{Core, Ctx};
use crate::identity::pools::IdentityPoolDoc;
use crate::push::SyncDevice;
use crate::records::decode_doc;

/// How long a claimed change is a node's before another may deliver it.
const LEASE_MS: i64 = 30_000;
/// How long a change whose stream keeps refusing it is retried.
const GIVE_UP_MS: i64 = 24 * 60 * 60 * 1000;
/// How often queued changes are looked for when no local change wakes the worker (changes
/// made on other nodes, and retries).
const POLL: Duration = Duration::from_secs(1);
const BATCH: usize = 32;
/// Largest Kinesis record (its data, before base64).
const MAX_KINESIS_RECORD: usize = 1024 * 1024;

/// How long after its `attempts`-th failed delivery a change is tried again: a second,
/// doubling up to a minute.
fn retry_delay_ms(attempts: i64) -> i64 {
    1000_i64.saturating_mul(1 << attempts.clamp(1, 7).saturating_sub(1)).min(60_000)
}

/// Starts this node's delivery worker.
pub fn spawn(core: Arc<Core>) {
    tokio::spawn(async move {
        loop {
            let ctx = Ctx::system(&core, "sync-delivery");
            match deliver_due(&ctx).await {
                // A full batch: more may be waiting.
                Ok(BATCH) => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "Cognito Sync delivery failed"),
            }
            let _ = tokio::time::timeout(POLL, core.sync_changes.notified()).await;
        }
    });
}

/// Claims and delivers one batch of due changes; how many were claimed.
async fn deliver_due(ctx: &Ctx) -> Result<usize, String> {
    let now = ctx.now_ms();
    let changes =
        ctx.store(move |s| s.claim_sync_changes(now, LEASE_MS, BATCH)).await.map_err(|e| e.message.clone())?;
    let claimed = changes.len();
    for change in changes {
        let id = change.id;
        let done = match deliver(ctx, &change).await {
            Ok(()) => true,
            Err(err) if now - change.created_ms > GIVE_UP_MS => {
                tracing::error!(change = id, error = %err, "a Cognito Sync change could not be streamed for a day; dropped");
                true
            }
            Err(err) => {
                tracing::warn!(change = id, attempts = change.attempts, error = %err, "Cognito Sync change not streamed; retried later");
                false
            }
        };
        if done {
            ctx.store(move |s| s.finish_sync_change(id)).await.map_err(|e| e.message.clone())?;
        } else {
            let retry_at = now + retry_delay_ms(change.attempts);
            ctx.store(move |s| s.retry_sync_change(id, retry_at)).await.map_err(|e| e.message.clone())?;
        }
    }
    Ok(claimed)
}

async fn deliver(ctx: &Ctx, change: &SyncChange) -> Result<(), CallError> {
    let store_error = |e: crate::error::ApiError| CallError { code: "Store".into(), message: e.message };
    let (p, i) = (change.identity_pool_id.clone(), change.identity_id.clone());
    let (pool, identity) =
        ctx.store(move |s| Ok((s.get_identity_pool(&p)?, s.get_identity_by_id(&i)?))).await.map_err(store_error)?;
    // The pool or the identity is gone (deleted, merged): nobody is left to tell.
    let (Some(pool), Some(identity)) = (pool, identity) else { return Ok(()) };
    let pool: IdentityPoolDoc = decode_doc(&pool.doc).map_err(store_error)?;
    if let Some(streams) = enabled_stream(&pool) {
        let (p, i, d, count) =
            (change.identity_pool_id.clone(), change.identity_id.clone(), change.dataset.clone(), change.sync_count);
        let records = ctx
            .store(move |s| {
                s.list_sync_records(&p, &i, &d, count - 1, None, 1 + crate::sync::LIMITS.records_per_dataset as usize)
            })
            .await
            .map_err(store_error)?;
        let records: Vec<SyncRecord> = records.into_iter().filter(|r| r.sync_count == change.sync_count).collect();
        let record = stream_record(change, &records, change.created_ms);
        put_record(ctx, &streams, &change.identity_id, &record).await?;
    }
    // The device that made the change has it already.
    let devices = crate::push::subscribed_devices(&identity, &change.dataset).map_err(store_error)?;
    for device in devices.iter().filter(|d| d.id != change.modified_by) {
        push(ctx, change, device).await;
    }
    Ok(())
}

/// The pool's stream, when it streams and Cognate has a Kinesis.
fn enabled_stream(pool: &IdentityPoolDoc) -> Option<CognitoStreams> {
    pool.sync_configuration
        .cognito_streams
        .clone()
        .filter(|s| s.streaming_status == Some(cognate_api::sync::StreamingStatus::Enabled))
}

/// A stream record, in the form Cognito Streams documents: the dataset's change with the
/// records it wrote, inline.
pub fn stream_record(change: &SyncChange, records: &[SyncRecord], modified_ms: i64) -> Value {
    let op = |r: &SyncRecord| if r.value.is_some() { "replace" } else { "remove" };
    json!({
        "identityPoolId": change.identity_pool_id,
        "identityId": change.identity_id,
        "dataSetName": change.dataset,
        "operation": "replace",
        "kinesisSyncRecords": records.iter().map(|r| json!({
            "key": r.key,
            "value": r.value,
            "syncCount": r.sync_count,
            "lastModifiedDate": r.modified_ms,
            "deviceLastModifiedDate": r.device_modified_ms.unwrap_or(r.modified_ms),
            "op": op(r),
        })).collect::<Vec<_>>(),
        "lastModifiedDate": modified_ms,
        "kinesisSyncRecordsURL": null,
        "payloadType": "Inline",
        "syncCount": change.sync_count,
    })
}

/// Kinesis's PutRecord of `record` on the pool's stream, partitioned by identity.
pub async fn put_record(
    ctx: &Ctx,
    streams: &CognitoStreams,
    identity_id: &str,
    record: &Value,
) -> Result<(), CallError> {
    let Some(endpoint) = ctx.settings().kinesis_endpoint.clone() else {
        return Err(CallError { code: "NoKinesis".into(), message: "no --kinesis-endpoint is configured".into() });
    };
    let data = serde_json::to_vec(record).map_err(|e| CallError { code: "Encoding".into(), message: e.to_string() })?;
    if data.len() > MAX_KINESIS_RECORD {
        // Cognito would hand over an S3 URL instead; Cognate has no S3.
        return Err(CallError {
            code: "RecordTooLarge".into(),
            message: format!("the stream record is {} bytes, over Kinesis's 1 MiB", data.len()),
        });
    }
    let input = json!({
        "StreamName": streams.stream_name,
        "PartitionKey": identity_id,
        "Data": STANDARD.encode(&data),
    });
    crate::aws::json_call(ctx, &endpoint, "kinesis", "Kinesis_20131202.PutRecord", &input).await.map(|_| ())
}

/// The silent push Cognito Sync sends a device: what the mobile SDKs read to synchronise the
/// dataset (`source` cognito-sync, the ids, the new sync count as a string).
fn push_payload(change: &SyncChange) -> Value {
    json!({
        "source": "cognito-sync",
        "identityPoolId": change.identity_pool_id,
        "identityId": change.identity_id,
        "datasetName": change.dataset,
        "syncCount": change.sync_count.to_string(),
    })
}

/// The SNS message (MessageStructure json): the payload as each platform carries data.
fn sns_message(payload: &Value) -> String {
    let mut apns = json!({"aps": {"content-available": 1}});
    if let (Some(target), Some(fields)) = (apns.as_object_mut(), payload.as_object()) {
        target.extend(fields.clone());
    }
    let data = json!({"data": payload}).to_string();
    json!({
        "default": payload.to_string(),
        "GCM": data,
        "ADM": data,
        "APNS": apns.to_string(),
        "APNS_SANDBOX": apns.to_string(),
    })
    .to_string()
}

async fn push(ctx: &Ctx, change: &SyncChange, device: &SyncDevice) {
    let payload = push_payload(change);
    let message = OutboxMessage {
        id: 0,
        pool_id: change.identity_pool_id.clone(),
        username: change.identity_id.clone(),
        channel: "PUSH".into(),
        destination: device.id.clone(),
        code: None,
        subject: None,
        body: payload.to_string(),
        created_ms: ctx.now_ms(),
    };
    if let Err(err) = crate::outbox::append(ctx, message).await {
        tracing::warn!(device = %device.id, error = %err.message, "push not kept in the outbox");
    }
    let (Some(sns), Some(endpoint_arn)) = (ctx.settings().sns_endpoint.clone(), device.endpoint_arn.as_deref()) else {
        return;
    };
    let message = sns_message(&payload);
    let params = [
        ("Action", "Publish"),
        ("Version", "2010-03-31"),
        ("TargetArn", endpoint_arn),
        ("MessageStructure", "json"),
        ("Message", message.as_str()),
    ];
    if let Err(err) = crate::aws::query_call(ctx, &sns, "sns", &params).await {
        tracing::warn!(device = %device.id, error = %err, "SNS did not take the push");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> SyncChange {
        SyncChange {
            id: 1,
            identity_pool_id: "us-east-1:p".into(),
            identity_id: "us-east-1:i".into(),
            dataset: "settings".into(),
            sync_count: 7,
            modified_by: "device-a".into(),
            created_ms: 1_000,
            attempts: 1,
        }
    }

    #[test]
    fn retries_back_off_to_a_minute() {
        let delays: Vec<i64> = (1..=9).map(retry_delay_ms).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    }

    #[test]
    fn pushes_carry_what_the_mobile_sdks_read() {
        let payload = push_payload(&change());
        assert_eq!(payload["source"], "cognito-sync");
        assert_eq!(payload["syncCount"], "7", "a string, as the Android SDK parses it");
        let message: Value = serde_json::from_str(&sns_message(&payload)).unwrap();
        let gcm: Value = serde_json::from_str(message["GCM"].as_str().unwrap()).unwrap();
        assert_eq!(gcm["data"], payload);
        let apns: Value = serde_json::from_str(message["APNS"].as_str().unwrap()).unwrap();
        assert_eq!((apns["aps"]["content-available"].as_i64(), &apns["datasetName"]), (Some(1), &json!("settings")));
    }

    #[test]
    fn stream_records_take_the_documented_form() {
        let records = [
            SyncRecord {
                key: "a".into(),
                value: Some("1".into()),
                sync_count: 7,
                modified_ms: 5,
                last_modified_by: "d".into(),
                device_modified_ms: Some(4),
            },
            SyncRecord {
                key: "b".into(),
                value: None,
                sync_count: 7,
                modified_ms: 5,
                last_modified_by: "d".into(),
                device_modified_ms: None,
            },
        ];
        let record = stream_record(&change(), &records, 5);
        assert_eq!(record["dataSetName"], "settings");
        assert_eq!(record["payloadType"], "Inline");
        assert_eq!(record["kinesisSyncRecords"][0]["op"], "replace");
        assert_eq!(record["kinesisSyncRecords"][1]["op"], "remove");
        assert_eq!(record["kinesisSyncRecords"][1]["deviceLastModifiedDate"], 5);
        assert_eq!(record["syncCount"], 7);
    }
}
