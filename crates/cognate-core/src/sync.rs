//! Cognito Sync's datasets and records: an identity's key-value data, synchronised between
//! its devices with optimistic concurrency. Every change raises the dataset's sync count;
//! a client reads what changed after the count it last saw (ListRecords, which hands out a
//! SyncSessionToken) and writes patches that each name the sync count of the record they
//! change (UpdateRecords): a stale one is a conflict (409) and nothing is written.
//!
//! Who may touch what: an identity's temporary credentials reach that identity's data only;
//! the developer's IAM credentials reach any identity of the pool.

use cognate_api::ErrorCode;
use cognate_store::{DatasetRecord, SyncLimits, SyncPatch, SyncRecord, SyncRefusal};
use serde::{Deserialize, Serialize};

use crate::context::{Ctx, Principal};
use crate::error::{ApiError, ApiResult};
use crate::sealed;

/// Cognito Sync's quotas.
pub const LIMITS: SyncLimits =
    SyncLimits { datasets_per_identity: 20, records_per_dataset: 1024, bytes_per_dataset: 1024 * 1024 };

/// How long a SyncSessionToken lets its holder write after its ListRecords.
const SESSION_MS: i64 = 60 * 60 * 1000;

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFoundException, what)
}

fn not_authorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::NotAuthorizedException, message)
}

/// The identity a call names, after checking the caller may touch its data: an identity's
/// credentials its own only, IAM credentials any identity of the pool.
pub async fn authorize(ctx: &Ctx, identity_pool_id: &str, identity_id: &str) -> ApiResult<()> {
    if let Principal::Identity { identity_pool_id: own_pool, identity_id: own, .. } = &ctx.principal {
        if own_pool != identity_pool_id || own != identity_id {
            return Err(not_authorized("Access to this identity's data is not permitted for the caller."));
        }
    }
    let id = identity_id.to_owned();
    let record = ctx.store(move |s| s.get_identity_by_id(&id)).await?;
    match record {
        Some(record) if record.identity_pool_id == identity_pool_id => Ok(()),
        _ => Err(not_found(&format!("Identity '{identity_id}' not found."))),
    }
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

/// [`authorize`] for the listings, whose models list no ResourceNotFoundException: an
/// identity that is not the pool's is one the caller may not list.
async fn authorize_listing(ctx: &Ctx, identity_pool_id: &str, identity_id: &str) -> ApiResult<()> {
    authorize(ctx, identity_pool_id, identity_id).await.map_err(|err| {
        if err.type_name() == "ResourceNotFoundException" {
            not_authorized(&err.message)
        } else {
            err
        }
    })
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
    let (dataset, mut records) = ctx
        .store(move |s| {
            let dataset = s.get_dataset(&p, &i, &n)?;
            let after = after.as_ref().map(|(count, key)| (*count, key.as_str()));
            let records = s.list_sync_records(&p, &i, &n, last_sync_count, after, limit + 1)?;
            Ok((dataset, records))
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
    Ok(Listed { records, next, dataset: dataset.filter(|d| !d.deleted), deleted_after_requested, session_token })
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
    authorize(ctx, identity_pool_id, identity_id).await?;
    check_session_token(ctx, session_token, identity_pool_id, identity_id, name)?;
    let mut keys: Vec<&str> = patches.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(ApiError::invalid_parameter("A key may be patched once per UpdateRecords."));
    }
    let modified_by = device_id.unwrap_or(identity_id).to_owned();
    let (p, i, n, now) = (identity_pool_id.to_owned(), identity_id.to_owned(), name.to_owned(), ctx.now_ms());
    let outcome = ctx.store(move |s| s.update_sync_records(&p, &i, &n, &patches, &modified_by, now, &LIMITS)).await?;
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
