//! What a pool's OAuth 2.0 side is configured with: resource servers
//! (`cognate_core::resource_servers`), domains (`cognate_core::domains`), the hosted pages' look
//! (`cognate_core::ui_customization`), and client_credentials without the token endpoint
//! (GetClientToken).

use cognate_api::idp::*;
use cognate_core::records::{page_after, page_token};
use cognate_core::{domains, resource_servers, ui_customization};
use cognate_core::{ApiResult, Ctx};

pub async fn create_resource_server(
    ctx: Ctx,
    input: CreateResourceServerRequest,
) -> ApiResult<CreateResourceServerResponse> {
    let (pool, id) = (&input.user_pool_id, &input.identifier);
    let resource_server = resource_servers::create(&ctx, pool, id, &input.name, input.scopes).await?;
    Ok(CreateResourceServerResponse { resource_server })
}

pub async fn update_resource_server(
    ctx: Ctx,
    input: UpdateResourceServerRequest,
) -> ApiResult<UpdateResourceServerResponse> {
    let (pool, id) = (&input.user_pool_id, &input.identifier);
    let resource_server = resource_servers::update(&ctx, pool, id, &input.name, input.scopes).await?;
    Ok(UpdateResourceServerResponse { resource_server })
}

pub async fn describe_resource_server(
    ctx: Ctx,
    input: DescribeResourceServerRequest,
) -> ApiResult<DescribeResourceServerResponse> {
    let resource_server = resource_servers::describe(&ctx, &input.user_pool_id, &input.identifier).await?;
    Ok(DescribeResourceServerResponse { resource_server })
}

pub async fn delete_resource_server(ctx: Ctx, input: DeleteResourceServerRequest) -> ApiResult<()> {
    resource_servers::delete(&ctx, &input.user_pool_id, &input.identifier).await
}

pub async fn list_resource_servers(
    ctx: Ctx,
    input: ListResourceServersRequest,
) -> ApiResult<ListResourceServersResponse> {
    let limit = input.max_results.and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0).unwrap_or(50).min(50);
    let after = page_after(input.next_token.as_ref())?;
    let mut servers = resource_servers::list(&ctx, &input.user_pool_id, after.as_deref(), limit + 1).await?;
    let next_token = (servers.len() > limit).then(|| {
        servers.truncate(limit);
        servers.last().and_then(|s| s.identifier.as_deref()).map(page_token)
    });
    Ok(ListResourceServersResponse { next_token: next_token.flatten(), resource_servers: servers })
}

/// GetClientToken: client_credentials without the token endpoint (`cognate_core::oauth`).
pub async fn get_client_token(ctx: Ctx, input: GetClientTokenRequest) -> ApiResult<GetClientTokenResponse> {
    use cognate_core::oauth::{client_credentials, Refusal};
    use cognate_core::ApiError;
    let granted = client_credentials(&ctx, input.client_id.expose(), input.secret.expose(), input.scopes)
        .await
        .map_err(|refusal| match refusal {
            Refusal::InvalidClient
            | Refusal::InvalidGrant
            | Refusal::InvalidRequest
            | Refusal::UnsupportedTokenType => {
                ApiError::new(cognate_api::ErrorCode::NotAuthorizedException, "Invalid client credentials.")
            }
            Refusal::UnauthorizedClient => ApiError::new(
                cognate_api::ErrorCode::NotAuthorizedException,
                "The client is not allowed the client_credentials flow.",
            ),
            Refusal::InvalidScope => ApiError::invalid_parameter("Invalid scope requested."),
            // GetClientToken's model lists no Lambda errors: a V3_0 function's refusal or
            // failure denies the token, in the function's words.
            Refusal::Internal(err) if err.type_name().contains("Lambda") => {
                ApiError::new(cognate_api::ErrorCode::NotAuthorizedException, err.message)
            }
            Refusal::Internal(err) => err,
        })?;
    Ok(GetClientTokenResponse {
        client_authentication_result: Some(ClientAuthenticationResultType {
            access_token: Some(cognate_api::Sensitive(granted.access_token)),
            expires_in: i32::try_from(granted.expires_in).ok(),
            token_type: Some("Bearer".into()),
        }),
    })
}

/// Routing is multi-Region failover between a pool and its replicas, which Cognate does not
/// have (CreateUserPoolReplica is not implemented): refused rather than ignored.
fn refuse_routing(routing: Option<&RoutingType>) -> ApiResult<()> {
    match routing {
        Some(_) => Err(cognate_core::ApiError::invalid_parameter(
            "Routing (multi-Region failover) is not supported by Cognate: it has no user pool replicas.",
        )),
        None => Ok(()),
    }
}

pub async fn create_user_pool_domain(
    ctx: Ctx,
    input: CreateUserPoolDomainRequest,
) -> ApiResult<CreateUserPoolDomainResponse> {
    refuse_routing(input.routing.as_ref())?;
    let (pool, domain) = (&input.user_pool_id, &input.domain);
    let (cloud_front_domain, version) =
        domains::create(&ctx, pool, domain, input.custom_domain_config, input.managed_login_version).await?;
    Ok(CreateUserPoolDomainResponse { cloud_front_domain, managed_login_version: Some(version), routing: None })
}

pub async fn describe_user_pool_domain(
    ctx: Ctx,
    input: DescribeUserPoolDomainRequest,
) -> ApiResult<DescribeUserPoolDomainResponse> {
    Ok(DescribeUserPoolDomainResponse { domain_description: Some(domains::describe(&ctx, &input.domain).await?) })
}

pub async fn update_user_pool_domain(
    ctx: Ctx,
    input: UpdateUserPoolDomainRequest,
) -> ApiResult<UpdateUserPoolDomainResponse> {
    refuse_routing(input.routing.as_ref())?;
    let (pool, domain) = (&input.user_pool_id, &input.domain);
    let (cloud_front_domain, version) =
        domains::update(&ctx, pool, domain, input.custom_domain_config, input.managed_login_version).await?;
    Ok(UpdateUserPoolDomainResponse { cloud_front_domain, managed_login_version: Some(version), routing: None })
}

pub async fn delete_user_pool_domain(
    ctx: Ctx,
    input: DeleteUserPoolDomainRequest,
) -> ApiResult<DeleteUserPoolDomainResponse> {
    domains::delete(&ctx, &input.user_pool_id, &input.domain).await?;
    Ok(DeleteUserPoolDomainResponse {})
}

pub async fn set_ui_customization(ctx: Ctx, input: SetUICustomizationRequest) -> ApiResult<SetUICustomizationResponse> {
    let client = input.client_id.as_ref().map(|c| c.expose().as_str());
    let ui_customization =
        ui_customization::set(&ctx, &input.user_pool_id, client, input.css, input.image_file.as_deref()).await?;
    Ok(SetUICustomizationResponse { ui_customization })
}

pub async fn get_ui_customization(ctx: Ctx, input: GetUICustomizationRequest) -> ApiResult<GetUICustomizationResponse> {
    let client = input.client_id.as_ref().map(|c| c.expose().as_str());
    let ui_customization = ui_customization::get(&ctx, &input.user_pool_id, client).await?;
    Ok(GetUICustomizationResponse { ui_customization })
}
