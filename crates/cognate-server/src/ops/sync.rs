//! Cognito Sync (REST-JSON): datasets, records and usage, over `cognate_core::sync`.

use cognate_api::sync::*;
use cognate_core::context::timestamp;
use cognate_core::records::{page_after, page_token};
use cognate_core::sync::{self, Listed};
use cognate_core::{bulk_publish, push};
use cognate_core::{ApiError, ApiResult, Ctx};
use cognate_store::{DatasetRecord, SyncPatch, SyncRecord};

fn dataset_view(d: &DatasetRecord) -> Dataset {
    Dataset {
        identity_id: Some(d.identity_id.clone()),
        dataset_name: Some(d.name.clone()),
        creation_date: Some(timestamp(d.created_ms)),
        last_modified_date: Some(timestamp(d.modified_ms)),
        last_modified_by: Some(d.last_modified_by.clone()),
        data_storage: Some(d.data_bytes),
        num_records: Some(d.num_records),
    }
}

fn record_view(r: &SyncRecord) -> Record {
    Record {
        key: Some(r.key.clone()),
        value: r.value.clone(),
        sync_count: Some(r.sync_count),
        last_modified_date: Some(timestamp(r.modified_ms)),
        last_modified_by: Some(r.last_modified_by.clone()),
        device_last_modified_date: r.device_modified_ms.map(timestamp),
    }
}

fn page_limit(max_results: Option<i32>, default: usize) -> usize {
    max_results.and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0).unwrap_or(default).min(1024)
}

pub async fn list_datasets(ctx: Ctx, input: ListDatasetsRequest) -> ApiResult<ListDatasetsResponse> {
    let limit = page_limit(input.max_results, 20);
    let after = page_after(input.next_token.as_ref())?;
    let mut datasets = sync::list_datasets(&ctx, &input.identity_pool_id, &input.identity_id, after, limit + 1).await?;
    let next_token = (datasets.len() > limit).then(|| {
        datasets.truncate(limit);
        datasets.last().map(|d| page_token(&d.name))
    });
    let datasets: Vec<Dataset> = datasets.iter().map(dataset_view).collect();
    Ok(ListDatasetsResponse {
        count: i32::try_from(datasets.len()).ok(),
        datasets: Some(datasets),
        next_token: next_token.flatten(),
    })
}

pub async fn describe_dataset(ctx: Ctx, input: DescribeDatasetRequest) -> ApiResult<DescribeDatasetResponse> {
    let dataset = sync::dataset(&ctx, &input.identity_pool_id, &input.identity_id, &input.dataset_name).await?;
    Ok(DescribeDatasetResponse { dataset: Some(dataset_view(&dataset)) })
}

pub async fn delete_dataset(ctx: Ctx, input: DeleteDatasetRequest) -> ApiResult<DeleteDatasetResponse> {
    let dataset = sync::delete_dataset(&ctx, &input.identity_pool_id, &input.identity_id, &input.dataset_name).await?;
    Ok(DeleteDatasetResponse { dataset: Some(dataset_view(&dataset)) })
}

/// ListRecords' NextToken: the (sync count, key) of the last record handed out.
fn records_after(token: Option<&String>) -> ApiResult<Option<(i64, String)>> {
    let Some(text) = page_after(token)? else { return Ok(None) };
    let (count, key) = text.split_once(':').ok_or_else(|| ApiError::invalid_parameter("Invalid pagination token."))?;
    let count = count.parse().map_err(|_| ApiError::invalid_parameter("Invalid pagination token."))?;
    Ok(Some((count, key.to_owned())))
}

pub async fn list_records(ctx: Ctx, input: ListRecordsRequest) -> ApiResult<ListRecordsResponse> {
    let limit = page_limit(input.max_results, 1024);
    let after = records_after(input.next_token.as_ref())?;
    let last = input.last_sync_count.unwrap_or(0);
    let (pool, identity, name) = (&input.identity_pool_id, &input.identity_id, &input.dataset_name);
    let Listed { records, next, dataset, deleted_after_requested, merged, session_token } =
        sync::list_records(&ctx, pool, identity, name, last, after, limit).await?;
    let records: Vec<Record> = records.iter().map(record_view).collect();
    Ok(ListRecordsResponse {
        count: i32::try_from(records.len()).ok(),
        records: Some(records),
        next_token: next.map(|(count, key)| page_token(&format!("{count}:{key}"))),
        dataset_sync_count: Some(dataset.as_ref().map_or(0, |d| d.sync_count)),
        last_modified_by: dataset.as_ref().map(|d| d.last_modified_by.clone()),
        dataset_exists: Some(dataset.is_some()),
        dataset_deleted_after_requested_sync_count: Some(deleted_after_requested),
        merged_dataset_names: Some(merged),
        sync_session_token: Some(session_token),
    })
}

