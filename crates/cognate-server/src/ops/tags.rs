//! Tags on user pools, addressed by ARN (the only taggable cognito-idp resource).

use std::collections::BTreeMap;

use cognate_api::idp::*;

use cognate_core::context::Ctx;
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;

/// The pool id named by a user pool ARN of this server's region and account.
fn pool_id_from_arn(ctx: &Ctx, arn: &str) -> ApiResult<String> {
    let prefix = format!("arn:aws:cognito-idp:{}:{}:userpool/", ctx.region, ctx.settings().account_id);
    arn.strip_prefix(&prefix).filter(|id| !id.is_empty()).map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Invalid ResourceArn {arn}: expected {prefix}<user pool id>."))
    })
}

pub async fn tag_resource(ctx: Ctx, input: TagResourceRequest) -> ApiResult<TagResourceResponse> {
    let pool_id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify_pool(&ctx, &pool_id, |doc| {
        let tags = doc.pool.user_pool_tags.get_or_insert_with(BTreeMap::new);
        for (key, value) in &input.tags {
            if key != CUSTOM_ID_TAG {
                tags.insert(key.clone(), value.clone());
            }
        }
        check_tag_count(tags)
    })
    .await?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(ctx: Ctx, input: UntagResourceRequest) -> ApiResult<UntagResourceResponse> {
    let pool_id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    modify_pool(&ctx, &pool_id, |doc| {
        let tags = doc.pool.user_pool_tags.get_or_insert_with(BTreeMap::new);
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
    input: ListTagsForResourceRequest,
) -> ApiResult<ListTagsForResourceResponse> {
    let pool_id = pool_id_from_arn(&ctx, &input.resource_arn)?;
    let (_, doc) = load_pool(&ctx, &pool_id).await?;
    Ok(ListTagsForResourceResponse { tags: Some(doc.pool.user_pool_tags.unwrap_or_default()) })
}
