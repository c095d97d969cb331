//! Managed login branding styles (`cognate_core::managed_login`): an app client's look for
//! managed login's pages.

use cognate_api::idp::*;
use cognate_core::managed_login::{self, StyleChange};
use cognate_core::{ApiError, ApiResult, Ctx};

/// UpdateManagedLoginBranding's model leaves its ids optional, yet names nothing without
/// them: a missing one is refused as the validator refuses a missing required member.
fn required<'a>(value: &'a Option<String>, path: &str) -> ApiResult<&'a str> {
    value.as_deref().ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

pub async fn create_managed_login_branding(
    ctx: Ctx,
    input: CreateManagedLoginBrandingRequest,
) -> ApiResult<CreateManagedLoginBrandingResponse> {
    let change = StyleChange {
        use_cognito_provided_values: input.use_cognito_provided_values,
        settings: input.settings,
        assets: input.assets,
    };
    let branding = managed_login::create(&ctx, &input.user_pool_id, input.client_id.expose(), change).await?;
    Ok(CreateManagedLoginBrandingResponse { managed_login_branding: Some(branding) })
}

pub async fn describe_managed_login_branding(
    ctx: Ctx,
    input: DescribeManagedLoginBrandingRequest,
) -> ApiResult<DescribeManagedLoginBrandingResponse> {
    let branding = managed_login::describe(&ctx, &input.user_pool_id, &input.managed_login_branding_id).await?;
    Ok(DescribeManagedLoginBrandingResponse { managed_login_branding: Some(branding) })
}

pub async fn describe_managed_login_branding_by_client(
    ctx: Ctx,
    input: DescribeManagedLoginBrandingByClientRequest,
) -> ApiResult<DescribeManagedLoginBrandingByClientResponse> {
    let branding = managed_login::describe_by_client(&ctx, &input.user_pool_id, input.client_id.expose()).await?;
    Ok(DescribeManagedLoginBrandingByClientResponse { managed_login_branding: Some(branding) })
}

pub async fn update_managed_login_branding(
    ctx: Ctx,
    input: UpdateManagedLoginBrandingRequest,
) -> ApiResult<UpdateManagedLoginBrandingResponse> {
    let pool_id = required(&input.user_pool_id, "userPoolId")?;
    let branding_id = required(&input.managed_login_branding_id, "managedLoginBrandingId")?;
    let change = StyleChange {
        use_cognito_provided_values: input.use_cognito_provided_values,
        settings: input.settings,
        assets: input.assets,
    };
    let branding = managed_login::update(&ctx, pool_id, branding_id, change).await?;
    Ok(UpdateManagedLoginBrandingResponse { managed_login_branding: Some(branding) })
}

pub async fn delete_managed_login_branding(ctx: Ctx, input: DeleteManagedLoginBrandingRequest) -> ApiResult<()> {
    managed_login::delete(&ctx, &input.user_pool_id, &input.managed_login_branding_id).await
}