pub async fn update_records(ctx: Ctx, input: UpdateRecordsRequest) -> ApiResult<UpdateRecordsResponse> {
    let mut patches = Vec::new();
    for patch in input.record_patches.iter().flatten() {
        let value =
            match patch.op {
                Operation::Replace => Some(patch.value.clone().ok_or_else(|| {
                    ApiError::invalid_parameter(format!("A replace of {} needs a Value.", patch.key))
                })?),
                Operation::Remove => None,
                Operation::Unknown(ref other) => {
                    return Err(ApiError::invalid_parameter(format!("Invalid Op {other}: replace or remove.")))
                }
            };
        patches.push(SyncPatch {
            key: patch.key.clone(),
            value,
            expected_sync_count: patch.sync_count,
            device_modified_ms: patch.device_last_modified_date.map(|secs| (secs * 1000.0) as i64),
        });
    }
    let (pool, identity, dataset) = (&input.identity_pool_id, &input.identity_id, &input.dataset_name);
    let device = input.device_id.as_deref();
    let records =
        sync::update_records(&ctx, pool, identity, dataset, patches, device, &input.sync_session_token).await?;
    Ok(UpdateRecordsResponse { records: Some(records.iter().map(record_view).collect()) })
}

pub async fn describe_identity_usage(
    ctx: Ctx,
    input: DescribeIdentityUsageRequest,
) -> ApiResult<DescribeIdentityUsageResponse> {
    cognate_core::sync_access::authorize(&ctx, &input.identity_pool_id, &input.identity_id).await?;
    let (p, i) = (input.identity_pool_id.clone(), input.identity_id.clone());
    let usage = ctx.store(move |s| s.identity_sync_usage(&p, &i)).await?;
    Ok(DescribeIdentityUsageResponse {
        identity_usage: Some(IdentityUsage {
            identity_id: Some(input.identity_id),
            identity_pool_id: Some(input.identity_pool_id),
            dataset_count: i32::try_from(usage.datasets).ok(),
            data_storage: Some(usage.data_bytes),
            last_modified_date: (usage.modified_ms > 0).then(|| timestamp(usage.modified_ms)),
        }),
    })
}

async fn pool_usage(ctx: &Ctx, identity_pool_id: &str) -> ApiResult<IdentityPoolUsage> {
    cognate_core::identity::pools::load(ctx, identity_pool_id).await?;
    let p = identity_pool_id.to_owned();
    let usage = ctx.store(move |s| s.pool_sync_usage(&p)).await?;
    Ok(IdentityPoolUsage {
        identity_pool_id: Some(identity_pool_id.to_owned()),
        // The identities that have synchronised data.
        sync_sessions_count: Some(usage.datasets),
        data_storage: Some(usage.data_bytes),
        last_modified_date: (usage.modified_ms > 0).then(|| timestamp(usage.modified_ms)),
    })
}

pub async fn describe_identity_pool_usage(
    ctx: Ctx,
    input: DescribeIdentityPoolUsageRequest,
) -> ApiResult<DescribeIdentityPoolUsageResponse> {
    Ok(DescribeIdentityPoolUsageResponse {
        identity_pool_usage: Some(pool_usage(&ctx, &input.identity_pool_id).await?),
    })
}

pub async fn list_identity_pool_usage(
    ctx: Ctx,
    input: ListIdentityPoolUsageRequest,
) -> ApiResult<ListIdentityPoolUsageResponse> {
    let limit = page_limit(input.max_results, 60).min(60);
    let (prefix, after) = ctx.region_page_floor(page_after(input.next_token.as_ref())?, ':');
    let mut pools = ctx.store(move |s| s.list_identity_pools(after.as_deref(), limit + 1)).await?;
    pools.retain(|p| p.id.starts_with(&prefix));
    let next_token = (pools.len() > limit).then(|| {
        pools.truncate(limit);
        pools.last().map(|p| page_token(&p.id))
    });
    let mut usages = Vec::new();
    for pool in &pools {
        usages.push(pool_usage(&ctx, &pool.id).await?);
    }
    Ok(ListIdentityPoolUsageResponse {
        count: i32::try_from(usages.len()).ok(),
        identity_pool_usages: Some(usages),
        max_results: i32::try_from(limit).ok(),
        next_token: next_token.flatten(),
    })
}

