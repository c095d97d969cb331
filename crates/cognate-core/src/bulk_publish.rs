//! Cognito Sync's BulkPublish: every live dataset of an identity pool put on its Kinesis
//! stream once, in the form of the stream's change records, in the background; at most one
//! running per pool and one success per 24 hours, as AWS limits it. The state lives in the
//! pool's document (set with compare-and-set, so two nodes cannot both start one);
//! GetBulkPublishDetails reads it.
//!
//! A run whose node stopped is not resumed: after an hour without finishing it is reported
//! FAILED (and may be started again).

use cognate_api::sync::{BulkPublishStatus, CognitoStreams, StreamingStatus};
use cognate_api::ErrorCode;
use cognate_store::SyncChange;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::identity::pools::{self, BulkPublishState};

/// One successful bulk publish per this long.
const ONCE_PER_MS: i64 = 24 * 60 * 60 * 1000;
/// A run still IN_PROGRESS after this long was interrupted.
const ABANDONED_AFTER_MS: i64 = 60 * 60 * 1000;
const PAGE: usize = 100;

/// The state as reported at `now_ms`: a run left IN_PROGRESS too long failed.
pub fn current(state: Option<BulkPublishState>, now_ms: i64) -> Option<BulkPublishState> {
    state.map(|s| {
        if s.status == BulkPublishStatus::InProgress && now_ms - s.started_ms > ABANDONED_AFTER_MS {
            BulkPublishState {
                status: BulkPublishStatus::Failed,
                completed_ms: None,
                failure: Some("The bulk publish was interrupted: the node running it stopped.".into()),
                ..s
            }
        } else {
            s
        }
    })
}

/// BulkPublish: starts publishing the pool's datasets to its stream.
pub async fn start(ctx: &Ctx, identity_pool_id: &str) -> ApiResult<()> {
    let now = ctx.now_ms();
    let doc = pools::modify(ctx, identity_pool_id, |doc| {
        let streaming = doc
            .sync_configuration
            .cognito_streams
            .as_ref()
            .is_some_and(|s| s.streaming_status == Some(StreamingStatus::Enabled));
        if !streaming {
            return Err(ApiError::invalid_parameter(
                "CognitoStreams is not ENABLED for this identity pool: there is no stream to publish to.",
            ));
        }
        match current(doc.bulk_publish.clone(), now) {
            Some(s) if s.status == BulkPublishStatus::InProgress => {
                return Err(ApiError::new(
                    ErrorCode::DuplicateRequestException,
                    "A bulk publish is already in progress for this identity pool.",
                ))
            }
            Some(s)
                if s.status == BulkPublishStatus::Succeeded
                    && s.completed_ms.is_some_and(|c| now - c < ONCE_PER_MS) =>
            {
                return Err(ApiError::new(
                    ErrorCode::AlreadyStreamedException,
                    "This identity pool was bulk published less than 24 hours ago.",
                ))
            }
            _ => {}
        }
        doc.bulk_publish = Some(BulkPublishState {
            status: BulkPublishStatus::InProgress,
            started_ms: now,
            completed_ms: None,
            failure: None,
        });
        Ok(())
    })
    .await?;
    let streams = doc.sync_configuration.cognito_streams.unwrap_or_default();
    let (ctx, pool) = (Ctx::system(&ctx.state, "bulk-publish"), identity_pool_id.to_owned());
    tokio::spawn(async move {
        let outcome = publish_all(&ctx, &pool, &streams).await;
        let finished = ctx.now_ms();
        let recorded = pools::modify(&ctx, &pool, |doc| {
            if let Some(state) = doc.bulk_publish.as_mut().filter(|s| s.started_ms == now) {
                state.completed_ms = Some(finished);
                match &outcome {
                    Ok(()) => state.status = BulkPublishStatus::Succeeded,
                    Err(message) => {
                        state.status = BulkPublishStatus::Failed;
                        state.failure = Some(message.clone());
                    }
                }
            }
            Ok(())
        })
        .await;
        if let Err(err) = recorded {
            tracing::warn!(pool = %pool, error = %err.message, "the bulk publish's outcome was not recorded");
        }
    });
    Ok(())
}

/// Puts every live dataset of the pool on the stream, identity by identity.
async fn publish_all(ctx: &Ctx, identity_pool_id: &str, streams: &CognitoStreams) -> Result<(), String> {
    let fail = |e: ApiError| e.message;
    let mut after: Option<String> = None;
    loop {
        let (p, a) = (identity_pool_id.to_owned(), after.clone());
        let identities = ctx.store(move |s| s.list_identities(&p, a.as_deref(), PAGE)).await.map_err(fail)?;
        for (identity, _) in &identities {
            let (p, i) = (identity_pool_id.to_owned(), identity.identity_id.clone());
            let datasets = ctx.store(move |s| s.list_datasets(&p, &i, None, 100)).await.map_err(fail)?;
            for dataset in datasets {
                let (p, i, d) = (identity_pool_id.to_owned(), identity.identity_id.clone(), dataset.name.clone());
                let limit = crate::sync::LIMITS.records_per_dataset as usize + 1;
                let records =
                    ctx.store(move |s| s.list_sync_records(&p, &i, &d, 0, None, limit)).await.map_err(fail)?;
                let live: Vec<_> = records.into_iter().filter(|r| r.value.is_some()).collect();
                let change = SyncChange {
                    id: 0,
                    identity_pool_id: identity_pool_id.to_owned(),
                    identity_id: identity.identity_id.clone(),
                    dataset: dataset.name.clone(),
                    sync_count: dataset.sync_count,
                    modified_by: dataset.last_modified_by.clone(),
                    created_ms: dataset.modified_ms,
                    attempts: 0,
                };
                let record = crate::sync_delivery::stream_record(&change, &live, dataset.modified_ms);
                crate::sync_delivery::put_record(ctx, streams, &identity.identity_id, &record).await.map_err(|e| {
                    format!("Dataset {} of identity {} was not published: {e}", dataset.name, identity.identity_id)
                })?;
            }
        }
        if identities.len() < PAGE {
            return Ok(());
        }
        after = identities.last().map(|(identity, _)| identity.identity_id.clone());
    }
}
