//! Identity pools (cognito-identity): the pool resources and their tags. Identities and
//! credentials come later.

use std::collections::BTreeMap;

use cognate_api::identity::*;
use cognate_store::{IdentityPoolRecord, StoreError};

use cognate_core::context::Ctx;
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;

/// Cognito's account quota of identity pools.
const MAX_IDENTITY_POOLS: u64 = 1000;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("IdentityPool '{id}' not found."))
}

fn identity_pool_arn(ctx: &Ctx, id: &str) -> String {
    let region = cognate_core::region::of_identity_pool(id).unwrap_or(&ctx.region);
    format!("arn:aws:cognito-identity:{region}:{}:identitypool/{id}", ctx.settings().account_id)
}

fn is_identity_pool_id(id: &str) -> bool {
    id.split_once(':').is_some_and(|(region, rest)| {
        !region.is_empty()
            && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
    })
}

/// Normalises what Create and Update accept: providers' defaults, the tag limit.
fn normalise(pool: &mut IdentityPool) -> ApiResult<()> {
    pool.allow_classic_flow.get_or_insert(false);
    for provider in pool.cognito_identity_providers.iter_mut().flatten() {
        provider.server_side_token_check.get_or_insert(false);
    }
    if let Some(tags) = &pool.identity_pool_tags {
        cognate_core::records::check_tag_count(tags)?;
    }
    Ok(())
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<(IdentityPoolRecord, IdentityPool)> {
    if !ctx.sees(cognate_core::region::of_identity_pool(id)) {
        return Err(not_found(id));
    }
    let key = id.to_owned();
    let record = ctx.store(move |s| s.get_identity_pool(&key)).await?.ok_or_else(|| not_found(id))?;
    let pool = decode_doc(&record.doc)?;
    Ok((record, pool))
}

async fn modify<F>(ctx: &Ctx, id: &str, mut change: F) -> ApiResult<IdentityPool>
where
    F: FnMut(&mut IdentityPool) -> ApiResult<()>,
{
    let mut attempts = Attempts::new(ctx, "The identity pool");
    loop {
        attempts.begin()?;
        let (mut record, mut pool) = load(ctx, id).await?;
        change(&mut pool)?;
        normalise(&mut pool)?;
        record.version += 1;
        record.modified_ms = ctx.now_ms();
        record.name = pool.identity_pool_name.clone();
        record.doc = encode_doc(&pool)?;
        let answer = ctx.store(move |s| Ok(s.update_identity_pool(&record))).await?;
        if let Some(done) = written(answer, pool, || not_found(id))? {
            return Ok(done);
        }
    }
}

pub async fn create_identity_pool(ctx: Ctx, input: CreateIdentityPoolInput) -> ApiResult<IdentityPool> {
    let mut tags = input.identity_pool_tags.clone().unwrap_or_default();
    let custom_id = tags.remove(CUSTOM_ID_TAG);
    if let Some(id) = &custom_id {
        if !is_identity_pool_id(id) {
            return Err(ApiError::invalid_parameter(format!(
                "The {CUSTOM_ID_TAG} tag must be an identity pool id such as {}:0c0ffee0-0000-4000-8000-000000000000.",
                ctx.region
            )));
        }
        if !ctx.sees(cognate_core::region::of_identity_pool(id)) {
            return Err(ApiError::invalid_parameter(format!(
                "The {CUSTOM_ID_TAG} tag must name an identity pool of the request's region {}.",
                ctx.region
            )));
        }
    }
    let id = custom_id.clone().unwrap_or_else(|| format!("{}:{}", ctx.region, cognate_crypto::ids::uuid_v4()));
    let mut pool = IdentityPool {
        identity_pool_id: id.clone(),
        identity_pool_name: input.identity_pool_name.clone(),
        allow_unauthenticated_identities: input.allow_unauthenticated_identities,
        allow_classic_flow: input.allow_classic_flow,
        supported_login_providers: input.supported_login_providers,
        developer_provider_name: input.developer_provider_name,
        open_id_connect_provider_arns: input.open_id_connect_provider_arns,
        cognito_identity_providers: input.cognito_identity_providers,
        saml_provider_arns: input.saml_provider_arns,
        identity_pool_tags: Some(tags),
    };
    normalise(&mut pool)?;
    let now_ms = ctx.now_ms();
    let record = IdentityPoolRecord {
        id: id.clone().into(),
        name: input.identity_pool_name,
        created_ms: now_ms,
        modified_ms: now_ms,
        version: 1,
        doc: encode_doc(&pool)?,
    };
    let inserted = ctx
        .store(move |s| {
            if s.count_identity_pools()? >= MAX_IDENTITY_POOLS {
                return Ok(Err(StoreError::LimitExceeded));
            }
            Ok(s.insert_identity_pool(&record))
        })
        .await?;
    match inserted {
        Ok(()) => Ok(pool),
        Err(StoreError::LimitExceeded) => Err(ApiError::limit_exceeded(format!(
            "The account has reached its limit of {MAX_IDENTITY_POOLS} identity pools."
        ))),
        Err(StoreError::AlreadyExists(_)) => Err(ApiError::new(
            cognate_api::ErrorCode::ResourceConflictException,
            format!("IdentityPool '{id}' already exists."),
        )),
        Err(other) => Err(ApiError::internal(other)),
    }
}

pub async fn describe_identity_pool(ctx: Ctx, input: DescribeIdentityPoolInput) -> ApiResult<IdentityPool> {
    Ok(load(&ctx, &input.identity_pool_id).await?.1)
}

pub async fn update_identity_pool(ctx: Ctx, input: IdentityPool) -> ApiResult<IdentityPool> {
    let id = input.identity_pool_id.clone();
    modify(&ctx, &id, |pool| {
        let tags = input.identity_pool_tags.clone().or_else(|| pool.identity_pool_tags.clone());
        *pool = IdentityPool { identity_pool_tags: tags, ..input.clone() };
        if let Some(tags) = pool.identity_pool_tags.as_mut() {
            tags.remove(CUSTOM_ID_TAG);
        }
        Ok(())
    })
    .await
}

pub async fn delete_identity_pool(ctx: Ctx, input: DeleteIdentityPoolInput) -> ApiResult<()> {
    let id = input.identity_pool_id.clone();
    if ctx.store(move |s| s.delete_identity_pool(&id)).await? {
        Ok(())
    } else {
        Err(not_found(&input.identity_pool_id))
    }
}

pub async fn list_identity_pools(ctx: Ctx, input: ListIdentityPoolsInput) -> ApiResult<ListIdentityPoolsResponse> {
    let limit = usize::try_from(input.max_results).unwrap_or(60).clamp(1, 60);
    let (prefix, after) = ctx.region_page_floor(page_after(input.next_token.as_ref())?, ':');
    let mut records = ctx.store(move |s| s.list_identity_pools(after.as_deref(), limit + 1)).await?;
    records.retain(|r| r.id.starts_with(&prefix));
    let (page, next_token) = split_page(records, limit, |r| r.id.to_string());
    let pools = page
        .into_iter()
        .map(|r| IdentityPoolShortDescription {
            identity_pool_id: Some(r.id.into_string()),
            identity_pool_name: Some(r.name),
        })
        .collect();
    Ok(ListIdentityPoolsResponse { identity_pools: Some(pools), next_token })
}

fn pool_id_from_arn(ctx: &Ctx, arn: &str) -> ApiResult<String> {
    let prefix = identity_pool_arn(ctx, "");
    arn.strip_prefix(&prefix).filter(|id| is_identity_pool_id(id)).map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Invalid ResourceArn {arn}: expected {prefix}<identity pool id>."))
    })
}

pub async fn tag_resource(ctx: Ctx, input: TagResourceInput) -> ApiResult<TagResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify(&ctx, &id, |pool| {
        let tags = pool.identity_pool_tags.get_or_insert_with(BTreeMap::new);
        for (key, value) in &input.tags {
            if key != CUSTOM_ID_TAG {
                tags.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(ctx: Ctx, input: UntagResourceInput) -> ApiResult<UntagResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify(&ctx, &id, |pool| {
        let tags = pool.identity_pool_tags.get_or_insert_with(BTreeMap::new);
        for key in &input.tag_keys {
            tags.remove(key);
        }
        Ok(())
    })
    .await?;
    Ok(UntagResourceResponse {})
}

pub async fn list_tags_for_resource(
    ctx: Ctx,
    input: ListTagsForResourceInput,
) -> ApiResult<ListTagsForResourceResponse> {
    let id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    let (_, pool) = load(&ctx, &id).await?;
    Ok(ListTagsForResourceResponse { tags: Some(pool.identity_pool_tags.unwrap_or_default()) })
}
