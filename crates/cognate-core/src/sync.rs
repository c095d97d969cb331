//! Cognito Sync's datasets and records: an identity's key-value data, synchronised between
//! its devices with optimistic concurrency. Every change raises the dataset's sync count;
//! a client reads what changed after the count it last saw (ListRecords, which hands out a
//! SyncSessionToken) and writes patches that each name the sync count of the record they
//! change (UpdateRecords): a stale one is a conflict (409) and nothing is written. An
//! identity's UpdateRecords goes through the pool's SyncTrigger function first, when it has
//! one (`sync_trigger`).
//!
//! Who may touch what is `sync_access`'s.

use cognate_api::ErrorCode;
use cognate_store::{DatasetRecord, Store, SyncLimits, SyncPatch, SyncRecord, SyncRefusal};
use serde::{Deserialize, Serialize};

use crate::context::{Ctx, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sync_access::{authorize, authorize_listing, check_caller, identity_not_found};
use crate::{sealed, sync_trigger};

/// Cognito Sync's quotas.
pub const LIMITS: SyncLimits =
    SyncLimits { datasets_per_identity: 20, records_per_dataset: 1024, bytes_per_dataset: 1024 * 1024 };

/// How long a SyncSessionToken lets its holder write after its ListRecords.
const SESSION_MS: i64 = 60 * 60 * 1000;

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFoundException, what)
}

/// What a SyncSessionToken carries: the dataset it was handed out for, and until when.
#[derive(Serialize, Deserialize)]
struct SyncSession {
    pool: String,
    identity: String,
    dataset: String,
    expires_ms: i64,
}

fn session_token(ctx: &Ctx, identity_pool_id: &str, identity_id: &str, dataset: &str) -> ApiResult<String> {
    let session = SyncSession {
        pool: identity_pool_id.to_owned(),
        identity: identity_id.to_owned(),
        dataset: dataset.to_owned(),
        expires_ms: ctx.now_ms() + SESSION_MS,
    };
    sealed::seal(ctx, sealed::Purpose::SyncSession, &session)
}

fn check_session_token(
    ctx: &Ctx,
    token: &str,
    identity_pool_id: &str,
    identity_id: &str,
    dataset: &str,
) -> ApiResult<()> {
    let session: Option<SyncSession> = sealed::open(ctx, sealed::Purpose::SyncSession, token);
    match session {
        Some(s) if s.pool == identity_pool_id && s.identity == identity_id && s.dataset == dataset => {
            if s.expires_ms <= ctx.now_ms() {
                return Err(ApiError::invalid_parameter("The SyncSessionToken has expired: call ListRecords again."));
            }
            Ok(())
        }
        _ => Err(ApiError::invalid_parameter("Invalid SyncSessionToken: it was not issued for this dataset.")),
    }
}

pub async fn dataset(ctx: &Ctx, identity_pool_id: &str, identity_id: &str, name: &str) -> ApiResult<DatasetRecord> {
    authorize(ctx, identity_pool_id, identity_id).await?;
    let (p, i, n) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned());
    match ctx.store(move |s| s.get_dataset(&p, &i, &n)).await? {
        Some(dataset) if !dataset.deleted => Ok(dataset),
        _ => Err(not_found(&format!("Dataset '{name}' not found."))),
    }
}

pub async fn list_datasets(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    after: Option<String>,
    limit: usize,
) -> ApiResult<Vec<DatasetRecord>> {
    authorize_listing(ctx, identity_pool_id, identity_id).await?;
    let (p, i) = (identity_pool_id.to_owned(), identity_id.to_owned());
    ctx.store(move |s| s.list_datasets(&p, &i, after.as_deref(), limit)).await
}

pub async fn delete_dataset(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    name: &str,
) -> ApiResult<DatasetRecord> {
    let dataset = dataset(ctx, identity_pool_id, identity_id, name).await?;
    let (p, i, n, now) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned(), ctx.now_ms());
    if !ctx.store(move |s| s.delete_dataset(&p, &i, &n, now)).await? {
        return Err(not_found(&format!("Dataset '{name}' not found.")));
    }
    Ok(dataset)
}

/// What ListRecords answers.
pub struct Listed {
    pub records: Vec<SyncRecord>,
    /// (sync count, key) of the last record, when more may follow.
    pub next: Option<(i64, String)>,
    pub dataset: Option<DatasetRecord>,
    pub deleted_after_requested: bool,
    /// The names of datasets merged into this one (`{name}.{source identity}`).
    pub merged: Vec<String>,
    pub session_token: String,
}

pub async fn list_records(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    name: &str,
    last_sync_count: i64,
    after: Option<(i64, String)>,
    limit: usize,
) -> ApiResult<Listed> {
    authorize_listing(ctx, identity_pool_id, identity_id).await?;
    let (p, i, n) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned());
    let (dataset, mut records, merged) = ctx
        .store(move |s| {
            let after = after.as_ref().map(|(count, key)| (*count, key.as_str()));
            let (dataset, records) = s.list_dataset_records(&p, &i, &n, last_sync_count, after, limit + 1)?;
            // Datasets merged into this one from other identities are named after it and a dot.
            let prefix = format!("{n}.");
            let merged: Vec<String> = s
                .list_datasets(&p, &i, Some(&prefix), LIMITS.datasets_per_identity as usize * 4)?
                .into_iter()
                .map(|d| d.name)
                .take_while(|name| name.starts_with(&prefix))
                .collect();
            Ok((dataset, records, merged))
        })
        .await?;
    let next = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|r| (r.sync_count, r.key.clone()))
    } else {
        None
    };
    let deleted_after_requested = dataset.as_ref().is_some_and(|d| d.deleted && d.sync_count > last_sync_count);
    let session_token = session_token(ctx, identity_pool_id, identity_id, name)?;
    Ok(Listed {
        records,
        next,
        dataset: dataset.filter(|d| !d.deleted),
        deleted_after_requested,
        merged,
        session_token,
    })
}