pub async fn register_device(ctx: Ctx, input: RegisterDeviceRequest) -> ApiResult<RegisterDeviceResponse> {
    let device_id =
        push::register_device(&ctx, &input.identity_pool_id, &input.identity_id, input.platform.as_str(), &input.token)
            .await?;
    Ok(RegisterDeviceResponse { device_id: Some(device_id) })
}

pub async fn get_identity_pool_configuration(
    ctx: Ctx,
    input: GetIdentityPoolConfigurationRequest,
) -> ApiResult<GetIdentityPoolConfigurationResponse> {
    let (_, doc) = cognate_core::identity::pools::load(&ctx, &input.identity_pool_id).await?;
    Ok(GetIdentityPoolConfigurationResponse {
        identity_pool_id: Some(input.identity_pool_id),
        push_sync: doc.sync_configuration.push_sync,
        cognito_streams: doc.sync_configuration.cognito_streams,
    })
}

pub async fn set_identity_pool_configuration(
    ctx: Ctx,
    input: SetIdentityPoolConfigurationRequest,
) -> ApiResult<SetIdentityPoolConfigurationResponse> {
    let configuration =
        push::set_configuration(&ctx, &input.identity_pool_id, input.push_sync, input.cognito_streams).await?;
    Ok(SetIdentityPoolConfigurationResponse {
        identity_pool_id: Some(input.identity_pool_id),
        push_sync: configuration.push_sync,
        cognito_streams: configuration.cognito_streams,
    })
}

pub async fn get_cognito_events(ctx: Ctx, input: GetCognitoEventsRequest) -> ApiResult<GetCognitoEventsResponse> {
    let (_, doc) = cognate_core::identity::pools::load(&ctx, &input.identity_pool_id).await?;
    Ok(GetCognitoEventsResponse { events: Some(doc.cognito_events) })
}

pub async fn set_cognito_events(ctx: Ctx, input: SetCognitoEventsRequest) -> ApiResult<()> {
    push::set_events(&ctx, &input.identity_pool_id, &input.events).await
}

pub async fn subscribe_to_dataset(ctx: Ctx, input: SubscribeToDatasetRequest) -> ApiResult<SubscribeToDatasetResponse> {
    let (pool, identity) = (&input.identity_pool_id, &input.identity_id);
    push::subscription(&ctx, pool, identity, &input.dataset_name, &input.device_id, true).await?;
    Ok(SubscribeToDatasetResponse {})
}

pub async fn unsubscribe_from_dataset(
    ctx: Ctx,
    input: UnsubscribeFromDatasetRequest,
) -> ApiResult<UnsubscribeFromDatasetResponse> {
    let (pool, identity) = (&input.identity_pool_id, &input.identity_id);
    push::subscription(&ctx, pool, identity, &input.dataset_name, &input.device_id, false).await?;
    Ok(UnsubscribeFromDatasetResponse {})
}

pub async fn bulk_publish(ctx: Ctx, input: BulkPublishRequest) -> ApiResult<BulkPublishResponse> {
    bulk_publish::start(&ctx, &input.identity_pool_id).await?;
    Ok(BulkPublishResponse { identity_pool_id: Some(input.identity_pool_id) })
}

pub async fn get_bulk_publish_details(
    ctx: Ctx,
    input: GetBulkPublishDetailsRequest,
) -> ApiResult<GetBulkPublishDetailsResponse> {
    let (_, doc) = cognate_core::identity::pools::load(&ctx, &input.identity_pool_id).await?;
    let state = bulk_publish::current(doc.bulk_publish, ctx.now_ms());
    Ok(GetBulkPublishDetailsResponse {
        identity_pool_id: Some(input.identity_pool_id),
        bulk_publish_status: Some(state.as_ref().map_or(BulkPublishStatus::NotStarted, |s| s.status.clone())),
        bulk_publish_start_time: state.as_ref().map(|s| timestamp(s.started_ms)),
        bulk_publish_complete_time: state.as_ref().and_then(|s| s.completed_ms).map(timestamp),
        failure_message: state.and_then(|s| s.failure),
    })
}