/// What UpdateRecords' trip to the store came to.
enum UpdateStep {
    NoIdentity,
    /// The SyncSessionToken or the patches were refused: nothing was written.
    Refused,
    /// The pool's SyncTrigger function is to see the change first (nothing written yet): the
    /// function, the dataset's records, the patches, and whether someone is to hear of it.
    Trigger(String, Vec<SyncRecord>, Vec<SyncPatch>, bool),
    Done(Result<(DatasetRecord, Vec<SyncRecord>), SyncRefusal>, bool),
}

/// UpdateRecords: every patch applied or none.
#[allow(clippy::too_many_arguments)]
pub async fn update_records(
    ctx: &Ctx,
    identity_pool_id: &str,
    identity_id: &str,
    name: &str,
    patches: Vec<SyncPatch>,
    device_id: Option<&str>,
    session_token: &str,
) -> ApiResult<Vec<SyncRecord>> {
    check_caller(ctx, identity_pool_id, identity_id)?;
    // Checked here, answered in the model's order after the identity's existence (below).
    let mut keys: Vec<&str> = patches.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    let gate = check_session_token(ctx, session_token, identity_pool_id, identity_id, name).and_then(|()| {
        if keys.windows(2).any(|pair| pair[0] == pair[1]) {
            Err(ApiError::invalid_parameter("A key may be patched once per UpdateRecords."))
        } else {
            Ok(())
        }
    });
    let allowed = gate.is_ok();
    // Cognito runs the SyncTrigger for identities' calls only: "If you call UpdateRecords
    // with developer credentials, your Lambda function will not be invoked."
    let by_identity = matches!(ctx.principal, Principal::Identity { .. });
    let modified_by = device_id.unwrap_or(identity_id).to_owned();
    let (p, i, n, now) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned(), ctx.now_ms());
    let write = {
        let (p, i, n, modified_by) = (p.clone(), i.clone(), n.clone(), modified_by.clone());
        move |s: &dyn Store, patches: &[SyncPatch], notify: bool| {
            s.update_sync_records(&p, &i, &n, patches, &modified_by, now, &LIMITS, notify)
        }
    };
    let write_now = write.clone();
    // One trip to the store: the identity and its pool (whether someone is to hear of the
    // change: a device subscribed to the dataset, or the stream; the pool's SyncTrigger), then
    // the update, or the dataset's records for the trigger's event.
    let step = ctx
        .store(move |s| {
            let identity = s.get_identity_by_id(&i)?.filter(|identity| identity.identity_pool_id == p);
            let Some(identity) = identity else { return Ok(UpdateStep::NoIdentity) };
            if !allowed {
                return Ok(UpdateStep::Refused);
            }
            let subscribed = crate::push::is_subscribed(&identity, &n)
                .map_err(|err| cognate_store::StoreError::Backend(err.message))?;
            let pool = s.get_identity_pool(&p)?;
            let streaming = pool.as_ref().is_some_and(crate::push::streams_enabled);
            let notify = subscribed || streaming;
            if let Some(function) = pool.as_ref().and_then(sync_trigger::function).filter(|_| by_identity) {
                let stored = sync_trigger::dataset_records(s, &p, &i, &n)?;
                return Ok(UpdateStep::Trigger(function, stored, patches, notify));
            }
            Ok(UpdateStep::Done(write_now(s, &patches, notify)?, notify))
        })
        .await?;
    let (outcome, notify) = match step {
        UpdateStep::NoIdentity => return Err(identity_not_found(identity_id)),
        UpdateStep::Refused => {
            return Err(gate.err().unwrap_or_else(|| ApiError::internal("UpdateRecords refused without a reason")))
        }
        UpdateStep::Trigger(function, stored, patches, notify) => {
            // Nothing is written until the function has answered; its answer is written with
            // the sync counts checked, so a change in between is a conflict as ever.
            let at = (identity_pool_id, identity_id, name);
            let patches = sync_trigger::run(ctx, &function, at, &stored, patches).await?;
            (ctx.store(move |s| write(s, &patches, notify)).await?, notify)
        }
        UpdateStep::Done(outcome, notify) => (outcome, notify),
    };
    if notify && outcome.is_ok() {
        ctx.state.sync_changes.notify_one();
    }
    match outcome {
        Ok((_, records)) => Ok(records),
        Err(SyncRefusal::Conflict { key }) => Err(ApiError::new(
            ErrorCode::ResourceConflictException,
            format!("Current SyncCount for: {key} is not the one given: sync the dataset and try again."),
        )),
        Err(SyncRefusal::TooManyDatasets) => Err(ApiError::limit_exceeded(format!(
            "An identity can have at most {} datasets.",
            LIMITS.datasets_per_identity
        ))),
        Err(SyncRefusal::TooManyRecords) => {
            Err(ApiError::limit_exceeded(format!("A dataset can have at most {} records.", LIMITS.records_per_dataset)))
        }
        Err(SyncRefusal::TooManyBytes) => {
            Err(ApiError::limit_exceeded(format!("A dataset can hold at most {} bytes.", LIMITS.bytes_per_dataset)))
        }
    }
}
